package api

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tendhq/tend/internal/db"
	"github.com/tendhq/tend/internal/lifecycle"
	"github.com/tendhq/tend/workflows"
)

// The dashboard is a read-only web view for marketers: the leads, each lead's "why" (score
// breakdown, timeline, stage history, handoffs) and the funnel and SLA reports. Signing in takes
// an admin API key; the session cookie is an expiry signed (HMAC-SHA256) with a session key
// derived from that API key, so no server-side session is kept, every server instance accepts it,
// and removing the key from TEND_API_KEYS ends its sessions. The API key itself never signs
// anything a browser holds: a cookie is then no oracle for the key.

const (
	sessionCookie = "tend_session"
	sessionTTL    = 12 * time.Hour
	sessionLabel  = "tend/session/v1"
	// sessionKeyLabel derives the session key from an API key; changing it ends every session.
	sessionKeyLabel = "tend dashboard session v1"
	dashPageSize    = 50
)

// sessionKey derives the key that signs dashboard sessions from an API key:
// HMAC-SHA256(apiKey, "tend dashboard session v1").
func sessionKey(apiKey string) []byte {
	m := hmac.New(sha256.New, []byte(apiKey))
	m.Write([]byte(sessionKeyLabel))
	return m.Sum(nil)
}

// sessionValue is the cookie value for a session of apiKey that ends at exp, signed with the
// session key derived from apiKey.
func sessionValue(apiKey string, exp time.Time) string {
	e := strconv.FormatInt(exp.Unix(), 10)
	m := hmac.New(sha256.New, sessionKey(apiKey))
	m.Write([]byte(sessionLabel + "|" + e))
	return e + "." + hex.EncodeToString(m.Sum(nil))
}

// validSession reports whether the request carries an unexpired session cookie signed with one
// of the API keys.
func (s *Server) validSession(r *http.Request, now time.Time) bool {
	c, err := r.Cookie(sessionCookie)
	if err != nil || len(c.Value) > 200 {
		return false
	}
	e, _, ok := strings.Cut(c.Value, ".")
	sec, err := strconv.ParseInt(e, 10, 64)
	if !ok || err != nil || !now.Before(time.Unix(sec, 0)) {
		return false
	}
	for _, k := range s.APIKeys {
		if k != "" && subtle.ConstantTimeCompare([]byte(sessionValue(k, time.Unix(sec, 0))), []byte(c.Value)) == 1 {
			return true
		}
	}
	return false
}

func (s *Server) dashboardRoutes(mux routeMux) {
	mux.HandleFunc("GET /app", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/app/leads", http.StatusSeeOther) })
	mux.HandleFunc("GET /app/login", s.loginForm)
	mux.Handle("POST /app/login", s.limitPublic(s.login))
	mux.HandleFunc("POST /app/logout", s.logout)
	mux.Handle("GET /app/leads", s.signedIn(s.dashLeads))
	mux.Handle("GET /app/leads/{id}", s.signedIn(s.dashLead))
	mux.Handle("GET /app/reports", s.signedIn(s.dashReports))
	mux.Handle("GET /app/reports/sequences", s.signedIn(s.dashSequences))
}

// signedIn sends a visitor without a valid session to the sign-in page.
func (s *Server) signedIn(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.validSession(r, time.Now()) {
			http.Redirect(w, r, "/app/login", http.StatusSeeOther)
			return
		}
		h(w, r)
	})
}

func (s *Server) loginForm(w http.ResponseWriter, r *http.Request) {
	renderDash(w, http.StatusOK, "login", dashData{Title: "Sign in"})
}

func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 4<<10)
	if err := r.ParseForm(); err != nil {
		renderDash(w, http.StatusBadRequest, "login", dashData{Title: "Sign in", Error: "The form could not be read."})
		return
	}
	key := strings.TrimSpace(r.PostForm.Get("key"))
	for _, k := range s.APIKeys {
		if k != "" && key != "" && subtle.ConstantTimeCompare([]byte(k), []byte(key)) == 1 {
			http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: sessionValue(k, time.Now().Add(sessionTTL)), Path: "/app",
				MaxAge: int(sessionTTL.Seconds()), HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: secureRequest(r)})
			http.Redirect(w, r, "/app/leads", http.StatusSeeOther)
			return
		}
	}
	renderDash(w, http.StatusUnauthorized, "login", dashData{Title: "Sign in", Error: "That is not an API key of this tend (TEND_API_KEYS)."})
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/app", MaxAge: -1, HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: secureRequest(r)})
	http.Redirect(w, r, "/app/login", http.StatusSeeOther)
}

