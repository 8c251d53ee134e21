package mail_test

import (
	"bytes"
	"context"
	"io"
	"net"
	netmail "net/mail"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tendhq/tend/internal/mail"
	"github.com/tendhq/tend/internal/mailcapture"
)

// startCapture starts a capture SMTP server for t.
func startCapture(t *testing.T) *mailcapture.Server {
	t.Helper()
	s := mailcapture.New(mailcapture.Options{})
	require.NoError(t, s.Start("127.0.0.1:0"))
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// newMailer returns a Mailer that delivers to addr without TLS.
func newMailer(t *testing.T, addr string, tweak func(*mail.Config)) *mail.Mailer {
	t.Helper()
	host, port, err := net.SplitHostPort(addr)
	require.NoError(t, err)
	p, err := strconv.Atoi(port)
	require.NoError(t, err)
	cfg := mail.Config{Host: host, Port: p, TLS: "none", Timeout: 5 * time.Second}
	if tweak != nil {
		tweak(&cfg)
	}
	m, err := mail.New(cfg, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = m.Close() })
	return m
}

func waitFor(t *testing.T, s *mailcapture.Server, n int) []mailcapture.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	msgs, err := s.WaitFor(ctx, n)
	require.NoError(t, err)
	return msgs
}

func message(to string) mail.Message {
	return mail.Message{
		FromName:    "Tend",
		FromAddress: "hello@tend.test",
		ToName:      "Ana Lima",
		ToAddress:   to,
		Subject:     "Welcome, Ana",
		MessageID:   "<step-1.lead-42@tend.test>",
		Text:        "Hello Ana, plain text.",
		HTML:        "<p>Hello <b>Ana</b></p>",
	}
}

// headerLines returns the raw header block of a message, one logical line per entry as sent
// (continuation lines kept separate, so a folded line cannot hide an injected header).
func headerLines(raw []byte) []string {
	head, _, _ := bytes.Cut(raw, []byte("\r\n\r\n"))
	return strings.Split(string(head), "\r\n")
}

func TestSendDeliversMessage(t *testing.T) {
	t.Parallel()
	capt := startCapture(t)
	m := newMailer(t, capt.Addr(), nil)

	msg := message("ana@example.com")
	msg.EnvelopeFrom = "bounces@tend.test"
	msg.Headers = map[string]string{"List-Unsubscribe": "<https://tend.test/u/abc>"}
	msg.Date = time.Date(2026, 3, 2, 9, 30, 0, 0, time.UTC)
	require.NoError(t, m.Send(context.Background(), msg))

	got := waitFor(t, capt, 1)[0]
	assert.Equal(t, "bounces@tend.test", got.From, "envelope sender")
	assert.Equal(t, []string{"ana@example.com"}, got.To)

	from, err := netmail.ParseAddress(got.Header.Get("From"))
	require.NoError(t, err)
	assert.Equal(t, "Tend", from.Name)
	assert.Equal(t, "hello@tend.test", from.Address)
	to, err := netmail.ParseAddress(got.Header.Get("To"))
	require.NoError(t, err)
	assert.Equal(t, "Ana Lima", to.Name)
	assert.Equal(t, "ana@example.com", to.Address)

	assert.Equal(t, "Welcome, Ana", got.Subject)
	assert.Equal(t, "<step-1.lead-42@tend.test>", got.MessageID)
	assert.Equal(t, "<https://tend.test/u/abc>", got.Header.Get("List-Unsubscribe"))
	date, err := got.Header.Date()
	require.NoError(t, err)
	assert.True(t, msg.Date.Equal(date), "Date header %v", date)

	assert.Equal(t, "Hello Ana, plain text.", strings.TrimSpace(got.Text))
	assert.Equal(t, "<p>Hello <b>Ana</b></p>", strings.TrimSpace(got.HTML))
	assert.Contains(t, got.Header.Get("Content-Type"), "multipart/alternative")
}

func TestSendEncodesNonASCIISubject(t *testing.T) {
	t.Parallel()
	capt := startCapture(t)
	m := newMailer(t, capt.Addr(), nil)

	msg := message("ana@example.com")
	msg.Subject = "Willkommen, Jürgen ✓"
	msg.HTML = ""
	require.NoError(t, m.Send(context.Background(), msg))

	got := waitFor(t, capt, 1)[0]
	assert.Equal(t, "Willkommen, Jürgen ✓", got.Subject)
	assert.Equal(t, "Hello Ana, plain text.", strings.TrimSpace(got.Text))
	assert.Empty(t, got.HTML, "no HTML part when none was given")
}

