// Package mail delivers tend's email over SMTP with go-mail: a small pool of reused connections,
// one recipient per message, a Message-ID chosen by the caller, and SMTP failures classified into
// temporary (retry later), hard bounce (suppress the address) and other permanent failures.
package mail

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	gomail "github.com/wneessen/go-mail"
)

// Config says where and how to deliver.
type Config struct {
	Host     string
	Port     int
	Username string
	Password string
	// TLS is one of "none", "starttls" (required), "opportunistic" or "tls" (implicit TLS, smtps).
	TLS string
	// Timeout bounds each SMTP command.
	Timeout time.Duration
	// PoolSize is how many connections are kept open for reuse.
	PoolSize int
	// IdleTimeout closes a pooled connection that has not been used for this long instead of
	// reusing it; SMTP servers drop idle clients.
	IdleTimeout time.Duration
	// HELO is the name sent in EHLO; empty means go-mail's default.
	HELO string
}

// ParseURL reads an SMTP_URL such as smtp://user:pass@host:587?tls=starttls or
// smtps://host:465. The default TLS mode is starttls for smtp:// and tls for smtps://.
func ParseURL(raw string) (Config, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return Config{}, fmt.Errorf("SMTP_URL: %w", err)
	}
	cfg := Config{Host: u.Hostname()}
	switch u.Scheme {
	case "smtp":
		cfg.TLS, cfg.Port = "starttls", 587
	case "smtps":
		cfg.TLS, cfg.Port = "tls", 465
	default:
		return Config{}, fmt.Errorf("SMTP_URL: scheme must be smtp or smtps, not %q", u.Scheme)
	}
	if cfg.Host == "" {
		return Config{}, errors.New("SMTP_URL: host is missing")
	}
	if p := u.Port(); p != "" {
		cfg.Port, err = strconv.Atoi(p)
		if err != nil || cfg.Port <= 0 || cfg.Port > 65535 {
			return Config{}, fmt.Errorf("SMTP_URL: invalid port %q", p)
		}
	}
	if u.User != nil {
		cfg.Username = u.User.Username()
		cfg.Password, _ = u.User.Password()
	}
	q := u.Query()
	if t := q.Get("tls"); t != "" {
		switch t {
		case "none", "starttls", "opportunistic", "tls":
			cfg.TLS = t
		default:
			return Config{}, fmt.Errorf("SMTP_URL: tls must be none, starttls, opportunistic or tls, not %q", t)
		}
	}
	if p := q.Get("pool"); p != "" {
		cfg.PoolSize, err = strconv.Atoi(p)
		if err != nil || cfg.PoolSize < 1 {
			return Config{}, fmt.Errorf("SMTP_URL: pool must be a positive number, not %q", p)
		}
	}
	return cfg, nil
}

// Message is one email to one recipient. Every header value here is encoded by go-mail; none is
// written raw, so CR/LF in a name or subject cannot inject headers.
type Message struct {
	FromName     string
	FromAddress  string
	ToName       string
	ToAddress    string
	EnvelopeFrom string
	Subject      string
	// MessageID is the full Message-ID including angle brackets, e.g. <id@example.com>.
	MessageID string
	Text      string
	HTML      string
	// Headers are extra generated headers (List-Unsubscribe and the like); values are encoded.
	Headers map[string]string
	Date    time.Time
}

// Failure is a classified delivery failure. Its text never contains the recipient's address.
type Failure struct {
	// Temporary failures (4xx replies, network errors) may succeed later.
	Temporary bool
	// Code is the SMTP reply code, 0 when the server never answered.
	Code int
	// Enhanced is the RFC 3463 enhanced status code (e.g. 5.1.1) when the server gave one.
	Enhanced string
	// Stage names the SMTP step that failed (dial, mail from, rcpt to, data).
	Stage string
	msg   string
}

func (f *Failure) Error() string {
	s := "smtp " + f.Stage
	if f.Code != 0 {
		s += fmt.Sprintf(": %d", f.Code)
	}
	if f.Enhanced != "" {
		s += " " + f.Enhanced
	}
	if f.msg != "" {
		s += ": " + f.msg
	}
	return s
}

