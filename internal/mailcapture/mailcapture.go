// Package mailcapture is tend's capture SMTP server: it accepts every message
// sent to it and keeps it in memory instead of delivering it. `tend dev`
// runs it as the outbox a developer reads in a browser, and end-to-end tests
// use it as the receiving end, including to inject SMTP failures.
package mailcapture

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/mail"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Defaults applied by New.
const (
	DefaultMaxMessages     = 1000
	DefaultMaxMessageBytes = 10 << 20
)

// Message is one captured message: its envelope, its raw bytes and the parts
// a person or a test looks at.
type Message struct {
	// ID is the server's own sequential identifier, "1" for the first
	// message; IDs are not reused, even after Reset.
	ID string
	// From is the envelope sender (MAIL FROM).
	From string
	// To holds the envelope recipients (RCPT TO) that were accepted.
	To []string
	// Received is when the message data was accepted.
	Received time.Time
	// Raw is the message as sent over DATA.
	Raw []byte

	// Header is the top-level header, as sent (not decoded).
	Header mail.Header
	// Subject is the Subject header with RFC 2047 encoded words decoded.
	Subject string
	// MessageID is the Message-ID header as sent, angle brackets included.
	MessageID string
	// Text is the first text/plain part that is not an attachment, decoded
	// to UTF-8.
	Text string
	// HTML is the first text/html part that is not an attachment, decoded
	// to UTF-8. It is untrusted content.
	HTML string
}

// Options configures a Server. Zero values take the defaults.
type Options struct {
	// MaxMessages bounds memory: only the newest MaxMessages are kept.
	MaxMessages int
	// MaxMessageBytes is the largest message accepted (SMTP SIZE).
	MaxMessageBytes int64
	// Log receives operational logs; nil discards them.
	Log *slog.Logger
	// Dir, when set, keeps every message on disk there and loads them at New, so the inbox
	// survives a restart. Empty keeps messages in memory only.
	Dir string
}

// Server is a capture SMTP server with an in-memory store.
type Server struct {
	opts Options
	log  *slog.Logger
	smtp *smtp.Server

	mu       sync.Mutex
	ln       net.Listener
	msgs     []Message
	lastID   uint64
	attempts map[string]int
	reject   func(rcpt string, attempt int) *smtp.SMTPError
	// changed is closed and replaced whenever msgs changes, so WaitFor
	// wakes on arrival instead of polling.
	changed chan struct{}
}

// New returns a Server that is not yet listening; see Start and
// ListenAndServe.
func New(opts Options) *Server {
	if opts.MaxMessages <= 0 {
		opts.MaxMessages = DefaultMaxMessages
	}
	if opts.MaxMessageBytes <= 0 {
		opts.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		opts:     opts,
		log:      opts.Log,
		attempts: make(map[string]int),
		changed:  make(chan struct{}),
	}
	s.load()
	srv := smtp.NewServer(smtp.BackendFunc(s.newSession))
	srv.Domain = "tend-mailcapture"
	srv.AllowInsecureAuth = true
	srv.MaxMessageBytes = opts.MaxMessageBytes
	srv.MaxRecipients = 1000
	srv.ReadTimeout = time.Minute
	srv.WriteTimeout = time.Minute
	srv.ErrorLog = slogPrinter{s.log}
	s.smtp = srv
	return s
}

// Start listens on addr ("" means 127.0.0.1 on a free port) and serves in
// the background until Close.
func (s *Server) Start(addr string) error {
	ln, err := s.listen(addr)
	if err != nil {
		return err
	}
	go func() {
		if err := s.smtp.Serve(ln); err != nil {
			s.log.Error("mailcapture: serve", "err", err)
		}
	}()
	return nil
}

// ListenAndServe listens on addr ("" means 127.0.0.1 on a free port) and
// serves until Close, when it returns nil.
func (s *Server) ListenAndServe(addr string) error {
	ln, err := s.listen(addr)
	if err != nil {
		return err
	}
	return s.smtp.Serve(ln)
}

func (s *Server) listen(addr string) (net.Listener, error) {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("mailcapture: listen on %s: %w", addr, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln != nil {
		ln.Close()
		return nil, errors.New("mailcapture: server already started")
	}
	s.ln = ln
	s.log.Info("mailcapture: listening", "addr", ln.Addr().String())
	return ln, nil
}

// Addr returns the address the server listens on, such as
// "127.0.0.1:43567", or "" before Start.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// Close stops listening and drops open connections. The captured messages
// stay readable.
func (s *Server) Close() error {
	err := s.smtp.Close()
	if errors.Is(err, smtp.ErrServerClosed) {
		return nil
	}
	return err
}

// Messages returns the stored messages in arrival order.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.msgs...)
}

// Message returns the stored message with the given ID.
func (s *Server) Message(id string) (Message, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range s.msgs {
		if m.ID == id {
			return m, true
		}
	}
	return Message{}, false
}

