package mailcapture

import (
	"embed"
	"encoding/json"
	"html/template"
	"net/http"
	"slices"
	"strconv"
	"time"
)

//go:embed templates/*.html
var templateFS embed.FS

var templates = template.Must(template.New("").Funcs(template.FuncMap{
	"when": func(t time.Time) string { return t.Format("2006-01-02 15:04:05") },
}).ParseFS(templateFS, "templates/*.html"))

// pageCSP locks the pages down: no scripts anywhere, and the sandboxed
// message iframe inherits it. Images may load so a developer sees the email
// as a lead would (tracking pixels included).
const pageCSP = "default-src 'none'; style-src 'unsafe-inline'; img-src * data:; font-src * data:; frame-src 'self'; form-action 'self'; base-uri 'none'"

// jsonMessage is the JSON shape of a message in GET /api/messages.
type jsonMessage struct {
	ID        string              `json:"id"`
	From      string              `json:"from"`
	To        []string            `json:"to"`
	Subject   string              `json:"subject"`
	MessageID string              `json:"message_id"`
	Received  time.Time           `json:"received"`
	Text      string              `json:"text"`
	HTML      string              `json:"html"`
	Headers   map[string][]string `json:"headers"`
}

// Handler serves the captured messages:
//
//	GET    /                    the inbox page, newest first
//	GET    /messages/{id}       one message: headers, text, HTML in a sandboxed iframe
//	GET    /messages/{id}/raw   the raw message as text/plain
//	POST   /clear               clears the inbox from the page, then redirects to /
//	GET    /api/messages        JSON list in arrival order; ?after=ID only those that came after message ID
//	DELETE /api/messages        clears the inbox
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", s.serveInbox)
	mux.HandleFunc("GET /messages/{id}", s.serveMessage)
	mux.HandleFunc("GET /messages/{id}/raw", s.serveRaw)
	mux.HandleFunc("POST /clear", func(w http.ResponseWriter, r *http.Request) {
		s.Reset()
		http.Redirect(w, r, "/", http.StatusSeeOther)
	})
	mux.HandleFunc("GET /api/messages", s.serveAPIList)
	mux.HandleFunc("DELETE /api/messages", func(w http.ResponseWriter, r *http.Request) {
		s.Reset()
		w.WriteHeader(http.StatusNoContent)
	})
	return mux
}

func (s *Server) serveInbox(w http.ResponseWriter, r *http.Request) {
	msgs := s.Messages()
	slices.Reverse(msgs)
	s.render(w, "inbox.html", struct {
		Messages []Message
		Addr     string
	}{msgs, s.Addr()})
}

func (s *Server) serveMessage(w http.ResponseWriter, r *http.Request) {
	m, ok := s.Message(r.PathValue("id"))
	if !ok {
		http.NotFound(w, r)
		return
	}
	var srcdoc string
	if m.HTML != "" {
		// Links open outside the sandboxed frame, where the sandbox allows
		// popups but still no scripts or same-origin access.
		srcdoc = `<base target="_blank">` + m.HTML
	}
	keys := make([]string, 0, len(m.Header))
	for k := range m.Header {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	s.render(w, "message.html", struct {
		Message
		HeaderKeys []string
		SrcDoc     string
	}{m, keys, srcdoc})
}

func (s *Server) serveRaw(w http.ResponseWriter, r *http.Request) {
	m, ok := s.Message(r.PathValue("id"))
	if !ok {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Write(m.Raw)
}

func (s *Server) serveAPIList(w http.ResponseWriter, r *http.Request) {
	// ?after=ID lists only the messages that arrived after message ID, so that a client polling a
	// busy inbox reads each message once.
	var after uint64
	if v := r.URL.Query().Get("after"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			http.Error(w, "after: want a message id (a whole number)", http.StatusBadRequest)
			return
		}
		after = n
	}
	msgs := s.Messages()
	out := make([]jsonMessage, 0, len(msgs))
	for _, m := range msgs {
		if after > 0 {
			if id, err := strconv.ParseUint(m.ID, 10, 64); err == nil && id <= after {
				continue
			}
		}
		out = append(out, jsonMessage{
			ID: m.ID, From: m.From, To: m.To, Subject: m.Subject,
			MessageID: m.MessageID, Received: m.Received,
			Text: m.Text, HTML: m.HTML, Headers: m.Header,
		})
	}
	w.Header().Set("Content-Type", "application/json")
	if err := json.NewEncoder(w).Encode(out); err != nil {
		s.log.Warn("mailcapture: write JSON", "err", err)
	}
}

func (s *Server) render(w http.ResponseWriter, name string, data any) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", pageCSP)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Referrer-Policy", "no-referrer")
	if err := templates.ExecuteTemplate(w, name, data); err != nil {
		s.log.Warn("mailcapture: render page", "page", name, "err", err)
	}
}
