package mailcapture

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/smtp"
	"net/textproto"
	"path/filepath"
	"strings"
	"testing"
	"time"

	gosmtp "github.com/emersion/go-smtp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func setup(t *testing.T, opts Options) *Server {
	t.Helper()
	s := New(opts)
	require.NoError(t, s.Start(""))
	t.Cleanup(func() { s.Close() })
	return s
}

func send(t *testing.T, s *Server, from string, to []string, msg string) error {
	t.Helper()
	return smtp.SendMail(s.Addr(), nil, from, to, []byte(strings.ReplaceAll(msg, "\n", "\r\n")))
}

func wait(t *testing.T, s *Server, n int) []Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	msgs, err := s.WaitFor(ctx, n)
	require.NoError(t, err)
	return msgs
}

const alternativeQP = `From: Tend <hello@tend.test>
To: Ana <ana@example.com>
Subject: =?UTF-8?Q?Willkommen_bei_tend,_J=C3=BCrgen_=E2=9C=93?=
Message-ID: <step-1.lead-42@tend.test>
MIME-Version: 1.0
Content-Type: multipart/alternative; boundary="ALT"

--ALT
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: quoted-printable

Hallo J=C3=BCrgen, this line is long enough that it needs a soft line brea=
k to fit.
--ALT
Content-Type: text/html; charset=utf-8
Content-Transfer-Encoding: quoted-printable

<p style=3D"color:red">Hallo <b>J=C3=BCrgen</b></p>
--ALT--
`

func TestCapturesMultipartAlternativeQuotedPrintable(t *testing.T) {
	t.Parallel()
	s := setup(t, Options{})
	require.NoError(t, send(t, s, "bounce@tend.test", []string{"ana@example.com", "cc@example.com"}, alternativeQP))

	m := wait(t, s, 1)[0]
	require.Equal(t, "1", m.ID)
	require.Equal(t, "bounce@tend.test", m.From)
	require.Equal(t, []string{"ana@example.com", "cc@example.com"}, m.To)
	require.Equal(t, "Willkommen bei tend, Jürgen ✓", m.Subject)
	require.Equal(t, "<step-1.lead-42@tend.test>", m.MessageID)
	require.Equal(t, "Hallo Jürgen, this line is long enough that it needs a soft line break to fit.", m.Text)
	require.Equal(t, `<p style="color:red">Hallo <b>Jürgen</b></p>`, m.HTML)
	require.Equal(t, "Ana <ana@example.com>", m.Header.Get("To"))
	require.Contains(t, string(m.Raw), "Content-Type: multipart/alternative")
	require.WithinDuration(t, time.Now(), m.Received, time.Minute)
}

func TestCapturesNestedMixedBase64AndLatin1(t *testing.T) {
	t.Parallel()
	s := setup(t, Options{})
	msg := `From: a@tend.test
To: b@example.com
Subject: =?ISO-8859-1?Q?Caf=E9?= and =?UTF-8?B?8J+Ooa==?=
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary=MIX

--MIX
Content-Type: multipart/alternative; boundary=ALT

--ALT
Content-Type: text/plain; charset=iso-8859-1
Content-Transfer-Encoding: quoted-printable

Caf=E9 cr=E8me
--ALT
Content-Type: text/html; charset=utf-8
Content-Transfer-Encoding: base64

PGgxPkhlbGxvLCB3b3JsZDwvaDE+
--ALT--
--MIX
Content-Type: text/plain; charset=utf-8
Content-Disposition: attachment; filename=notes.txt

not the body
--MIX--
`
	require.NoError(t, send(t, s, "a@tend.test", []string{"b@example.com"}, msg))
	m := wait(t, s, 1)[0]
	require.Equal(t, "Café and 🎡", m.Subject)
	require.Equal(t, "Café crème", m.Text)
	require.Equal(t, "<h1>Hello, world</h1>", m.HTML)
}