func TestSendCannotInjectHeaders(t *testing.T) {
	t.Parallel()
	capt := startCapture(t)
	m := newMailer(t, capt.Addr(), nil)

	msg := message("ana@example.com")
	msg.ToName = "Eve\r\nBcc: evil@example.com"
	msg.Subject = "Hi\r\nBcc: evil@example.com"
	msg.FromName = "Tend\nX-Injected-From: yes"
	msg.Headers = map[string]string{"X-Campaign": "spring\r\nX-Injected: yes"}
	require.NoError(t, m.Send(context.Background(), msg))

	got := waitFor(t, capt, 1)[0]
	assert.Equal(t, []string{"ana@example.com"}, got.To, "exactly one envelope recipient")
	for _, line := range headerLines(got.Raw) {
		l := strings.ToLower(line)
		assert.False(t, strings.HasPrefix(l, "bcc:"), "injected header line %q", line)
		assert.False(t, strings.HasPrefix(l, "x-injected"), "injected header line %q", line)
	}
	assert.Empty(t, got.Header.Get("Bcc"))
	assert.Empty(t, got.Header.Get("X-Injected"))
	assert.Empty(t, got.Header.Get("X-Injected-From"))

	// The line breaks are gone but the text is kept, within its own header.
	assert.Equal(t, "Hi Bcc: evil@example.com", got.Subject)
	assert.Equal(t, "spring X-Injected: yes", got.Header.Get("X-Campaign"))
	to, err := netmail.ParseAddress(got.Header.Get("To"))
	require.NoError(t, err)
	assert.Equal(t, "ana@example.com", to.Address)
	assert.Equal(t, "Eve Bcc: evil@example.com", to.Name)
}

func TestSendClassifiesRecipientRejections(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name          string
		reject        *smtp.SMTPError
		wantTemporary bool
		wantCode      int
		wantEnhanced  string
		wantHard      bool
	}{
		{
			name:          "mailbox busy",
			reject:        &smtp.SMTPError{Code: 450, EnhancedCode: smtp.EnhancedCode{4, 2, 0}, Message: "mailbox busy: ana@example.com"},
			wantTemporary: true, wantCode: 450, wantEnhanced: "4.2.0",
		},
		{
			name:     "no such user",
			reject:   &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user ana@example.com"},
			wantCode: 550, wantEnhanced: "5.1.1", wantHard: true,
		},
		{
			name:     "policy rejection",
			reject:   &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "rejected by policy for ana@example.com"},
			wantCode: 550, wantEnhanced: "5.7.1", wantHard: false,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			capt := startCapture(t)
			capt.RejectRcpt(func(string, int) *smtp.SMTPError { return tt.reject })
			m := newMailer(t, capt.Addr(), nil)

			err := m.Send(context.Background(), message("ana@example.com"))
			var f *mail.Failure
			require.ErrorAs(t, err, &f)
			assert.Equal(t, tt.wantTemporary, f.Temporary)
			assert.Equal(t, tt.wantCode, f.Code)
			assert.Equal(t, tt.wantEnhanced, f.Enhanced)
			assert.Equal(t, "rcpt to", f.Stage)
			assert.Equal(t, tt.wantHard, f.HardBounce())
			assert.NotContains(t, f.Error(), "ana@example.com", "failures must not carry the recipient address")
			assert.Empty(t, capt.Messages(), "nothing was delivered")
		})
	}
}

func TestSendToClosedPortIsTemporary(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	m := newMailer(t, addr, nil)

	err = m.Send(context.Background(), message("ana@example.com"))
	var f *mail.Failure
	require.ErrorAs(t, err, &f)
	assert.True(t, f.Temporary)
	assert.Equal(t, 0, f.Code)
	assert.False(t, f.HardBounce())
	assert.Equal(t, "dial", f.Stage)
	assert.NotContains(t, f.Error(), "ana@example.com")
}

