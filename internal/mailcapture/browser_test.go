//go:build unix

package mailcapture_test

import (
	"bytes"
	"context"
	"html"
	"net/http/httptest"
	"net/smtp"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tendhq/tend/internal/browsertest"
	"github.com/tendhq/tend/internal/mailcapture"
)

// screenshotEnv names a file the test copies its screenshot of the message page to, for a person
// (or a CI artifact step) to look at.
const screenshotEnv = "TEND_BROWSER_SCREENSHOT"

const browserMessage = `From: Acme Insights <hello@acme.test>
To: Ada Lovelace <ada@example.com>
Subject: Ada, three numbers every dashboard needs
Message-ID: <intro.lead-1@acme.test>
MIME-Version: 1.0
Content-Type: multipart/alternative; boundary="ALT"

--ALT
Content-Type: text/plain; charset=utf-8

Hi Ada,
Start here: https://acme.test/start
--ALT
Content-Type: text/html; charset=utf-8

<h1 style="color:#0f766e">Three numbers every dashboard needs</h1>
<p>Hi Ada, <a href="https://acme.test/start">start here</a>.</p>
--ALT--
`

var (
	inboxLink   = regexp.MustCompile(`<a href="(/messages/\d+)">([^<]*)</a>`)
	iframeTag   = regexp.MustCompile(`<iframe\b[^>]*>`)
	sandboxAttr = regexp.MustCompile(`\bsandbox="([^"]*)"`)
	srcdocAttr  = regexp.MustCompile(`\bsrcdoc="([^"]*)"`)
)

func TestInboxPagesInABrowser(t *testing.T) {
	bin := browsertest.Path(t)

	mc := mailcapture.New(mailcapture.Options{})
	require.NoError(t, mc.Start(""))
	t.Cleanup(func() { _ = mc.Close() })
	raw := []byte(strings.ReplaceAll(browserMessage, "\n", "\r\n"))
	require.NoError(t, smtp.SendMail(mc.Addr(), nil, "hello@acme.test", []string{"ada@example.com"}, raw))
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	_, err := mc.WaitFor(ctx, 1)
	require.NoError(t, err)

	web := httptest.NewServer(mc.Handler())
	t.Cleanup(web.Close)

	// The inbox lists the message by subject, linked to its page.
	inbox := browsertest.Run(t, bin, web.URL+"/", "--dump-dom")
	assert.Contains(t, inbox, "1 message ·")
	links := inboxLink.FindAllStringSubmatch(inbox, -1)
	require.Len(t, links, 1, "one linked message in the inbox DOM:\n%s", inbox)
	assert.Equal(t, "Ada, three numbers every dashboard needs", links[0][2])
	assert.Contains(t, inbox, "<td>hello@acme.test</td>")
	assert.Contains(t, inbox, "<td>ada@example.com</td>")

	// The message page shows the envelope and headers, and the HTML part only inside a sandbox.
	msgURL := web.URL + links[0][1]
	page := browsertest.Run(t, bin, msgURL, "--dump-dom")
	assert.Contains(t, page, "<h2>Ada, three numbers every dashboard needs</h2>")
	assert.Contains(t, page, "<dt>Envelope from</dt><dd>hello@acme.test</dd>")
	assert.Contains(t, page, "<dt>Envelope to</dt><dd>ada@example.com</dd>")
	assert.Contains(t, page, "<dt>From</dt><dd>Acme Insights &lt;hello@acme.test&gt;</dd>")
	assert.Contains(t, page, "<dt>Message-Id</dt><dd>&lt;intro.lead-1@acme.test&gt;</dd>")
	assert.Contains(t, page, "Start here: https://acme.test/start", "text part")
	assert.NotContains(t, page, "<h1 style=", "the email's HTML must not be part of the page itself")

	iframes := iframeTag.FindAllString(page, -1)
	require.Len(t, iframes, 1, "one iframe for the HTML part:\n%s", page)
	sandbox := sandboxAttr.FindStringSubmatch(iframes[0])
	require.NotNil(t, sandbox, "the HTML iframe must be sandboxed: %s", iframes[0])
	assert.NotContains(t, sandbox[1], "allow-scripts")
	assert.NotContains(t, sandbox[1], "allow-same-origin")
	srcdoc := srcdocAttr.FindStringSubmatch(iframes[0])
	require.NotNil(t, srcdoc, "the HTML part is the iframe's srcdoc: %s", iframes[0])
	body := html.UnescapeString(srcdoc[1])
	assert.Contains(t, body, `<h1 style="color:#0f766e">Three numbers every dashboard needs</h1>`)
	assert.Contains(t, body, `<a href="https://acme.test/start">start here</a>`)

	// A screenshot of the message page, as a newcomer sees it.
	shot := filepath.Join(t.TempDir(), "inbox.png")
	browsertest.Run(t, bin, msgURL, "--screenshot="+shot, "--window-size=1200,800", "--hide-scrollbars")
	png, err := os.ReadFile(shot)
	require.NoError(t, err, "chromium wrote no screenshot")
	require.True(t, bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")), "screenshot is not a PNG")
	assert.Greater(t, len(png), 5<<10, "a page with a table, headers and an email renders to more than a blank PNG")
	if dst := os.Getenv(screenshotEnv); dst != "" {
		require.NoError(t, os.WriteFile(dst, png, 0o644))
		t.Logf("screenshot of the message page: %s", dst)
	}
}

// The message page of an unknown id is a 404 in the browser too, not an empty template.
func TestUnknownMessageInABrowser(t *testing.T) {
	bin := browsertest.Path(t)
	mc := mailcapture.New(mailcapture.Options{})
	web := httptest.NewServer(mc.Handler())
	t.Cleanup(web.Close)
	page := browsertest.Run(t, bin, web.URL+"/messages/42", "--dump-dom")
	assert.Contains(t, page, "404 page not found")
	assert.NotContains(t, page, "<iframe")
}