// HardBounce reports whether the failure says the mailbox does not exist or can never accept mail
// (5.1.x, or a 5xx to RCPT without an enhanced code other than 5.7.x). Policy rejections (5.7.x)
// are permanent but are not the recipient's fault and do not suppress the address.
func (f *Failure) HardBounce() bool {
	if f.Temporary || f.Code < 500 {
		return false
	}
	if strings.HasPrefix(f.Enhanced, "5.1.") || strings.HasPrefix(f.Enhanced, "5.2.1") {
		return true
	}
	if strings.HasPrefix(f.Enhanced, "5.7.") {
		return false
	}
	return f.Stage == "rcpt to" && (f.Code == 550 || f.Code == 551 || f.Code == 553)
}

// Mailer sends messages over a pool of reused SMTP connections. It is safe for concurrent use.
type Mailer struct {
	cfg  Config
	log  *slog.Logger
	mu   sync.Mutex
	idle []*pooled
}

type pooled struct {
	client   *gomail.Client
	lastUsed time.Time
}

// New returns a Mailer; it opens connections lazily.
func New(cfg Config, log *slog.Logger) (*Mailer, error) {
	if cfg.Host == "" {
		return nil, errors.New("mail: host is required")
	}
	if cfg.Port == 0 {
		cfg.Port = 25
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 30 * time.Second
	}
	if cfg.PoolSize == 0 {
		cfg.PoolSize = 4
	}
	if cfg.IdleTimeout == 0 {
		cfg.IdleTimeout = 30 * time.Second
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Mailer{cfg: cfg, log: log}, nil
}

func (m *Mailer) newClient() (*gomail.Client, error) {
	opts := []gomail.Option{gomail.WithPort(m.cfg.Port), gomail.WithTimeout(m.cfg.Timeout)}
	switch m.cfg.TLS {
	case "none":
		opts = append(opts, gomail.WithTLSPolicy(gomail.NoTLS))
	case "opportunistic":
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSOpportunistic))
	case "tls":
		opts = append(opts, gomail.WithSSL())
	default:
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSMandatory))
	}
	if m.cfg.Username != "" {
		opts = append(opts, gomail.WithSMTPAuth(gomail.SMTPAuthAutoDiscover), gomail.WithUsername(m.cfg.Username),
			gomail.WithPassword(m.cfg.Password))
	}
	if m.cfg.HELO != "" {
		opts = append(opts, gomail.WithHELO(m.cfg.HELO))
	}
	return gomail.NewClient(m.cfg.Host, opts...)
}

// get returns a connected client: a pooled one if fresh enough, else a new connection.
func (m *Mailer) get(ctx context.Context) (*pooled, error) {
	m.mu.Lock()
	for len(m.idle) > 0 {
		p := m.idle[len(m.idle)-1]
		m.idle = m.idle[:len(m.idle)-1]
		if time.Since(p.lastUsed) < m.cfg.IdleTimeout {
			m.mu.Unlock()
			return p, nil
		}
		_ = p.client.Close()
	}
	m.mu.Unlock()
	c, err := m.newClient()
	if err != nil {
		return nil, &Failure{Stage: "configure", msg: err.Error()}
	}
	if err := c.DialWithContext(ctx); err != nil {
		return nil, classify(err, "dial")
	}
	return &pooled{client: c}, nil
}

func (m *Mailer) put(p *pooled) {
	p.lastUsed = time.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.idle) >= m.cfg.PoolSize {
		_ = p.client.Close()
		return
	}
	m.idle = append(m.idle, p)
}

// dropIdle closes the pooled connections.
func (m *Mailer) dropIdle() {
	m.mu.Lock()
	idle := m.idle
	m.idle = nil
	m.mu.Unlock()
	for _, p := range idle {
		_ = p.client.Close()
	}
}

// Close closes every pooled connection.
func (m *Mailer) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, p := range m.idle {
		_ = p.client.Close()
	}
	m.idle = nil
	return nil
}

