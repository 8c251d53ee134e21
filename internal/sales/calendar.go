package sales

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// weekdayNames are the day names of Hours.Days, Monday first as business weeks are written.
var weekdayNames = []string{"MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN"}

// parseDays parses a days expression such as "MON-FRI", "SAT" or "MON,WED,FRI" (ranges and lists
// combine: "MON-WED,FRI"; a range may wrap: "FRI-MON"). The result is indexed by time.Weekday.
func parseDays(s string) ([7]bool, error) {
	var days [7]bool
	bad := fmt.Errorf("invalid days %q: use %s, ranges such as MON-FRI and lists such as MON,WED,FRI",
		s, strings.Join(weekdayNames, ", "))
	if strings.TrimSpace(s) == "" {
		return days, bad
	}
	for part := range strings.SplitSeq(s, ",") {
		first, last, isRange := strings.Cut(strings.TrimSpace(part), "-")
		if !isRange {
			last = first
		}
		a, b := slices.Index(weekdayNames, first), slices.Index(weekdayNames, last)
		if a < 0 || b < 0 {
			return days, bad
		}
		for i := a; ; i = (i + 1) % 7 {
			days[(i+1)%7] = true // weekdayNames starts on Monday, time.Weekday on Sunday
			if i == b {
				break
			}
		}
	}
	return days, nil
}

// parseClock parses a time of day written HH:MM, from 00:00 to 24:00, into minutes after midnight.
func parseClock(s string) (int, error) {
	bad := fmt.Errorf("invalid time %q: use HH:MM, such as 09:00", s)
	if len(s) != 5 || s[2] != ':' || !isDigits(s[:2]) || !isDigits(s[3:]) {
		return 0, bad
	}
	h, _ := strconv.Atoi(s[:2])
	m, _ := strconv.Atoi(s[3:])
	if m > 59 || h > 24 || (h == 24 && m != 0) {
		return 0, bad
	}
	return h*60 + m, nil
}

func isDigits(s string) bool {
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// span is some business minutes of a day: [from, to) in minutes after midnight.
type span struct{ from, to int }

// week is a calendar's business hours by time.Weekday, each day's spans sorted and merged.
type week [7][]span

// compile turns the calendar's hours into a week and its holidays into a set. Hours it can not
// read are skipped: Parse refuses them, and a hand-built calendar must not make deadlines fail.
// ok is false when no day has any hours.
func (c Calendar) compile() (w week, holidays map[string]bool, ok bool) {
	for _, h := range c.Hours {
		days, err := parseDays(h.Days)
		from, err1 := parseClock(h.From)
		to, err2 := parseClock(h.To)
		if errors.Join(err, err1, err2) != nil || to <= from {
			continue
		}
		for d, on := range days {
			if on {
				w[d] = append(w[d], span{from, to})
				ok = true
			}
		}
	}
	for d, spans := range w {
		slices.SortFunc(spans, func(a, b span) int { return a.from - b.from })
		var merged []span
		for _, s := range spans {
			if n := len(merged); n > 0 && s.from <= merged[n-1].to {
				merged[n-1].to = max(merged[n-1].to, s.to)
				continue
			}
			merged = append(merged, s)
		}
		w[d] = merged
	}
	holidays = make(map[string]bool, len(c.Holidays))
	for _, h := range c.Holidays {
		holidays[h] = true
	}
	return w, holidays, ok
}

// interval is business time between two instants.
type interval struct{ open, close time.Time }

// day returns the business intervals of the i'th day after the date of t, in loc.
func (w *week) day(t time.Time, i int, holidays map[string]bool, loc *time.Location) []interval {
	y, m, d := t.Date()
	noon := time.Date(y, m, d+i, 12, 0, 0, 0, loc)
	if holidays[noon.Format(time.DateOnly)] {
		return nil
	}
	y, m, d = noon.Date()
	var out []interval
	for _, s := range w[noon.Weekday()] {
		// time.Date normalises 24:00 to the next midnight, and a time in a DST gap to one that
		// exists, so the interval's length is the real time the hours span that day.
		iv := interval{
			open:  time.Date(y, m, d, s.from/60, s.from%60, 0, 0, loc),
			close: time.Date(y, m, d, s.to/60, s.to%60, 0, 0, loc),
		}
		if iv.close.After(iv.open) {
			out = append(out, iv)
		}
	}
	return out
}

// Add returns the instant d of business time after start, counting only the calendar's hours in
// loc, less its holidays. A start outside business hours counts from the next opening; a deadline
// that lands exactly on a closing time stays there rather than moving to the next opening.
// A calendar with no hours counts every hour, so Add is then start+d. d <= 0 returns start.
func (c Calendar) Add(start time.Time, d time.Duration, loc *time.Location) time.Time {
	if d <= 0 {
		return start
	}
	w, holidays, ok := c.compile()
	if !ok {
		return start.Add(d)
	}
	start = start.In(loc)
	// Weekly hours guarantee an opening within a week of the last holiday; the bound only
	// protects against a calendar that is closed for ever.
	maxClosed := len(holidays) + 8
	for i, closed := 0, 0; closed <= maxClosed; i++ {
		ivs := w.day(start, i, holidays, loc)
		if len(ivs) == 0 {
			closed++
			continue
		}
		closed = 0
		for _, iv := range ivs {
			if !iv.close.After(start) {
				continue
			}
			from := iv.open
			if start.After(from) {
				from = start
			}
			if avail := iv.close.Sub(from); d <= avail {
				return from.Add(d)
			} else {
				d -= avail
			}
		}
	}
	return start.Add(d)
}

// Between returns the business time from a to b: the inverse of Add, so that
// Between(a, Add(a, d)) == d. It is 0 when b is not after a. A calendar with no hours counts every
// hour, so Between is then b-a.
func (c Calendar) Between(a, b time.Time, loc *time.Location) time.Duration {
	if !b.After(a) {
		return 0
	}
	w, holidays, ok := c.compile()
	if !ok {
		return b.Sub(a)
	}
	a = a.In(loc)
	var total time.Duration
	for i := 0; ; i++ {
		ivs := w.day(a, i, holidays, loc)
		y, m, d := a.Date()
		if time.Date(y, m, d+i, 0, 0, 0, 0, loc).After(b) {
			return total
		}
		for _, iv := range ivs {
			from, to := iv.open, iv.close
			if a.After(from) {
				from = a
			}
			if b.Before(to) {
				to = b
			}
			if to.After(from) {
				total += to.Sub(from)
			}
		}
	}
}