// WaitFor blocks until at least n messages are stored, then returns them all
// in arrival order. It returns ctx's error, wrapped, if ctx ends first.
func (s *Server) WaitFor(ctx context.Context, n int) ([]Message, error) {
	for {
		s.mu.Lock()
		if len(s.msgs) >= n {
			msgs := append([]Message(nil), s.msgs...)
			s.mu.Unlock()
			return msgs, nil
		}
		have, changed := len(s.msgs), s.changed
		s.mu.Unlock()

		select {
		case <-changed:
		case <-ctx.Done():
			return nil, fmt.Errorf("mailcapture: wait for %d messages (have %d): %w", n, have, context.Cause(ctx))
		}
	}
}

// Reset forgets all stored messages and the RCPT attempt counts that
// RejectRcpt sees. A RejectRcpt function stays installed.
func (s *Server) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := make([]string, len(s.msgs))
	for i, m := range s.msgs {
		ids[i] = m.ID
	}
	s.forget(ids)
	s.msgs = nil
	s.attempts = make(map[string]int)
	s.notifyLocked()
}

// RejectRcpt installs fn to decide each RCPT TO: a non-nil error is sent to
// the client instead of accepting the recipient (a 4xx code for a temporary
// failure, 5xx for a permanent one). attempt counts the RCPTs seen for that
// address (case-insensitively) since the start or the last Reset, from 1, so
// fn can fail the first tries and accept a retry. nil accepts everyone.
func (s *Server) RejectRcpt(fn func(rcpt string, attempt int) *smtp.SMTPError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reject = fn
}

func (s *Server) rcpt(to string) error {
	s.mu.Lock()
	key := strings.ToLower(to)
	s.attempts[key]++
	attempt, fn := s.attempts[key], s.reject
	s.mu.Unlock()

	if fn == nil {
		return nil
	}
	// A typed nil *SMTPError in an error interface would not be nil.
	if e := fn(to, attempt); e != nil {
		s.log.Info("mailcapture: rejected recipient on request", "attempt", attempt, "code", e.Code)
		return e
	}
	return nil
}

func (s *Server) store(from string, to []string, raw []byte) Message {
	m := parse(raw, s.log)
	m.From, m.To, m.Raw = from, to, raw
	m.Received = time.Now()

	s.mu.Lock()
	defer s.mu.Unlock()
	s.lastID++
	m.ID = strconv.FormatUint(s.lastID, 10)
	s.msgs = append(s.msgs, m)
	s.save(m)
	if over := len(s.msgs) - s.opts.MaxMessages; over > 0 {
		dropped := make([]string, over)
		for i, d := range s.msgs[:over] {
			dropped[i] = d.ID
		}
		s.forget(dropped)
		// Clear the dropped entries so their bytes can be collected.
		clear(s.msgs[:over])
		s.msgs = s.msgs[over:]
	}
	s.notifyLocked()
	return m
}

func (s *Server) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

func (s *Server) newSession(*smtp.Conn) (smtp.Session, error) {
	return &session{srv: s}, nil
}

// session holds one SMTP transaction's envelope.
type session struct {
	srv  *Server
	from string
	to   []string
}

var _ smtp.AuthSession = (*session)(nil)

// AuthMechanisms offers PLAIN so senders configured with credentials work
// against the capture server; any credentials are accepted.
func (s *session) AuthMechanisms() []string { return []string{sasl.Plain} }

// Auth accepts any credentials.
func (s *session) Auth(mech string) (sasl.Server, error) {
	if mech != sasl.Plain {
		return nil, smtp.ErrAuthUnknownMechanism
	}
	return sasl.NewPlainServer(func(identity, username, password string) error { return nil }), nil
}

// Mail records the envelope sender.
func (s *session) Mail(from string, _ *smtp.MailOptions) error {
	s.from = from
	return nil
}

// Rcpt records a recipient unless a RejectRcpt function refuses it.
func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if err := s.srv.rcpt(to); err != nil {
		return err
	}
	s.to = append(s.to, to)
	return nil
}

// Data stores the message.
func (s *session) Data(r io.Reader) error {
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(r); err != nil {
		// Typically smtp.ErrDataTooLarge, which the client sees as 552.
		return err
	}
	m := s.srv.store(s.from, s.to, buf.Bytes())
	s.srv.log.Info("mailcapture: captured message", "id", m.ID, "bytes", len(m.Raw), "recipients", len(m.To))
	return nil
}

// Reset discards the current transaction's envelope.
func (s *session) Reset() {
	s.from, s.to = "", nil
}

// Logout has nothing to release.
func (s *session) Logout() error { return nil }

// slogPrinter adapts go-smtp's Printf-style error log to slog.
type slogPrinter struct{ log *slog.Logger }

func (p slogPrinter) Printf(format string, v ...any) {
	p.log.Warn("mailcapture: smtp: " + fmt.Sprintf(format, v...))
}

func (p slogPrinter) Println(v ...any) {
	p.log.Warn("mailcapture: smtp: " + strings.TrimSuffix(fmt.Sprintln(v...), "\n"))
}