func TestRejectRcptTemporaryThenAccept(t *testing.T) {
	t.Parallel()
	s := setup(t, Options{})
	s.RejectRcpt(func(rcpt string, attempt int) *gosmtp.SMTPError {
		if rcpt == "flaky@example.com" && attempt == 1 {
			return &gosmtp.SMTPError{Code: 450, EnhancedCode: gosmtp.EnhancedCode{4, 2, 1}, Message: "mailbox busy, try later"}
		}
		return nil
	})
	msg := "From: a@tend.test\nTo: flaky@example.com\nSubject: retry\n\nbody\n"

	err := send(t, s, "a@tend.test", []string{"flaky@example.com"}, msg)
	var tpErr *textproto.Error
	require.True(t, errors.As(err, &tpErr), "want an SMTP reply error, got %v", err)
	require.Equal(t, 450, tpErr.Code)
	require.Contains(t, tpErr.Msg, "mailbox busy")
	require.Empty(t, s.Messages())

	require.NoError(t, send(t, s, "a@tend.test", []string{"flaky@example.com"}, msg), "second attempt is accepted")
	require.Len(t, wait(t, s, 1), 1)
}

func TestBoundedStoreAndReset(t *testing.T) {
	t.Parallel()
	s := setup(t, Options{MaxMessages: 2})
	for _, subj := range []string{"one", "two", "three"} {
		require.NoError(t, send(t, s, "a@tend.test", []string{"b@example.com"}, "Subject: "+subj+"\n\nx\n"))
	}
	msgs := s.Messages()
	require.Len(t, msgs, 2)
	require.Equal(t, []string{"two", "three"}, []string{msgs[0].Subject, msgs[1].Subject})
	require.Equal(t, "3", msgs[1].ID)

	s.Reset()
	require.Empty(t, s.Messages())
	require.NoError(t, send(t, s, "a@tend.test", []string{"b@example.com"}, "Subject: four\n\nx\n"))
	require.Equal(t, "4", wait(t, s, 1)[0].ID, "IDs are not reused after Reset")
}

func TestMaxMessageBytes(t *testing.T) {
	t.Parallel()
	s := setup(t, Options{MaxMessageBytes: 1024})
	err := send(t, s, "a@tend.test", []string{"b@example.com"}, "Subject: big\n\n"+strings.Repeat("x", 2048)+"\n")
	require.Error(t, err)
	require.Empty(t, s.Messages())
}

