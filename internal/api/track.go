package api

import (
	"context"
	"errors"
	"html/template"
	"net/http"
	"time"

	"github.com/tendhq/tend/internal/engage"
)

// pixel is a transparent 1×1 GIF.
var pixel = []byte{0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0x01, 0x00, 0x01, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00,
	0xff, 0xff, 0xff, 0x21, 0xf9, 0x04, 0x01, 0x00, 0x00, 0x00, 0x00, 0x2c, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01,
	0x00, 0x00, 0x02, 0x02, 0x44, 0x01, 0x00, 0x3b}

func hitFrom(r *http.Request) engage.Hit {
	purpose := r.Header.Get("Sec-Purpose")
	if purpose == "" {
		purpose = r.Header.Get("Purpose")
	}
	if purpose == "" {
		purpose = r.Header.Get("X-Moz")
	}
	return engage.Hit{Token: r.PathValue("token"), Method: r.Method, UserAgent: r.UserAgent(), Purpose: purpose, At: time.Now()}
}

// open answers the pixel at once; recording happens in the background and never delays the image.
func (s *Server) open(w http.ResponseWriter, r *http.Request) {
	s.Engage.QueueOpen(hitFrom(r))
	w.Header().Set("Content-Type", "image/gif")
	w.Header().Set("Cache-Control", "no-cache, no-store, must-revalidate, private")
	w.Header().Set("Expires", "0")
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(pixel)
	}
}

// click records the click and redirects to the URL stored for that send and link.
func (s *Server) click(w http.ResponseWriter, r *http.Request) {
	target, err := s.Engage.Click(r.Context(), hitFrom(r))
	if errors.Is(err, engage.ErrInvalidLink) {
		page(w, http.StatusNotFound, "Link not found", "This link is not valid. If you copied it from an email, check that it is complete.")
		return
	}
	if err != nil {
		s.log().Error("record click", "err", err)
		page(w, http.StatusServiceUnavailable, "Try again", "We could not follow this link just now. Please try again in a moment.")
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer")
	http.Redirect(w, r, target, http.StatusFound)
}

var unsubscribePage = template.Must(template.New("u").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex"><title>{{.Title}}</title>
<style>body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;max-width:34rem;margin:3rem auto;padding:0 1rem;color:#1f2933;line-height:1.5}
button{font:inherit;padding:.6rem 1.2rem;border-radius:6px;border:1px solid #1f2933;background:#1f2933;color:#fff;cursor:pointer}
button.secondary{background:#fff;color:#1f2933}fieldset{border:1px solid #e5e7eb;border-radius:8px;margin:1.5rem 0;padding:1rem}
label{display:block;margin:.3rem 0}</style></head><body>
<h1>{{.Title}}</h1>
{{if .Done}}<p>{{.Done}}</p>{{else}}
<p>Do you want to stop receiving these emails?</p>
<form method="post" action="{{.Action}}"><input type="hidden" name="List-Unsubscribe" value="One-Click">
<button type="submit">Unsubscribe from all emails</button></form>
{{if .Interests}}<form method="post" action="{{.Action}}/preferences"><fieldset><legend>Or choose the topics you no longer want</legend>
{{range .Interests}}<label><input type="checkbox" name="opt_out" value="{{.Name}}"{{if .Out}} checked{{end}}> {{.Name}}</label>{{end}}
<p><button class="secondary" type="submit">Save my topics</button></p></fieldset></form>{{end}}
{{end}}
</body></html>`))

type interestChoice struct {
	Name string
	Out  bool
}

type unsubscribeView struct {
	Title     string
	Action    string
	Done      string
	Interests []interestChoice
}

func renderUnsubscribe(w http.ResponseWriter, v unsubscribeView) {
	htmlHeaders(w)
	w.WriteHeader(http.StatusOK)
	_ = unsubscribePage.Execute(w, v)
}

// unsubscribeForm shows the confirmation page and the preference centre. A GET never unsubscribes:
// mail scanners fetch every link. Invalid and unknown tokens get the same page, minus the topics.
func (s *Server) unsubscribeForm(w http.ResponseWriter, r *http.Request) {
	v := unsubscribeView{Title: "Unsubscribe", Action: "/u/" + r.PathValue("token")}
	if prefs, err := s.Engage.Preferences(r.Context(), r.PathValue("token")); err == nil {
		if prefs.Unsubscribed {
			v.Done = "You are unsubscribed. You will not receive further emails from us."
		}
		for _, in := range prefs.Interests {
			out := false
			for _, o := range prefs.OptedOut {
				out = out || o == in
			}
			v.Interests = append(v.Interests, interestChoice{Name: in, Out: out})
		}
	}
	renderUnsubscribe(w, v)
}

// unsubscribe is the RFC 8058 one-click endpoint (and the page's button): it unsubscribes at once,
// needs no login, never redirects, and answers the same for repeats and for invalid tokens.
func (s *Server) unsubscribe(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 4<<10)
	if err := r.ParseForm(); err != nil {
		page(w, http.StatusBadRequest, "Unsubscribe", "The request could not be read.")
		return
	}
	how := "page"
	if r.PostForm.Get("List-Unsubscribe") == "One-Click" {
		how = "one-click"
	}
	err := s.Engage.Unsubscribe(context.WithoutCancel(r.Context()), r.PathValue("token"), how)
	if err != nil && !errors.Is(err, engage.ErrInvalidLink) {
		s.log().Error("unsubscribe", "err", err)
		page(w, http.StatusServiceUnavailable, "Unsubscribe", "We could not record your request just now. Please try again in a moment.")
		return
	}
	renderUnsubscribe(w, unsubscribeView{Title: "Unsubscribed", Done: "You are unsubscribed. You will not receive further emails from us."})
}

func (s *Server) preferences(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 8<<10)
	if err := r.ParseForm(); err != nil {
		page(w, http.StatusBadRequest, "Preferences", "The request could not be read.")
		return
	}
	err := s.Engage.SetPreferences(r.Context(), r.PathValue("token"), r.PostForm["opt_out"])
	if err != nil && !errors.Is(err, engage.ErrInvalidLink) {
		s.log().Error("save preferences", "err", err)
		page(w, http.StatusServiceUnavailable, "Preferences", "We could not save your choice just now. Please try again in a moment.")
		return
	}
	renderUnsubscribe(w, unsubscribeView{Title: "Preferences saved", Done: "Thank you — we will only write to you about the topics you kept."})
}

var plainPage = template.Must(template.New("p").Parse(`<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">
<meta name="robots" content="noindex"><title>{{.T}}</title></head><body style="font-family:sans-serif;max-width:34rem;margin:3rem auto">
<h1>{{.T}}</h1><p>{{.M}}</p></body></html>`))

func page(w http.ResponseWriter, code int, title, msg string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = plainPage.Execute(w, struct{ T, M string }{title, msg})
}

// limitPublic bounds what anonymous clients may send to tracking endpoints: small requests, and a
// rate per client address.
func (s *Server) limitPublic(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if len(r.PathValue("token")) > 256 || len(r.URL.RawQuery) > 1024 {
			page(w, http.StatusNotFound, "Link not found", "This link is not valid.")
			return
		}
		if s.Limiter != nil && !s.Limiter.Allow(s.clientAddr(r)) {
			w.Header().Set("Retry-After", "1")
			page(w, http.StatusTooManyRequests, "Slow down", "Too many requests; please try again in a moment.")
			return
		}
		h(w, r)
	})
}
