package api

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/tendhq/tend/internal/capture"
	"github.com/tendhq/tend/internal/db"
	"github.com/tendhq/tend/internal/sales"
	"github.com/tendhq/tend/internal/yamlcheck"
)

// reportRoutes registers the admin reports:
//
//	GET /api/v1/reports/funnel?from=&to=&source=  the lifecycle funnel, overall and per lead source
//	GET /api/v1/reports/sla?from=&to=             handoff response times (wall-clock and business
//	                                              time) and rejection reasons
//	GET /api/v1/reports/sequences?since=30d       each sequence, step and A/B variant: sends,
//	                                              human opens and clicks, unsubscribes,
//	                                              conversions and the holdout lift
//
// from and to bound the period half-open, [from, to); either may be left out. Each is a date
// (YYYY-MM-DD, midnight UTC) or an RFC 3339 time, so from=2026-11-01&to=2026-12-01 is November.
// since is a look-back such as 30d, 2w or 12h, or a date or RFC 3339 time; it defaults to 30d.
func (s *Server) reportRoutes(mux routeMux) {
	mux.Handle("GET /api/v1/reports/funnel", s.admin(s.funnelReport))
	mux.Handle("GET /api/v1/reports/sla", s.admin(s.slaReport))
	mux.Handle("GET /api/v1/reports/sequences", s.admin(s.sequenceReport))
}

// defaultSince is the look-back of the sequences report when none is asked for.
const defaultSince = "30d"

func (s *Server) sequenceReport(w http.ResponseWriter, r *http.Request) {
	v := r.URL.Query().Get("since")
	if v == "" {
		v = defaultSince
	}
	since, err := ParseSince(v, time.Now())
	if err != nil {
		writeError(w, http.StatusUnprocessableEntity, "invalid report period",
			[]capture.FieldError{{Field: "since", Message: err.Error()}})
		return
	}
	rep, err := s.Store.SequenceReport(r.Context(), since)
	if err != nil {
		s.fail(w, "sequence report", err)
		return
	}
	writeJSON(w, http.StatusOK, rep)
}

// ParseSince reads the start of a report period: a look-back from now ("30d", "2w", "12h", as
// sequence waits are written) or a date (YYYY-MM-DD, midnight UTC) or RFC 3339 time. The CLI
// reads --since with it too, so both accept the same values.
func ParseSince(v string, now time.Time) (time.Time, error) {
	if d, err := yamlcheck.ParseDuration(v); err == nil {
		if d <= 0 {
			return time.Time{}, fmt.Errorf("must be a positive look-back such as 30d, not %s", quoteShort(v))
		}
		return now.Add(-d), nil
	}
	if t, err := time.Parse(time.DateOnly, v); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("must be a look-back such as 30d or 12h, a date (YYYY-MM-DD) or an RFC 3339 time, not %s", quoteShort(v))
}

type funnelResponse struct {
	Overall  db.Funnel   `json:"overall"`
	BySource []db.Funnel `json:"by_source"`
}

func (s *Server) funnelReport(w http.ResponseWriter, r *http.Request) {
	from, to, ok := reportPeriod(w, r)
	if !ok {
		return
	}
	f := db.FunnelFilter{From: from, To: to, Source: r.URL.Query().Get("source")}
	overall, err := s.Store.Funnel(r.Context(), f)
	if err != nil {
		s.fail(w, "funnel report", err)
		return
	}
	bySource, err := s.Store.FunnelBySource(r.Context(), f)
	if err != nil {
		s.fail(w, "funnel report by source", err)
		return
	}
	writeJSON(w, http.StatusOK, funnelResponse{Overall: overall, BySource: bySource})
}

type slaResponse struct {
	db.SLAReport
	RejectionReasons []db.ReasonCount `json:"rejection_reasons"`
}

func (s *Server) slaReport(w http.ResponseWriter, r *http.Request) {
	from, to, ok := reportPeriod(w, r)
	if !ok {
		return
	}
	rep, err := s.Store.SLAReport(r.Context(), from, to, s.businessTime())
	if err != nil {
		s.fail(w, "SLA report", err)
		return
	}
	reasons, err := s.Store.RejectionReasons(r.Context(), from, to)
	if err != nil {
		s.fail(w, "rejection reasons", err)
		return
	}
	writeJSON(w, http.StatusOK, slaResponse{SLAReport: rep, RejectionReasons: reasons})
}

// businessTime counts a handoff's response time in the business hours of its rep's calendar, the
// time its deadline counts in, from the team file; nil when the server has no team. A rep no
// longer in the file has no known calendar.
func (s *Server) businessTime() db.BusinessTime {
	team := s.salesTeam()
	if team == nil {
		return nil
	}
	type clock struct {
		cal sales.Calendar
		loc *time.Location
		ok  bool
	}
	clocks := map[string]clock{}
	return func(repID string, from, to time.Time) (time.Duration, bool) {
		c, seen := clocks[repID]
		if !seen {
			if rep, ok := team.Rep(repID); ok {
				cal, loc, err := team.CalendarOf(rep)
				c = clock{cal: cal, loc: loc, ok: err == nil}
			}
			clocks[repID] = c
		}
		if !c.ok {
			return 0, false
		}
		return c.cal.Between(from, to, c.loc), true
	}
}

// reportPeriod reads the from and to query parameters, answering 422 when either is malformed or
// to comes before from. A missing parameter is the zero time: that side of the period is open.
func reportPeriod(w http.ResponseWriter, r *http.Request) (from, to time.Time, ok bool) {
	q := r.URL.Query()
	var fields []capture.FieldError
	parse := func(name string) time.Time {
		v := q.Get(name)
		if v == "" {
			return time.Time{}
		}
		if t, err := time.Parse(time.DateOnly, v); err == nil {
			return t
		}
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			fields = append(fields, capture.FieldError{Field: name, Message: "must be a date (YYYY-MM-DD) or an RFC 3339 time, not " + quoteShort(v)})
		}
		return t
	}
	from, to = parse("from"), parse("to")
	if len(fields) == 0 && !from.IsZero() && !to.IsZero() && to.Before(from) {
		fields = append(fields, capture.FieldError{Field: "to", Message: "must not be before from"})
	}
	if len(fields) > 0 {
		writeError(w, http.StatusUnprocessableEntity, "invalid report period", fields)
		return time.Time{}, time.Time{}, false
	}
	return from, to, true
}

// quoteShort quotes a caller's value for an error message, cut short so the message stays small.
func quoteShort(v string) string {
	const max = 40
	if r := []rune(v); len(r) > max {
		v = string(r[:max]) + "…"
	}
	return strconv.Quote(v)
}