func TestWaitForWakesOnArrivalAndHonoursContext(t *testing.T) {
	t.Parallel()
	s := setup(t, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	_, err := s.WaitFor(ctx, 1)
	require.ErrorIs(t, err, context.DeadlineExceeded)

	sent := make(chan error, 1)
	go func() {
		sent <- smtp.SendMail(s.Addr(), nil, "a@tend.test", []string{"b@example.com"}, []byte("Subject: later\r\n\r\nx\r\n"))
	}()
	require.Equal(t, "later", wait(t, s, 1)[0].Subject)
	require.NoError(t, <-sent)
}

func TestHTTP(t *testing.T) {
	t.Parallel()
	s := setup(t, Options{})
	msg := `From: a@tend.test
To: b@example.com
Subject: <script>alert(1)</script> & more
Message-ID: <m1@tend.test>
MIME-Version: 1.0
Content-Type: multipart/alternative; boundary=B

--B
Content-Type: text/plain

plain <b>text</b>
--B
Content-Type: text/html

<p>"hi"</p><script>steal()</script>
--B--
`
	require.NoError(t, send(t, s, "a@tend.test", []string{"b@example.com"}, msg))
	wait(t, s, 1)
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)

	get := func(path string) (*http.Response, string) {
		t.Helper()
		res, err := http.Get(ts.URL + path)
		require.NoError(t, err)
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		require.NoError(t, err)
		return res, string(b)
	}

	t.Run("inbox escapes", func(t *testing.T) {
		res, body := get("/")
		require.Equal(t, http.StatusOK, res.StatusCode)
		require.Contains(t, body, "tend's development capture inbox")
		require.Contains(t, body, "&lt;script&gt;alert(1)&lt;/script&gt; &amp; more")
		require.NotContains(t, body, "<script")
		require.Contains(t, body, `href="/messages/1"`)
	})

	t.Run("message page sandboxes HTML", func(t *testing.T) {
		res, body := get("/messages/1")
		require.Equal(t, http.StatusOK, res.StatusCode)
		require.NotContains(t, body, "<script")
		require.NotContains(t, body, "<p>&#34;hi&#34;</p>", "the HTML part must not be inlined in the page")
		require.Contains(t, body, `<iframe sandbox="allow-popups allow-popups-to-escape-sandbox"`)
		require.Contains(t, body, `srcdoc="&lt;base target=&#34;_blank&#34;&gt;&lt;p&gt;&#34;hi&#34;&lt;/p&gt;&lt;script&gt;steal()&lt;/script&gt;"`)
		require.Contains(t, body, "plain &lt;b&gt;text&lt;/b&gt;")
		require.Contains(t, res.Header.Get("Content-Security-Policy"), "default-src 'none'")
	})

	t.Run("raw", func(t *testing.T) {
		res, body := get("/messages/1/raw")
		require.Equal(t, http.StatusOK, res.StatusCode)
		require.Equal(t, "text/plain; charset=utf-8", res.Header.Get("Content-Type"))
		require.Contains(t, body, "Subject: <script>alert(1)</script> & more\r\n")
	})

	t.Run("unknown message", func(t *testing.T) {
		res, _ := get("/messages/99")
		require.Equal(t, http.StatusNotFound, res.StatusCode)
	})

	t.Run("json list", func(t *testing.T) {
		res, body := get("/api/messages")
		require.Equal(t, http.StatusOK, res.StatusCode)
		require.Equal(t, "application/json", res.Header.Get("Content-Type"))
		var list []struct {
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
		require.NoError(t, json.Unmarshal([]byte(body), &list))
		require.Len(t, list, 1)
		got := list[0]
		require.Equal(t, "1", got.ID)
		require.Equal(t, "a@tend.test", got.From)
		require.Equal(t, []string{"b@example.com"}, got.To)
		require.Equal(t, "<script>alert(1)</script> & more", got.Subject)
		require.Equal(t, "<m1@tend.test>", got.MessageID)
		require.Equal(t, "plain <b>text</b>", got.Text)
		require.Equal(t, `<p>"hi"</p><script>steal()</script>`, got.HTML)
		require.Equal(t, []string{"<m1@tend.test>"}, got.Headers["Message-Id"])
		require.False(t, got.Received.IsZero())
	})

	t.Run("json list after an id", func(t *testing.T) {
		_, body := get("/api/messages?after=1")
		require.Equal(t, "[]\n", body, "nothing came after message 1")
		_, body = get("/api/messages?after=0")
		require.Contains(t, body, `"id":"1"`, "after=0 lists everything")
		res, _ := get("/api/messages?after=last")
		require.Equal(t, http.StatusBadRequest, res.StatusCode)
	})

	t.Run("delete clears", func(t *testing.T) {
		req, err := http.NewRequest(http.MethodDelete, ts.URL+"/api/messages", nil)
		require.NoError(t, err)
		res, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		res.Body.Close()
		require.Equal(t, http.StatusNoContent, res.StatusCode)
		require.Empty(t, s.Messages())
		_, body := get("/api/messages")
		require.Equal(t, "[]\n", body)
	})
}

func TestAuthPlainAccepted(t *testing.T) {
	t.Parallel()
	s := setup(t, Options{})
	host, _, _ := strings.Cut(s.Addr(), ":")
	auth := smtp.PlainAuth("", "user", "secret", host)
	require.NoError(t, smtp.SendMail(s.Addr(), auth, "a@tend.test", []string{"b@example.com"}, []byte("Subject: auth\r\n\r\nx\r\n")))
	require.Equal(t, "auth", wait(t, s, 1)[0].Subject)
}

func TestMessagesSurviveARestartWhenKeptOnDisk(t *testing.T) {
	dir := t.TempDir()
	s := New(Options{Dir: dir})
	require.NoError(t, s.Start(""))
	require.NoError(t, smtp.SendMail(s.Addr(), nil, "a@example.com", []string{"b@example.com"},
		[]byte("Subject: kept\r\n\r\nbody\r\n")))
	require.NoError(t, smtp.SendMail(s.Addr(), nil, "a@example.com", []string{"c@example.com"},
		[]byte("Subject: also kept\r\n\r\nbody\r\n")))
	require.NoError(t, s.Close())

	again := New(Options{Dir: dir})
	require.NoError(t, again.Start(""))
	defer again.Close()
	msgs := again.Messages()
	require.Len(t, msgs, 2)
	assert.Equal(t, "kept", msgs[0].Subject)
	assert.Equal(t, []string{"c@example.com"}, msgs[1].To)
	require.NoError(t, smtp.SendMail(again.Addr(), nil, "a@example.com", []string{"d@example.com"},
		[]byte("Subject: third\r\n\r\nbody\r\n")))
	msgs = again.Messages()
	require.Len(t, msgs, 3)
	assert.Equal(t, "3", msgs[2].ID, "ids continue after the stored ones")

	again.Reset()
	files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	assert.Empty(t, files, "Reset clears the disk too")
}