func TestSendRejectsInvalidAddressBeforeConnecting(t *testing.T) {
	t.Parallel()
	capt := startCapture(t)
	p := startProxy(t, capt.Addr())
	m := newMailer(t, p.Addr(), nil)

	err := m.Send(context.Background(), message("not an address"))
	var f *mail.Failure
	require.ErrorAs(t, err, &f)
	assert.False(t, f.Temporary, "a malformed address will never work")
	assert.Equal(t, "compose", f.Stage)
	assert.Equal(t, 0, p.Accepted(), "no connection is opened for a message that cannot be built")
}

func TestSendReusesConnection(t *testing.T) {
	t.Parallel()
	capt := startCapture(t)
	p := startProxy(t, capt.Addr())
	m := newMailer(t, p.Addr(), nil)

	for i := range 3 {
		msg := message("ana@example.com")
		msg.MessageID = "<reuse-" + strconv.Itoa(i) + "@tend.test>"
		require.NoError(t, m.Send(context.Background(), msg))
	}
	msgs := waitFor(t, capt, 3)
	assert.Len(t, msgs, 3)
	assert.Equal(t, 1, p.Accepted(), "three sends in a row use one SMTP connection")
}

func TestSendReplacesConnectionClosedByServer(t *testing.T) {
	t.Parallel()
	capt := startCapture(t)
	p := startProxy(t, capt.Addr())
	m := newMailer(t, p.Addr(), nil)

	require.NoError(t, m.Send(context.Background(), message("ana@example.com")))
	waitFor(t, capt, 1)
	p.DropAll()

	msg := message("bob@example.com")
	msg.MessageID = "<after-drop@tend.test>"
	require.NoError(t, m.Send(context.Background(), msg), "a dead pooled connection is replaced transparently")
	msgs := waitFor(t, capt, 2)
	assert.Equal(t, "<after-drop@tend.test>", msgs[1].MessageID)
	assert.Equal(t, []string{"bob@example.com"}, msgs[1].To)
	assert.Equal(t, 2, p.Accepted())
}

// When the server dropped every pooled connection (they all went idle together, as during a
// pause), one send still goes out at once: the first stale connection tells the rest are stale.
func TestSendReplacesEveryConnectionClosedByServer(t *testing.T) {
	t.Parallel()
	capt := startCapture(t)
	p := startProxy(t, capt.Addr())
	m := newMailer(t, p.Addr(), func(c *mail.Config) { c.PoolSize = 3 })

	var wg sync.WaitGroup
	for i := range 6 {
		wg.Go(func() {
			msg := message("lead" + strconv.Itoa(i) + "@example.com")
			msg.MessageID = "<fill-" + strconv.Itoa(i) + "@tend.test>"
			assert.NoError(t, m.Send(context.Background(), msg))
		})
	}
	wg.Wait()
	waitFor(t, capt, 6)
	require.GreaterOrEqual(t, p.Accepted(), 2, "the pool holds several connections")
	p.DropAll()

	msg := message("bob@example.com")
	msg.MessageID = "<after-drop-all@tend.test>"
	require.NoError(t, m.Send(context.Background(), msg), "the dead pooled connections are replaced in the same send")
	msgs := waitFor(t, capt, 7)
	assert.Equal(t, "<after-drop-all@tend.test>", msgs[6].MessageID)
}

func TestSendDoesNotReuseIdleConnection(t *testing.T) {
	t.Parallel()
	capt := startCapture(t)
	p := startProxy(t, capt.Addr())
	m := newMailer(t, p.Addr(), func(c *mail.Config) { c.IdleTimeout = 50 * time.Millisecond })

	require.NoError(t, m.Send(context.Background(), message("ana@example.com")))
	time.Sleep(100 * time.Millisecond)
	require.NoError(t, m.Send(context.Background(), message("bob@example.com")))
	waitFor(t, capt, 2)
	assert.Equal(t, 2, p.Accepted(), "a connection idle longer than IdleTimeout is not reused")
}

func TestSendConcurrently(t *testing.T) {
	t.Parallel()
	capt := startCapture(t)
	p := startProxy(t, capt.Addr())
	m := newMailer(t, p.Addr(), func(c *mail.Config) { c.PoolSize = 2 })

	const n = 12
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			msg := message("lead" + strconv.Itoa(i) + "@example.com")
			msg.MessageID = "<c-" + strconv.Itoa(i) + "@tend.test>"
			errs <- m.Send(context.Background(), msg)
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	msgs := waitFor(t, capt, n)
	ids := map[string]bool{}
	for _, msg := range msgs {
		require.Len(t, msg.To, 1, "one recipient per message")
		ids[msg.MessageID] = true
	}
	assert.Len(t, ids, n, "every message arrives once")
}