// secureRequest reports whether the visitor reached tend over HTTPS (directly or through a proxy
// that says so), so that the session cookie is only ever sent back over HTTPS.
func secureRequest(r *http.Request) bool {
	return r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https")
}

type dashData struct {
	Title, Error string
	// leads
	Leads              []db.Lead
	Stage, Band, Seg   string
	Stages, Bands      []string
	Next               string
	Lead               *leadDetail
	Breakdown          []breakdownRow
	Funnel             *db.Funnel
	BySource           []db.Funnel
	SLA                *db.SLAReport
	Reasons            []db.ReasonCount
	From, To           string
	WorkflowNextSendAt string
}

type breakdownRow struct {
	Rule, Kind string
	Points     float64
	Events     int
	Capped     bool
}

func (s *Server) dashLeads(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	d := dashData{Title: "Leads", Stage: q.Get("stage"), Band: q.Get("band"), Seg: q.Get("segment"), Bands: []string{"cold", "warm", "hot"}}
	for _, st := range lifecycle.All {
		d.Stages = append(d.Stages, string(st))
	}
	f := db.LeadFilter{Stage: d.Stage, Band: d.Band, Segment: d.Seg, Limit: dashPageSize}
	if d.Stage != "" {
		if _, err := lifecycle.Parse(d.Stage); err != nil {
			d.Error, f.Stage = "Unknown stage "+strconv.Quote(d.Stage)+".", ""
		}
	}
	if d.Band != "" && d.Band != "cold" && d.Band != "warm" && d.Band != "hot" {
		d.Error, f.Band = "Unknown band "+strconv.Quote(d.Band)+".", ""
	}
	if c := q.Get("cursor"); c != "" {
		at, id, ok := decodeCursor(c)
		if !ok {
			renderDash(w, http.StatusUnprocessableEntity, "leads", dashData{Title: "Leads", Error: "That page link is broken; start from the first page."})
			return
		}
		f.AfterCreated, f.AfterID = at, id
	}
	leads, err := s.Store.ListLeads(r.Context(), f)
	if err != nil {
		s.dashFail(w, "list leads", err)
		return
	}
	d.Leads = leads
	if len(leads) == f.Limit {
		last := leads[len(leads)-1]
		v := url.Values{"cursor": {encodeCursor(last.CreatedAt, last.ID)}}
		for k, val := range map[string]string{"stage": f.Stage, "band": f.Band, "segment": f.Segment} {
			if val != "" {
				v.Set(k, val)
			}
		}
		d.Next = "/app/leads?" + v.Encode()
	}
	renderDash(w, http.StatusOK, "leads", d)
}

func (s *Server) dashLead(w http.ResponseWriter, r *http.Request) {
	detail, err := s.leadDetail(r.Context(), r.PathValue("id"))
	if err != nil {
		s.dashFail(w, "lead", err)
		return
	}
	d := dashData{Title: detail.Email, Lead: &detail}
	if detail.Name != "" {
		d.Title = detail.Name
	}
	var rows []struct {
		RuleID string  `json:"rule_id"`
		Kind   string  `json:"kind"`
		Points float64 `json:"points"`
		Events int     `json:"events"`
		Capped bool    `json:"capped"`
	}
	_ = json.Unmarshal(detail.Breakdown, &rows)
	for _, b := range rows {
		d.Breakdown = append(d.Breakdown, breakdownRow{Rule: b.RuleID, Kind: b.Kind, Points: b.Points, Events: b.Events, Capped: b.Capped})
	}
	if wf := detail.Workflow; wf != nil && !wf.NextSendAt.IsZero() && wf.Status == workflows.StatusRunning {
		d.WorkflowNextSendAt = wf.NextSendAt.UTC().Format("Mon 2 Jan 2006 15:04 UTC")
	}
	renderDash(w, http.StatusOK, "lead", d)
}

func (s *Server) dashReports(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	d := dashData{Title: "Reports", From: q.Get("from"), To: q.Get("to")}
	var from, to time.Time
	for _, p := range []struct {
		v   string
		dst *time.Time
	}{{d.From, &from}, {d.To, &to}} {
		if p.v == "" {
			continue
		}
		t, err := time.Parse("2006-01-02", p.v)
		if err != nil {
			d.Error = fmt.Sprintf("%q is not a date like 2026-11-01; showing all time.", p.v)
			from, to = time.Time{}, time.Time{}
			break
		}
		*p.dst = t
	}
	funnel, err := s.Store.Funnel(r.Context(), db.FunnelFilter{From: from, To: to})
	if err == nil {
		d.BySource, err = s.Store.FunnelBySource(r.Context(), db.FunnelFilter{From: from, To: to})
	}
	var sla db.SLAReport
	if err == nil {
		sla, err = s.Store.SLAReport(r.Context(), from, to, s.businessTime())
	}
	if err == nil {
		d.Reasons, err = s.Store.RejectionReasons(r.Context(), from, to)
	}
	if err != nil {
		s.dashFail(w, "reports", err)
		return
	}
	d.Funnel, d.SLA = &funnel, &sla
	renderDash(w, http.StatusOK, "reports", d)
}

