//go:build unix

package e2e

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tendhq/tend/internal/browsertest"
	"github.com/tendhq/tend/internal/track"
)

var (
	deskLinkRe   = regexp.MustCompile(`(?m)^All your leads: (\S+)\s*$`)
	deskAcceptRe = regexp.MustCompile(`<a class="btn accept" href="(/s/[^"]+)">Accept</a>`)
)

func getPage(t *testing.T, u string) (int, string) {
	t.Helper()
	resp, err := http.Get(u)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(raw)
}

// The handoff email links to the rep's desk: in a real browser it lists the lead waiting for an
// answer with its reason, score and due time, and an accept link that works; after accepting, the
// lead shows as answered with its stage. A manager's desk shows the team without buttons. A desk
// link cannot accept a lead, and a forged one shows nothing.
func TestRepDeskInABrowser(t *testing.T) {
	t.Parallel()
	bin := browsertest.Path(t)
	s := setup(t, options{team: "testdata/sales-slow.yaml"})
	leadID := s.demoLead("ada.lovelace@example.com")
	notice := s.mailTo("jonas@acme.test", 1, 30*time.Second)[0]
	m := deskLinkRe.FindStringSubmatch(notice.Text)
	require.NotNil(t, m, "desk link in the handoff notice")
	desk := m[1]
	require.True(t, strings.HasPrefix(desk, s.api.URL+"/desk/"), desk)

	dom := browsertest.Run(t, bin, desk, "--dump-dom")
	assert.Contains(t, dom, "<h1>Jonas Weber's leads</h1>")
	assert.Contains(t, dom, "Waiting for an answer (1)")
	assert.Contains(t, dom, "<strong>Ada Lovelace</strong>")
	assert.Contains(t, dom, "Analytical Engines")
	assert.Contains(t, dom, "hand-raise: demo_request")
	assert.Contains(t, dom, `<span class="due">`, "due, not overdue, with a 2-minute SLA")
	acc := deskAcceptRe.FindStringSubmatch(dom)
	require.NotNil(t, acc, "an accept link for the open lead:\n%s", dom)

	// The desk token is no accept link, whatever it is posted to.
	deskToken := strings.TrimPrefix(desk, s.api.URL+"/desk/")
	resp, err := http.PostForm(s.api.URL+"/s/"+deskToken, url.Values{})
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, 404, resp.StatusCode)
	assert.Equal(t, "open", handoffOutcome(t, s, leadID))
	code, _ := getPage(t, desk+"x")
	assert.Equal(t, 404, code, "an altered desk link shows nothing")

	// Accept from the desk: the same confirmation page and POST as the email's link.
	acceptURL := s.api.URL + strings.ReplaceAll(acc[1], "&amp;", "&")
	code, page := getPage(t, acceptURL)
	require.Equal(t, 200, code)
	assert.Contains(t, page, "Accept this lead")
	resp, err = http.PostForm(acceptURL, url.Values{})
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode)
	eventually(t, 10*time.Second, func() bool { return s.lead(leadID)["stage"] == "sal" }, "lead moves to SAL")

	dom = browsertest.Run(t, bin, desk, "--dump-dom")
	assert.Contains(t, dom, "Waiting for an answer (0)")
	assert.Contains(t, dom, "Answered in the last 30 days (1)")
	assert.Regexp(t, `<td>accepted</td>\s*<td>\d+s</td><td>sal</td>`, dom)

	// The manager's desk (its link comes with escalations) lists the team's leads, with the rep,
	// and offers no buttons: a manager does not answer for a rep.
	mgr := s.api.URL + "/desk/" + s.keys.SignAction(track.Action{Kind: track.ActionDesk, Rep: "mgr-eva", Expires: time.Now().Add(time.Hour)})
	dom = browsertest.Run(t, bin, mgr, "--dump-dom")
	assert.Contains(t, dom, "<h1>Eva Schmidt's team</h1>")
	assert.Contains(t, dom, "<td>Jonas Weber</td>")
	assert.NotContains(t, dom, `class="btn accept"`)

	shot := filepath.Join(t.TempDir(), "desk.png")
	browsertest.Run(t, bin, desk, "--screenshot="+shot, "--window-size=1200,700", "--hide-scrollbars")
	png, err := os.ReadFile(shot)
	require.NoError(t, err)
	assert.Greater(t, len(png), 5<<10, "the desk renders to more than a blank page")
	if dst := os.Getenv("TEND_DESK_SCREENSHOT"); dst != "" {
		require.NoError(t, os.WriteFile(dst, png, 0o644))
	}

	// An expired desk link shows nothing.
	old := s.api.URL + "/desk/" + s.keys.SignAction(track.Action{Kind: track.ActionDesk, Rep: "rep-jonas", Expires: time.Now().Add(-time.Minute)})
	code, page = getPage(t, old)
	assert.Equal(t, 404, code)
	assert.NotContains(t, page, "Ada")
}

