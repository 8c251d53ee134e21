package api

import (
	"html/template"
	"net/http"
	"time"

	"github.com/google/uuid"

	"github.com/tendhq/tend/internal/track"
)

// deskRecent is how far back a desk lists handoffs that are no longer open.
const deskRecent = 30 * 24 * time.Hour

var deskPage = template.Must(template.New("desk").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex"><title>{{.Title}}</title>
<style>body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#1f2933;line-height:1.45}
table{border-collapse:collapse;width:100%;margin:.5rem 0 2rem}th,td{text-align:left;padding:.45rem .5rem;border-bottom:1px solid #e4e7eb;vertical-align:top}
th{font-size:.8rem;text-transform:uppercase;letter-spacing:.04em;color:#52606d}.small{color:#52606d;font-size:.85rem}
.overdue{color:#b42318;font-weight:600}.due{color:#1f2933}.btn{display:inline-block;padding:.3rem .8rem;border-radius:6px;text-decoration:none;margin:0 .3rem .3rem 0}
.accept{background:#1f2933;color:#fff}.reject{border:1px solid #1f2933;color:#1f2933}</style></head><body>
<h1>{{.Title}}</h1>
<p class="small">{{.Intro}} Times are in {{.Zone}}. This page is for you only: it opens with the link from your email and expires {{.Expires}}.</p>
<h2>Waiting for an answer ({{len .Open}})</h2>
{{if .Open}}<table><thead><tr><th>Lead</th><th>Why now</th><th>Score</th>{{if .Team}}<th>Rep</th>{{end}}<th>Due</th><th></th></tr></thead><tbody>
{{range .Open}}<tr id="lead-{{.LeadID}}"><td><strong>{{.Name}}</strong><br><span class="small">{{.Company}} · {{.Email}}</span></td>
<td>{{.Reason}}</td><td>{{.Score}} <span class="small">{{.Band}}</span></td>{{if $.Team}}<td>{{.Rep}}</td>{{end}}
<td>{{if .Overdue}}<span class="overdue">overdue {{.Overdue}}</span>{{else}}<span class="due">{{.Due}}</span>{{end}}{{if .Lapses}}<br><span class="small">escalated {{.Lapses}}×</span>{{end}}</td>
<td>{{if .AcceptURL}}<a class="btn accept" href="{{.AcceptURL}}">Accept</a><a class="btn reject" href="{{.RejectURL}}">Reject</a>{{end}}</td></tr>
{{end}}</tbody></table>{{else}}<p>Nothing is waiting for an answer.</p>{{end}}
<h2>Answered in the last 30 days ({{len .Done}})</h2>
{{if .Done}}<table><thead><tr><th>Lead</th><th>Answer</th>{{if .Team}}<th>Rep</th>{{end}}<th>Response time</th><th>Stage now</th></tr></thead><tbody>
{{range .Done}}<tr id="lead-{{.LeadID}}"><td><strong>{{.Name}}</strong><br><span class="small">{{.Company}}</span></td><td>{{.Outcome}}</td>{{if $.Team}}<td>{{.Rep}}</td>{{end}}
<td>{{.Response}}</td><td>{{.Stage}}</td></tr>
{{end}}</tbody></table>{{else}}<p>None yet.</p>{{end}}
</body></html>`))

type deskRow struct {
	LeadID, Name, Email, Company, Reason, Band, Rep, Due, Overdue, Outcome, Response, Stage string
	Score                                                                                   float64
	Lapses                                                                                  int
	AcceptURL, RejectURL                                                                    string
}

type deskView struct {
	Title, Intro, Zone, Expires string
	Team                        bool
	Open, Done                  []deskRow
}

// desk shows a rep the leads handed to them (open ones first, with their SLA due time and accept
// and reject links), or a manager those of the reps they cover. The signed link is the only key;
// it names the person and expires. It only reads: accepting goes through the usual action links.
func (s *Server) desk(w http.ResponseWriter, r *http.Request) {
	now := time.Now()
	a, err := s.Keys.VerifyAction(r.PathValue("token"), now)
	team := s.salesTeam()
	if err != nil || a.Kind != track.ActionDesk || team == nil {
		renderAction(w, http.StatusNotFound, actionView{Title: "Link not valid", Message: "This link is not valid or has expired. The next handoff email brings a new one."})
		return
	}
	v := deskView{Expires: a.Expires.UTC().Format("2 Jan 2006")}
	var reps []string
	loc := time.UTC
	if rep, ok := team.Rep(a.Rep); ok {
		reps = []string{rep.ID}
		v.Title, v.Intro = rep.Name+"'s leads", "Leads handed to you, with the time your answer is due."
		if _, l, err := team.CalendarOf(rep); err == nil && l != nil {
			loc = l
		}
	} else if m, ok := team.Manager(a.Rep); ok {
		for _, rep := range team.Reps {
			if rep.Manager == m.ID {
				reps = append(reps, rep.ID)
			}
		}
		v.Title, v.Intro, v.Team = m.Name+"'s team", "Leads handed to the reps you cover.", true
	} else {
		renderAction(w, http.StatusNotFound, actionView{Title: "Link not valid", Message: "This link names nobody on the sales team any more."})
		return
	}
	v.Zone = loc.String()
	items, err := s.Store.Desk(r.Context(), reps, now.Add(-deskRecent), 200)
	if err != nil {
		renderAction(w, http.StatusServiceUnavailable, actionView{Title: "Try again", Message: "The desk could not be loaded; try again in a moment."})
		s.log().Warn("load desk", "err", err)
		return
	}
	const layout = "Mon 2 Jan 15:04"
	for _, it := range items {
		row := deskRow{LeadID: it.LeadID, Name: it.Name, Email: it.Email, Company: it.Company, Reason: it.Reason, Band: it.Band,
			Score: it.Score, Lapses: it.Lapses, Stage: it.Stage, Outcome: it.Outcome}
		if row.Name == "" {
			row.Name = it.Email
		}
		if rep, ok := team.Rep(it.RepID); ok {
			row.Rep = rep.Name
		}
		if it.Outcome == "open" {
			row.Due = it.DueAt.In(loc).Format(layout)
			if now.After(it.DueAt) {
				row.Overdue = now.Sub(it.DueAt).Round(time.Minute).String()
			}
			if it.RepID == a.Rep {
				// Fresh single-purpose links for this handoff, valid as long as the desk link.
				id := uuid.MustParse(it.LeadID)
				act := track.Action{LeadID: id, Handoff: it.ID, Rep: it.RepID, Expires: a.Expires}
				act.Kind = track.ActionAccept
				row.AcceptURL = "/s/" + s.Keys.SignAction(act)
				act.Kind = track.ActionReject
				row.RejectURL = "/s/" + s.Keys.SignAction(act)
			}
			v.Open = append(v.Open, row)
			continue
		}
		if it.ResponseSeconds != nil {
			row.Response = (time.Duration(*it.ResponseSeconds) * time.Second).Round(time.Second).String()
		}
		v.Done = append(v.Done, row)
	}
	htmlHeaders(w)
	_ = deskPage.Execute(w, v)
}