func (s *Server) dashFail(w http.ResponseWriter, what string, err error) {
	switch {
	case errors.Is(err, db.ErrNotFound):
		renderDash(w, http.StatusNotFound, "message", dashData{Title: "Not found", Error: "There is no such lead (it may have been erased)."})
	case errors.Is(err, db.ErrUnavailable), errors.Is(err, context.DeadlineExceeded):
		renderDash(w, http.StatusServiceUnavailable, "message", dashData{Title: "Try again", Error: "The database is unavailable; try again shortly."})
	default:
		s.log().Error("dashboard: "+what, "err", err)
		renderDash(w, http.StatusInternalServerError, "message", dashData{Title: "Error", Error: "Something went wrong; it has been logged."})
	}
}

// htmlHeaders are the headers of every page tend serves: not cached, not indexed by referrer, no
// script, no framing.
func htmlHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'")
}

func renderDash(w http.ResponseWriter, code int, page string, d dashData) {
	htmlHeaders(w)
	w.WriteHeader(code)
	_ = dashTemplates.ExecuteTemplate(w, page, d)
}

var dashFuncs = template.FuncMap{
	"pct":  func(f float64) string { return fmt.Sprintf("%.0f%%", f*100) },
	"when": func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04") },
	"secs": func(f *float64) string {
		if f == nil {
			return "–"
		}
		return (time.Duration(*f) * time.Second).Round(time.Second).String()
	},
	"days": func(f *float64) string {
		if f == nil {
			return "–"
		}
		return fmt.Sprintf("%.1f", *f)
	},
	"sel": func(a, b string) bool { return a == b },
	"attrs": func(m map[string]string) string {
		keys := slices.Sorted(maps.Keys(m))
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = k + ": " + m[k]
		}
		return strings.Join(parts, " · ")
	},
}