// Send delivers msg. On failure it returns a *Failure. A pooled connection that turns out to be
// dead before anything was sent is replaced once, transparently.
func (m *Mailer) Send(ctx context.Context, msg Message) error {
	gm, err := build(msg)
	if err != nil {
		return err
	}
	for attempt := 0; ; attempt++ {
		p, err := m.get(ctx)
		if err != nil {
			return err
		}
		err = p.client.Send(gm)
		if err == nil {
			m.put(p)
			return nil
		}
		_ = p.client.Close()
		var se *gomail.SendError
		if attempt == 0 && errors.As(err, &se) && se.Reason == gomail.ErrConnCheck {
			// The connection died while idle; nothing reached the server. The other idle ones went
			// idle with it (a quiet spell, a server restart): drop them and dial afresh.
			m.log.Debug("smtp connection went stale, redialling")
			m.dropIdle()
			continue
		}
		return classify(err, "")
	}
}

func build(msg Message) (*gomail.Msg, error) {
	gm := gomail.NewMsg()
	if err := gm.FromFormat(oneLine(msg.FromName), msg.FromAddress); err != nil {
		return nil, &Failure{Stage: "compose", msg: "invalid From address"}
	}
	if err := gm.AddToFormat(oneLine(msg.ToName), msg.ToAddress); err != nil {
		return nil, &Failure{Stage: "compose", msg: "invalid recipient address"}
	}
	if msg.EnvelopeFrom != "" {
		if err := gm.EnvelopeFrom(msg.EnvelopeFrom); err != nil {
			return nil, &Failure{Stage: "compose", msg: "invalid envelope sender"}
		}
	}
	gm.Subject(oneLine(msg.Subject))
	if msg.MessageID != "" {
		gm.SetMessageIDWithValue(strings.Trim(oneLine(msg.MessageID), "<>"))
	}
	if msg.Date.IsZero() {
		gm.SetDate()
	} else {
		gm.SetDateWithValue(msg.Date)
	}
	for k, v := range msg.Headers {
		gm.SetGenHeader(gomail.Header(oneLine(k)), oneLine(v))
	}
	gm.SetUserAgent("tend")
	gm.SetBodyString(gomail.TypeTextPlain, msg.Text)
	if msg.HTML != "" {
		gm.AddAlternativeString(gomail.TypeTextHTML, msg.HTML)
	}
	return gm, nil
}

// oneLine removes CR and LF so no value can start a new header line.
func oneLine(s string) string {
	if !strings.ContainsAny(s, "\r\n") {
		return s
	}
	return strings.Join(strings.FieldsFunc(s, func(r rune) bool { return r == '\r' || r == '\n' }), " ")
}

// classify turns a go-mail error into a Failure without copying its text, which names recipients.
func classify(err error, stage string) *Failure {
	var se *gomail.SendError
	if errors.As(err, &se) {
		f := &Failure{Temporary: se.IsTemp(), Code: se.ErrorCode(), Enhanced: se.EnhancedStatusCode(), Stage: stageName(se.Reason)}
		if f.Code == 0 {
			// No SMTP reply at all (connection lost, timeout): try again later.
			f.Temporary = true
		}
		if f.Code >= 400 && f.Code < 500 {
			f.Temporary = true
		}
		return f
	}
	if stage == "" {
		stage = "send"
	}
	// Dial failures, timeouts and the like carry no reply code and are temporary by nature.
	return &Failure{Temporary: true, Stage: stage, msg: scrub(err.Error())}
}

func stageName(r gomail.SendErrReason) string {
	switch r {
	case gomail.ErrSMTPMailFrom:
		return "mail from"
	case gomail.ErrSMTPRcptTo:
		return "rcpt to"
	case gomail.ErrSMTPData, gomail.ErrSMTPDataClose:
		return "data"
	case gomail.ErrConnCheck:
		return "connection check"
	case gomail.ErrSMTPReset:
		return "reset"
	default:
		return "send"
	}
}

// scrub keeps error text short and free of anything that looks like an email address.
func scrub(s string) string {
	words := strings.Fields(s)
	for i, w := range words {
		if strings.Contains(w, "@") {
			words[i] = "[address]"
		}
	}
	s = strings.Join(words, " ")
	if len(s) > 300 {
		s = s[:300]
	}
	return s
}