func TestParseURL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		raw     string
		want    mail.Config
		wantErr string
	}{
		{raw: "smtp://mail.example.com", want: mail.Config{Host: "mail.example.com", Port: 587, TLS: "starttls"}},
		{raw: "smtps://mail.example.com", want: mail.Config{Host: "mail.example.com", Port: 465, TLS: "tls"}},
		{raw: "smtp://localhost:1025?tls=none", want: mail.Config{Host: "localhost", Port: 1025, TLS: "none"}},
		{raw: "smtp://mail.example.com:25?tls=opportunistic", want: mail.Config{Host: "mail.example.com", Port: 25, TLS: "opportunistic"}},
		{raw: "smtp://mail.example.com?tls=tls", want: mail.Config{Host: "mail.example.com", Port: 587, TLS: "tls"}},
		{raw: "smtps://mail.example.com?tls=starttls", want: mail.Config{Host: "mail.example.com", Port: 465, TLS: "starttls"}},
		{
			raw:  "smtp://apikey:s%3Acret%40x@smtp.example.com:2525",
			want: mail.Config{Host: "smtp.example.com", Port: 2525, TLS: "starttls", Username: "apikey", Password: "s:cret@x"},
		},
		{raw: "smtp://user@smtp.example.com", want: mail.Config{Host: "smtp.example.com", Port: 587, TLS: "starttls", Username: "user"}},
		{raw: "smtp://mail.example.com?pool=8", want: mail.Config{Host: "mail.example.com", Port: 587, TLS: "starttls", PoolSize: 8}},
		{raw: "smtp://[::1]:2525", want: mail.Config{Host: "::1", Port: 2525, TLS: "starttls"}},
		{raw: "http://mail.example.com", wantErr: "scheme must be smtp or smtps"},
		{raw: "mail.example.com:25", wantErr: "scheme must be smtp or smtps"},
		{raw: "smtp://", wantErr: "host is missing"},
		{raw: "smtp://mail.example.com:0", wantErr: `invalid port "0"`},
		{raw: "smtp://mail.example.com:70000", wantErr: `invalid port "70000"`},
		{raw: "smtp://mail.example.com:smtp", wantErr: "SMTP_URL"},
		{raw: "smtp://mail.example.com?tls=ssl", wantErr: `tls must be none, starttls, opportunistic or tls, not "ssl"`},
		{raw: "smtp://mail.example.com?pool=0", wantErr: "pool must be a positive number"},
		{raw: "smtp://mail.example.com?pool=x", wantErr: "pool must be a positive number"},
	}
	for _, tt := range tests {
		t.Run(tt.raw, func(t *testing.T) {
			t.Parallel()
			got, err := mail.ParseURL(tt.raw)
			if tt.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestNewRequiresHost(t *testing.T) {
	t.Parallel()
	_, err := mail.New(mail.Config{Port: 25}, nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "host")
}

// proxy is a TCP relay in front of the capture server that counts the connections it accepts and
// can drop them all, as a server closing idle clients would.
type proxy struct {
	ln     net.Listener
	target string

	mu       sync.Mutex
	accepted int
	conns    []net.Conn
}

func startProxy(t *testing.T, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &proxy{ln: ln, target: target}
	go p.serve()
	t.Cleanup(func() {
		_ = ln.Close()
		p.DropAll()
	})
	return p
}

func (p *proxy) Addr() string { return p.ln.Addr().String() }

func (p *proxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		b, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = c.Close()
			continue
		}
		p.mu.Lock()
		p.accepted++
		p.conns = append(p.conns, c, b)
		p.mu.Unlock()
		go pipe(b, c)
		go pipe(c, b)
	}
}

// pipe relays src to dst until either side closes, then closes both: the test observes the
// effect on the SMTP client, not the relay's error.
func pipe(dst, src net.Conn) {
	_, _ = io.Copy(dst, src)
	_ = dst.Close()
	_ = src.Close()
}

// Accepted returns how many client connections the proxy has accepted.
func (p *proxy) Accepted() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.accepted
}

// DropAll closes every open connection on both sides.
func (p *proxy) DropAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		_ = c.Close()
	}
	p.conns = nil
}