var dashTemplates = template.Must(template.New("dash").Funcs(dashFuncs).Parse(`
{{define "head"}}<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex"><title>{{.Title}} · tend</title>
<style>body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:0;color:#1f2933;line-height:1.45}
header{background:#1f2933;color:#fff;padding:.6rem 1.5rem;display:flex;gap:1.5rem;align-items:center}
header a{color:#fff;text-decoration:none}header form{margin-left:auto}header button{background:none;border:1px solid #fff;color:#fff;border-radius:5px;padding:.2rem .7rem;cursor:pointer}
main{max-width:72rem;margin:1.5rem auto;padding:0 1.5rem}table{border-collapse:collapse;width:100%;margin:.5rem 0 1.5rem}
th,td{text-align:left;padding:.4rem .5rem;border-bottom:1px solid #e4e7eb;vertical-align:top}th{font-size:.78rem;text-transform:uppercase;color:#52606d}
.small{color:#52606d;font-size:.85rem}.error{background:#fde8e8;color:#9b1c1c;padding:.5rem .8rem;border-radius:6px}
.num{text-align:right}.band-hot{color:#b42318;font-weight:600}.band-warm{color:#b54708}.band-cold{color:#175cd3}
form.filters{display:flex;gap:.8rem;align-items:end;flex-wrap:wrap}label{display:flex;flex-direction:column;font-size:.85rem}
input,select,button{font:inherit}.card{display:inline-block;border:1px solid #e4e7eb;border-radius:8px;padding:.6rem 1rem;margin:0 .6rem .6rem 0}</style></head><body>
{{end}}
{{define "nav"}}<header><strong>tend</strong><a href="/app/leads">Leads</a><a href="/app/reports">Reports</a>
<form method="post" action="/app/logout"><button type="submit">Sign out</button></form></header>{{end}}

{{define "login"}}{{template "head" .}}<main style="max-width:26rem"><h1>Sign in to tend</h1>
{{if .Error}}<p class="error">{{.Error}}</p>{{end}}
<form method="post" action="/app/login"><label>API key<input type="password" name="key" autocomplete="current-password" required autofocus></label>
<p><button type="submit">Sign in</button></p></form>
<p class="small">Any key of TEND_API_KEYS (tend dev keeps its key in the data directory's api-key file). The session lasts 12 hours.</p></main></body></html>{{end}}

{{define "message"}}{{template "head" .}}{{template "nav"}}<main><h1>{{.Title}}</h1><p class="error">{{.Error}}</p></main></body></html>{{end}}

{{define "leads"}}{{template "head" .}}{{template "nav"}}<main><h1>Leads</h1>
{{if .Error}}<p class="error">{{.Error}}</p>{{end}}
<form class="filters" method="get" action="/app/leads">
<label>Stage<select name="stage"><option value="">any</option>{{range .Stages}}<option{{if sel . $.Stage}} selected{{end}}>{{.}}</option>{{end}}</select></label>
<label>Band<select name="band"><option value="">any</option>{{range .Bands}}<option{{if sel . $.Band}} selected{{end}}>{{.}}</option>{{end}}</select></label>
<label>Segment<input name="segment" value="{{.Seg}}" size="12"></label><button type="submit">Filter</button></form>
<table><thead><tr><th>Lead</th><th>Company</th><th>Segment</th><th>Stage</th><th class="num">Score</th><th>Band</th><th>Source</th><th>Captured</th></tr></thead><tbody>
{{range .Leads}}<tr><td><a href="/app/leads/{{.ID}}">{{if .Name}}{{.Name}}{{else}}{{.Email}}{{end}}</a><br><span class="small">{{.Email}}</span></td>
<td>{{.Company}}</td><td>{{.Segment}}</td><td>{{.Stage}}</td><td class="num">{{.Score}}</td><td class="band-{{.Band}}">{{.Band}}</td><td>{{.Source}}</td><td class="small">{{when .CreatedAt}}</td></tr>
{{else}}<tr><td colspan="8">No lead matches.</td></tr>{{end}}</tbody></table>
{{if .Next}}<p><a href="{{.Next}}">Next page →</a></p>{{end}}</main></body></html>{{end}}

{{define "lead"}}{{template "head" .}}{{template "nav"}}<main>{{with .Lead}}
<h1>{{if .Name}}{{.Name}}{{else}}{{.Email}}{{end}}</h1>
<p>{{.Email}}{{if .Company}} · {{.Company}}{{end}} · segment <strong>{{.Segment}}</strong> · source {{.Source}}{{if .TimeZone}} · {{.TimeZone}}{{end}}</p>
<div><span class="card">Stage<br><strong>{{.Stage}}</strong></span><span class="card">Score<br><strong>{{.Score}}</strong></span>
<span class="card">Band<br><strong class="band-{{.Band}}">{{.Band}}</strong></span>{{if .HandoffReason}}<span class="card">Hand-off ready<br><strong>{{.HandoffReason}}</strong></span>{{end}}
{{if .UnsubscribedAt}}<span class="card">Unsubscribed<br><strong>{{when .UnsubscribedAt.UTC}}</strong></span>{{end}}
{{if $.WorkflowNextSendAt}}<span class="card">Next email<br><strong>{{$.WorkflowNextSendAt}}</strong></span>{{end}}</div>
{{if .Interests}}<p>Interests: {{range $i, $v := .Interests}}{{if $i}}, {{end}}{{$v}}{{end}}</p>{{end}}
{{if .Attributes}}<p class="small">{{attrs .Attributes}}</p>{{end}}{{end}}
<h2>Why this score</h2>
<table><thead><tr><th>Rule</th><th>Kind</th><th class="num">Points</th><th class="num">Events</th><th></th></tr></thead><tbody>
{{range .Breakdown}}<tr><td>{{.Rule}}</td><td>{{.Kind}}</td><td class="num">{{.Points}}</td><td class="num">{{if .Events}}{{.Events}}{{end}}</td><td class="small">{{if .Capped}}capped{{end}}</td></tr>
{{else}}<tr><td colspan="5">No rule has scored yet.</td></tr>{{end}}</tbody></table>
{{with .Lead}}<h2>Timeline</h2>
<table><thead><tr><th>When (UTC)</th><th>Kind</th><th>What</th><th>Detail</th></tr></thead><tbody>
{{range .Timeline}}<tr><td class="small">{{when .At}}</td><td>{{.Kind}}</td><td>{{.What}}</td><td class="small">{{.Detail}}</td></tr>
{{else}}<tr><td colspan="4">Nothing yet.</td></tr>{{end}}</tbody></table>
{{if .Handoffs}}<h2>Handoffs to sales</h2><table><thead><tr><th>Rep</th><th>Policy</th><th>Handed off</th><th>Due</th><th>Outcome</th><th class="num">Lapses</th><th>Reason given</th></tr></thead><tbody>
{{range .Handoffs}}<tr><td>{{.RepID}}</td><td>{{.Policy}}</td><td class="small">{{when .HandedOffAt}}</td><td class="small">{{when .DueAt}}</td><td>{{.Outcome}}</td><td class="num">{{.Lapses}}</td><td>{{.RejectReason}}</td></tr>{{end}}
</tbody></table>{{end}}{{end}}</main></body></html>{{end}}

{{define "reports"}}{{template "head" .}}{{template "nav"}}<main><h1>Reports</h1>
{{if .Error}}<p class="error">{{.Error}}</p>{{end}}
<form class="filters" method="get" action="/app/reports"><label>Captured from<input type="date" name="from" value="{{.From}}"></label>
<label>until (not including)<input type="date" name="to" value="{{.To}}"></label><button type="submit">Show</button></form>
<p><a href="/app/reports/sequences">Sequences, steps and A/B variants →</a></p>
{{with .Funnel}}<h2>Funnel</h2><table><thead><tr>{{range .Stages}}<th class="num">{{.Stage}}</th>{{end}}<th class="num">SQL→won (days)</th><th class="num">Revenue from SQLs</th></tr></thead>
<tbody><tr>{{range .Stages}}<td class="num">{{.Leads}}</td>{{end}}<td class="num">{{days .SQLToWonDays}}</td><td class="num">{{.RevenueFromSQLs}}</td></tr>
<tr class="small">{{range .Conversions}}<td class="num">{{.From}}→{{.To}} {{pct .Rate}}</td>{{end}}<td></td><td></td><td></td></tr></tbody></table>{{end}}
{{if .BySource}}<h3>By source</h3><table><thead><tr><th>Source</th><th class="num">lead</th><th class="num">mql</th><th class="num">sal</th><th class="num">sql</th><th class="num">customer</th><th class="num">Revenue</th></tr></thead><tbody>
{{range .BySource}}<tr><td>{{.Source}}</td>{{range .Stages}}<td class="num">{{.Leads}}</td>{{end}}<td class="num">{{.RevenueFromSQLs}}</td></tr>{{end}}</tbody></table>{{end}}
{{with .SLA}}<h2>Sales response (SLA)</h2><table><thead><tr><th>Rep</th><th class="num">Handoffs</th><th class="num">Answered</th><th class="num">Median (wall clock)</th><th class="num">p90 (wall clock)</th><th class="num">Median (business hours)</th><th class="num">p90 (business hours)</th><th class="num">Breaches</th><th class="num">Breach rate</th></tr></thead><tbody>
{{range .ByRep}}<tr><td>{{.Key}}</td><td class="num">{{.Handoffs}}</td><td class="num">{{.Responded}}</td><td class="num">{{secs .MedianResponseSeconds}}</td><td class="num">{{secs .P90ResponseSeconds}}</td><td class="num">{{secs .MedianBusinessSeconds}}</td><td class="num">{{secs .P90BusinessSeconds}}</td><td class="num">{{.Breaches}}</td><td class="num">{{pct .BreachRate}}</td></tr>
{{else}}<tr><td colspan="9">No handoffs in this period.</td></tr>{{end}}</tbody></table>
<p class="small">Wall clock counts every hour from handoff to answer; business hours count only the rep's calendar, as the response deadline does. A breach is an answer after the deadline, or none by it.</p>
<table><thead><tr><th>Policy</th><th class="num">Handoffs</th><th class="num">Answered</th><th class="num">Median (wall clock)</th><th class="num">p90 (wall clock)</th><th class="num">Median (business hours)</th><th class="num">p90 (business hours)</th><th class="num">Breaches</th><th class="num">Breach rate</th></tr></thead><tbody>
{{range .ByPolicy}}<tr><td>{{.Key}}</td><td class="num">{{.Handoffs}}</td><td class="num">{{.Responded}}</td><td class="num">{{secs .MedianResponseSeconds}}</td><td class="num">{{secs .P90ResponseSeconds}}</td><td class="num">{{secs .MedianBusinessSeconds}}</td><td class="num">{{secs .P90BusinessSeconds}}</td><td class="num">{{.Breaches}}</td><td class="num">{{pct .BreachRate}}</td></tr>{{end}}</tbody></table>{{end}}
{{if .Reasons}}<h2>Why sales rejected leads</h2><table><thead><tr><th>Reason</th><th class="num">Count</th></tr></thead><tbody>
{{range .Reasons}}<tr><td>{{.Reason}}</td><td class="num">{{.Count}}</td></tr>{{end}}</tbody></table>{{end}}
</main></body></html>{{end}}
`))
