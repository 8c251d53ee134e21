package api_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// browser is an HTTP client with a cookie jar that does not follow redirects, like a person's
// browser seen one request at a time.
func browser(t *testing.T) *http.Client {
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	return &http.Client{Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func page(t *testing.T, c *http.Client, method, u string, form url.Values) (int, http.Header, string) {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, u, body)
	require.NoError(t, err)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := c.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, resp.Header, string(raw)
}

// A marketer signs in with an API key and sees the leads, a lead's "why" and the reports; without
// a session every page sends them to sign in, and a wrong key changes nothing.
func TestDashboardSignInAndPages(t *testing.T) {
	b := setup(t)
	res := b.post(t, `{"email":"ada@example.com","name":"Ada Lovelace","company":"Analytical Engines","interests":["analytics"],"source":"ebook_download"}`)
	require.Equal(t, 201, res.Code, res.Raw)
	leadID := res.Body["id"].(string)

	c := browser(t)
	for _, p := range []string{"/app/leads", "/app/leads/" + leadID, "/app/reports"} {
		code, h, _ := page(t, c, http.MethodGet, b.URL+p, nil)
		assert.Equal(t, http.StatusSeeOther, code, p)
		assert.Equal(t, "/app/login", h.Get("Location"), p)
	}
	code, h, body := page(t, c, http.MethodPost, b.URL+"/app/login", url.Values{"key": {"not-the-key"}})
	assert.Equal(t, http.StatusUnauthorized, code)
	assert.Contains(t, body, "That is not an API key of this tend")
	assert.Empty(t, h.Values("Set-Cookie"))

	code, h, _ = page(t, c, http.MethodPost, b.URL+"/app/login", url.Values{"key": {apiKey}})
	require.Equal(t, http.StatusSeeOther, code)
	cookie := h.Get("Set-Cookie")
	assert.Contains(t, cookie, "HttpOnly")
	assert.Contains(t, cookie, "SameSite=Strict")
	assert.Contains(t, cookie, "Path=/app")
	assert.NotContains(t, cookie, apiKey, "the cookie never holds the key")

	code, h, body = page(t, c, http.MethodGet, b.URL+"/app/leads", nil)
	require.Equal(t, 200, code)
	assert.Contains(t, h.Get("Content-Security-Policy"), "default-src 'none'")
	assert.Contains(t, body, `<a href="/app/leads/`+leadID+`">Ada Lovelace</a>`)
	assert.Contains(t, body, "<td>Analytical Engines</td>")

	code, _, body = page(t, c, http.MethodGet, b.URL+"/app/leads?stage=mql", nil)
	require.Equal(t, 200, code)
	assert.Contains(t, body, "No lead matches.", "a filter that matches nothing")
	code, _, body = page(t, c, http.MethodGet, b.URL+"/app/leads?stage=vip", nil)
	require.Equal(t, 200, code)
	assert.Contains(t, body, "Unknown stage &#34;vip&#34;.")

	code, _, body = page(t, c, http.MethodGet, b.URL+"/app/leads/"+leadID, nil)
	require.Equal(t, 200, code)
	assert.Contains(t, body, "<h1>Ada Lovelace</h1>")
	assert.Contains(t, body, "Why this score")
	assert.Contains(t, body, "Timeline")
	code, _, body = page(t, c, http.MethodGet, b.URL+"/app/leads/00000000-0000-4000-8000-000000000000", nil)
	assert.Equal(t, 404, code)
	assert.Contains(t, body, "There is no such lead")

	code, _, body = page(t, c, http.MethodGet, b.URL+"/app/reports?from=2026-01-01", nil)
	require.Equal(t, 200, code)
	assert.Contains(t, body, "<h2>Funnel</h2>")
	code, _, body = page(t, c, http.MethodGet, b.URL+"/app/reports?from=yesterday", nil)
	require.Equal(t, 200, code)
	assert.Contains(t, body, "is not a date like 2026-11-01")

	// Signing out ends the session.
	code, _, _ = page(t, c, http.MethodPost, b.URL+"/app/logout", url.Values{})
	assert.Equal(t, http.StatusSeeOther, code)
	code, _, _ = page(t, c, http.MethodGet, b.URL+"/app/leads", nil)
	assert.Equal(t, http.StatusSeeOther, code)
}

// signSession makes a session cookie value the way tend does, with any API key and expiry: signed
// with the session key HMAC-SHA256(apiKey, "tend dashboard session v1").
func signSession(apiKey string, exp time.Time) string {
	d := hmac.New(sha256.New, []byte(apiKey))
	d.Write([]byte("tend dashboard session v1"))
	return signSessionRaw(d.Sum(nil), exp)
}

// signSessionRaw signs a session cookie value with key as it is.
func signSessionRaw(key []byte, exp time.Time) string {
	e := strconv.FormatInt(exp.Unix(), 10)
	m := hmac.New(sha256.New, key)
	m.Write([]byte("tend/session/v1|" + e))
	return e + "." + hex.EncodeToString(m.Sum(nil))
}

// Only an unexpired session signed with an API key of this tend is a session: not one signed with
// another key, not an expired one, not an altered one.
func TestDashboardRejectsForgedSessions(t *testing.T) {
	b := setup(t)
	later := time.Now().Add(time.Hour)
	good := signSession(apiKey, later)
	get := func(v string) int {
		req, _ := http.NewRequest(http.MethodGet, b.URL+"/app/leads", nil)
		req.AddCookie(&http.Cookie{Name: "tend_session", Value: v})
		resp, err := browser(t).Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	require.Equal(t, 200, get(good), "the genuine cookie works")
	for name, v := range map[string]string{
		"empty":     "",
		"garbage":   "garbage",
		"other key": signSession("another-key", later),
		// The session key is derived; a cookie signed with the API key itself (as tend once did)
		// is no session.
		"raw API key": signSessionRaw([]byte(apiKey), later),
		"expired":     signSession(apiKey, time.Now().Add(-time.Second)),
		"longer life": strconv.FormatInt(later.Add(24*time.Hour).Unix(), 10) + good[strings.Index(good, "."):],
		"bit flipped": good[:len(good)-1] + map[bool]string{true: "0", false: "1"}[good[len(good)-1] != '0'],
		"huge":        strings.Repeat("a", 300),
	} {
		assert.Equal(t, http.StatusSeeOther, get(v), name)
	}
}
