package api

import (
	"net/http"
	"strconv"
	"time"

	"github.com/tendhq/tend/internal/capture"
	"github.com/tendhq/tend/internal/db"
	"github.com/tendhq/tend/internal/sales"
)

// reportRoutes registers the admin reports:
//
//	GET /api/v1/reports/funnel?from=&to=&source=  the lifecycle funnel, overall and per lead source
//	GET /api/v1/reports/sla?from=&to=             handoff response times (wall-clock and business
//	                                              time) and rejection reasons
//
// from and to bound the period half-open, [from, to); either may be left out. Each is a date
// (YYYY-MM-DD, midnight UTC) or an RFC 3339 time, so from=2026-11-01&to=2026-12-01 is November.
func (s *Server) reportRoutes(mux *http.ServeMux) {
	mux.Handle("GET /api/v1/reports/funnel", s.admin(s.funnelReport))
	mux.Handle("GET /api/v1/reports/sla", s.admin(s.slaReport))
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
