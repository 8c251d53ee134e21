// Package schedule owns send windows: the minutes, in a time zone, in which tend may send an email.
//
// Everything here is deterministic and safe to call from Temporal workflow code: no clocks, no
// goroutines, no package state. The only I/O is time.LoadLocation reading the zone database.
package schedule

import (
	"fmt"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// parser accepts exactly the five standard cron fields. Descriptors such as @every are refused
// because they describe intervals, not allowed minutes.
var parser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow)

// Window is a compiled send window: the minutes in which sending is allowed, given as a five-field
// cron spec (minute hour day-of-month month day-of-week) evaluated in a time zone.
// The zero Window is not usable; build one with Compile.
type Window struct {
	spec  string
	sched cron.Schedule // nil means any minute
	loc   *time.Location
}

// Compile compiles a send window. An empty cronSpec allows any time; an empty timeZone means UTC.
// It refuses specs that carry their own zone (TZ=, CRON_TZ=), since the zone is timeZone's job, and
// specs that never match, which would otherwise silently hold every email forever.
func Compile(cronSpec, timeZone string) (*Window, error) {
	loc, err := loadLocation(timeZone)
	if err != nil {
		return nil, err
	}
	w := &Window{spec: strings.TrimSpace(cronSpec), loc: loc}
	if w.spec == "" {
		return w, nil
	}
	if strings.HasPrefix(w.spec, "TZ=") || strings.HasPrefix(w.spec, "CRON_TZ=") {
		return nil, fmt.Errorf("invalid cron spec %q: put the time zone in time_zone, not in the spec", cronSpec)
	}
	if w.sched, err = parser.Parse(w.spec); err != nil {
		return nil, fmt.Errorf("invalid cron spec %q: %w", cronSpec, err)
	}
	// Five years from any date includes a 29 February, so a spec that matches nothing from this
	// fixed reference matches nothing ever.
	ref := time.Date(2000, time.January, 1, 0, 0, 0, 0, time.UTC)
	if w.sched.Next(ref).IsZero() {
		return nil, fmt.Errorf("invalid cron spec %q: it never matches", cronSpec)
	}
	return w, nil
}

// ValidTimeZone reports whether tz names a zone in the IANA database ("" counts as UTC).
func ValidTimeZone(tz string) error {
	_, err := loadLocation(tz)
	return err
}

// Spec returns the cron spec the window was compiled from ("" for any time).
func (w *Window) Spec() string { return w.spec }

// Location returns the window's own time zone.
func (w *Window) Location() *time.Location { return w.loc }

// Next returns the earliest instant at or after t at which sending is allowed.
//
// If t lies inside an allowed minute, t itself is returned unchanged: a send that is already allowed
// is not pushed to a minute boundary. Otherwise Next returns the start of the next allowed minute,
// expressed in the zone the window was evaluated in.
//
// leadTZ, when non-empty and valid, replaces the window's own zone, so "9 to 5" means the lead's
// 9 to 5. An invalid leadTZ falls back to the window's zone rather than failing a send.
//
// Compile refuses specs that never match, but the search is bounded to five years; should it come up
// empty all the same, Next returns t so that callers never wait on a zero time.
func (w *Window) Next(t time.Time, leadTZ string) time.Time {
	if w.sched == nil {
		return t
	}
	loc := w.loc
	if leadTZ != "" {
		if l, err := loadLocation(leadTZ); err == nil {
			loc = l
		}
	}
	start := t.In(loc).Truncate(time.Minute)
	next := w.sched.Next(start.Add(-time.Second))
	switch {
	case next.IsZero():
		return t
	case next.Equal(start):
		return t
	}
	return next
}

func loadLocation(tz string) (*time.Location, error) {
	if tz == "" {
		return time.UTC, nil
	}
	// LoadLocation treats "Local" as the host's zone, which would make results depend on the worker.
	if tz == "Local" {
		return nil, fmt.Errorf("unknown time zone %q: name an IANA zone such as Europe/Berlin", tz)
	}
	loc, err := time.LoadLocation(tz)
	if err != nil {
		return nil, fmt.Errorf("unknown time zone %q", tz)
	}
	return loc, nil
}