// signIn signs in to the dashboard with the API key and returns a client that carries the session.
func signIn(t *testing.T, s *stack) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	c := &http.Client{Jar: jar, Timeout: 30 * time.Second}
	resp, err := c.PostForm(s.api.URL+"/app/login", url.Values{"key": {apiKey}})
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode, "signed in and redirected to the leads")
	return c
}

// savedPage fetches a dashboard page with the session and saves it for the browser, which has no
// way to sign in on its own here.
func savedPage(t *testing.T, c *http.Client, u string) string {
	t.Helper()
	resp, err := c.Get(u)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, 200, resp.StatusCode, "%s", raw)
	f := filepath.Join(t.TempDir(), "page.html")
	require.NoError(t, os.WriteFile(f, raw, 0o600))
	return "file://" + f
}

// The marketer's dashboard in a real browser: the lead list shows the lead handed to sales, its
// page explains the score (the demo request rule) and lists the timeline and the handoff, and the
// reports show the funnel and the SLA table.
func TestDashboardInABrowser(t *testing.T) {
	t.Parallel()
	bin := browsertest.Path(t)
	s := setup(t, options{team: "testdata/sales-slow.yaml"})
	leadID := s.demoLead("ada.lovelace@example.com")
	s.mailTo("jonas@acme.test", 1, 30*time.Second)
	c := signIn(t, s)

	dom := browsertest.Run(t, bin, savedPage(t, c, s.api.URL+"/app/leads"), "--dump-dom")
	assert.Contains(t, dom, `<a href="/app/leads/`+leadID+`">Ada Lovelace</a>`)
	assert.Regexp(t, `<td>mql</td><td class="num">\d+</td>`, dom)

	leadPage := savedPage(t, c, s.api.URL+"/app/leads/"+leadID)
	dom = browsertest.Run(t, bin, leadPage, "--dump-dom")
	assert.Contains(t, dom, "<h1>Ada Lovelace</h1>")
	assert.Regexp(t, `<td>demo-request</td><td>behaviour</td>`, dom, "the score's rule")
	assert.Contains(t, dom, "hand-raise: demo_request")
	assert.Contains(t, dom, "<td>rep-jonas</td>", "the handoff")
	shot := filepath.Join(t.TempDir(), "lead.png")
	browsertest.Run(t, bin, leadPage, "--screenshot="+shot, "--window-size=1280,900", "--hide-scrollbars")
	png, err := os.ReadFile(shot)
	require.NoError(t, err)
	assert.Greater(t, len(png), 10<<10)
	if dst := os.Getenv("TEND_DASHBOARD_SCREENSHOT"); dst != "" {
		require.NoError(t, os.WriteFile(dst, png, 0o644))
	}

	dom = browsertest.Run(t, bin, savedPage(t, c, s.api.URL+"/app/reports"), "--dump-dom")
	assert.Contains(t, dom, "<h2>Funnel</h2>")
	assert.Contains(t, dom, "<td>rep-jonas</td>", "the SLA table")
}
