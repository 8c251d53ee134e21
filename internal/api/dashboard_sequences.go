package api

import (
	_ "embed"
	"fmt"
	"html/template"
	"net/http"
	"time"

	"github.com/tendhq/tend/internal/db"
)

//go:embed dashboard_sequences.html
var sequencesPageHTML string

// sequencesPage is the dashboard's sequences report: the dashboard's own layout (head, nav and
// functions) plus this page.
var sequencesPage = template.Must(template.Must(dashTemplates.Clone()).Funcs(template.FuncMap{
	"lift": func(lift, relative *float64) string {
		switch {
		case lift == nil:
			return "no holdout to compare with"
		case relative == nil:
			return fmt.Sprintf("%+.1f points", *lift*100)
		default:
			return fmt.Sprintf("%+.1f points (%+.0f%%)", *lift*100, *relative*100)
		}
	},
}).Parse(sequencesPageHTML))

type sequencesPageData struct {
	Title, Error, Since string
	Report              *db.SequenceReport
}

// dashSequences shows how each sequence, step and A/B variant performed since ?since= (as the
// API reads it; 30d when absent). A bad value says so and shows the default period.
func (s *Server) dashSequences(w http.ResponseWriter, r *http.Request) {
	d := sequencesPageData{Title: "Sequences", Since: r.URL.Query().Get("since")}
	if d.Since == "" {
		d.Since = defaultSince
	}
	since, err := ParseSince(d.Since, time.Now())
	if err != nil {
		d.Error = fmt.Sprintf("Since %v; showing the last %s.", err, defaultSince)
		d.Since = defaultSince
		since, _ = ParseSince(defaultSince, time.Now())
	}
	rep, err := s.Store.SequenceReport(r.Context(), since)
	if err != nil {
		s.dashFail(w, "sequences report", err)
		return
	}
	d.Report = &rep
	htmlHeaders(w)
	w.WriteHeader(http.StatusOK)
	_ = sequencesPage.ExecuteTemplate(w, "sequences", d)
}
