package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/api/enums/v1"

	"github.com/tendhq/tend/activities"
	"github.com/tendhq/tend/internal/mailcapture"
	"github.com/tendhq/tend/internal/track"
	"github.com/tendhq/tend/workflows"
)

const browserUA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36"

var (
	pixelRe = regexp.MustCompile(`<img src="([^"]+/t/o/[^"]+)"`)
	clickRe = regexp.MustCompile(`href="([^"]+/t/c/[^"]+)"`)
)

// noRedirect is a client that shows redirects instead of following them.
var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func request(t *testing.T, method, u, ua string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, u, nil)
	require.NoError(t, err)
	req.Header.Set("User-Agent", ua)
	resp, err := noRedirect.Do(req)
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

// links returns the click URLs of a received message, in order, with the text of the HTML.
func links(t *testing.T, m mailcapture.Message) []string {
	t.Helper()
	var out []string
	for _, sm := range clickRe.FindAllStringSubmatch(m.HTML, -1) {
		out = append(out, strings.ReplaceAll(sm[1], "&amp;", "&"))
	}
	return out
}

func (s *stack) lead(leadID string) map[string]any {
	s.t.Helper()
	code, body := s.get("/api/v1/leads/" + leadID)
	require.Equal(s.t, 200, code)
	return body
}

func (s *stack) score(leadID string) float64 {
	return s.lead(leadID)["score"].(float64)
}

// From the email the SMTP server received: the pixel and a link, requested like a person would,
// change the lead's score and timeline, seen in the API and in the workflow.
func TestOpenAndClickFromTheReceivedEmailAreScored(t *testing.T) {
	t.Parallel()
	s := setup(t, options{})
	leadID, m := s.captureAda()

	// Headers of a marketing email: RFC 8058 one-click unsubscribe, both forms.
	lu := m.Header.Get("List-Unsubscribe")
	assert.Regexp(t, `^<http://127\.0\.0\.1:\d+/u/[^>]+>, <mailto:unsubscribe@acme\.test\?subject=unsubscribe%20[^>]+>$`, lu)
	assert.Equal(t, "List-Unsubscribe=One-Click", m.Header.Get("List-Unsubscribe-Post"))
	assert.Contains(t, m.Text, s.api.URL+"/u/", "a visible unsubscribe link in the body")
	assert.NotContains(t, m.HTML, "https://acme.test/", "no untracked link left in the HTML")

	// Wait past the 2 s "too soon" rule, as a person would.
	eventually(t, 30*time.Second, func() bool { return s.score(leadID) > 0 }, "capture scored")
	before := s.score(leadID) // e-book capture (+5) and target industry (+5)
	assert.Equal(t, 10.0, before)
	time.Sleep(2 * time.Second)

	pm := pixelRe.FindStringSubmatch(m.HTML)
	require.NotNil(t, pm, "pixel in the HTML")
	resp := request(t, http.MethodGet, strings.ReplaceAll(pm[1], "&amp;", "&"), browserUA)
	assert.Equal(t, 200, resp.StatusCode)
	assert.Equal(t, "image/gif", resp.Header.Get("Content-Type"))
	assert.Contains(t, resp.Header.Get("Cache-Control"), "no-cache")

	ls := links(t, m)
	require.GreaterOrEqual(t, len(ls), 2)
	resp = request(t, http.MethodGet, ls[0], browserUA)
	require.Equal(t, http.StatusFound, resp.StatusCode)
	assert.Equal(t, "https://acme.test/analytics/guide", resp.Header.Get("Location"))

	// The same link again a moment later: stored as a duplicate, not scored twice.
	require.Equal(t, http.StatusFound, request(t, http.MethodGet, ls[0], browserUA).StatusCode)
	// open +1, click +3
	eventually(t, 30*time.Second, func() bool { return s.score(leadID) == before+4 }, "open and click scored (score %v)", s.score(leadID))
	var dups int
	require.NoError(t, s.store.Pool().QueryRow(context.Background(), `SELECT count(*) FROM events WHERE type = 'click' AND duplicate`).Scan(&dups))
	assert.Equal(t, 1, dups)
	lead := s.lead(leadID)
	assert.Equal(t, "cold", lead["band"])
	var kinds []string
	for _, e := range lead["timeline"].([]any) {
		ev := e.(map[string]any)
		kinds = append(kinds, ev["kind"].(string)+":"+ev["what"].(string))
	}
	assert.Contains(t, kinds, "event:open")
	assert.Contains(t, kinds, "event:click")
	assert.Contains(t, kinds, "event:content_download")
	assert.Contains(t, kinds, "send:sent")
	breakdown := fmt.Sprint(lead["breakdown"])
	assert.Contains(t, breakdown, "email-click")
	assert.Contains(t, breakdown, "target-industry")
	eventually(t, 10*time.Second, func() bool { return s.leadState(leadID).Score == before+4 }, "the workflow sees the score")
}

// A pricing-page visit plus clicks push the lead over the MQL threshold: the stage changes with
// its reason and the workflow records the handoff event and stops the drip.
func TestPricingAndClicksMakeAnMQLAndAHandoff(t *testing.T) {
	t.Parallel()
	s := setup(t, options{})
	leadID, m := s.captureAda()
	time.Sleep(2 * time.Second)
	for _, l := range links(t, m)[:2] {
		require.Equal(t, http.StatusFound, request(t, http.MethodGet, l, browserUA).StatusCode)
	}
	code, res := s.post("/api/v1/events", map[string]any{"events": []map[string]any{
		{"id": "pv-1", "lead_id": leadID, "type": "page_view", "url": "https://acme.test/pricing", "tags": []string{"pricing"}},
		{"id": "pv-2", "email": "ada.lovelace@example.com", "type": "page_view", "url": "https://acme.test/pricing?plan=team", "tags": []string{"pricing"}},
		{"id": "web-1", "lead_id": leadID, "type": "webinar_registration"},
	}})
	require.Equal(t, 200, code, "%v", res)
	// 5 fit + 5 e-book + 3 + 3 clicks (the security link counts as a click too) + 15 + 15 + 10 = 56 ≥ 50
	eventually(t, 30*time.Second, func() bool { return s.lead(leadID)["stage"] == "mql" }, "lead becomes MQL")
	lead := s.lead(leadID)
	assert.GreaterOrEqual(t, lead["score"].(float64), 50.0)
	assert.Equal(t, "warm", lead["band"])
	changes := lead["stage_changes"].([]any)
	require.Len(t, changes, 1)
	assert.Equal(t, "lead", changes[0].(map[string]any)["from"])
	assert.Equal(t, "mql", changes[0].(map[string]any)["to"])
	assert.Contains(t, changes[0].(map[string]any)["reason"], "MQL threshold 50")
	eventually(t, 10*time.Second, func() bool { return s.leadState(leadID).Handoff != nil }, "handoff recorded")
	st := s.leadState(leadID)
	assert.Contains(t, st.Handoff.Reason, "MQL threshold")
	assert.Equal(t, workflows.StatusExited, st.Status, "marketing drips stop at MQL")
	sentAtHandoff := len(s.inbox.Messages())
	time.Sleep(5 * time.Second) // the remaining steps were due by now
	assert.Equal(t, sentAtHandoff, len(s.inbox.Messages()), "no drip email after the handoff")
	assert.Less(t, sentAtHandoff, 3)
}

// A demo registration is a hand-raise: MQL at once, whatever the score.
func TestDemoRequestIsAHandRaise(t *testing.T) {
	t.Parallel()
	s := setup(t, options{})
	lead := ada()
	lead["source"] = "demo_registration"
	delete(lead, "attributes")
	code, body := s.post("/api/v1/leads", lead)
	require.Equal(t, 201, code)
	leadID := body["id"].(string)
	eventually(t, 30*time.Second, func() bool { return s.leadState(leadID).Handoff != nil }, "handoff recorded")
	assert.Equal(t, "hand-raise: demo_request", s.leadState(leadID).Handoff.Reason)
	assert.Equal(t, "mql", s.lead(leadID)["stage"])
}

// Forged, truncated, re-signed and replayed tokens change nothing, and a click never redirects
// anywhere but its recorded URL.
func TestForgedTokensChangeNothing(t *testing.T) {
	t.Parallel()
	s := setup(t, options{})
	leadID, m := s.captureAda()
	ls := links(t, m)
	require.NotEmpty(t, ls)
	eventually(t, 30*time.Second, func() bool { return s.score(leadID) > 0 }, "capture scored")
	events := func() int {
		var n int
		require.NoError(t, s.store.Pool().QueryRow(context.Background(), `SELECT count(*) FROM events WHERE type IN ('click', 'open', 'unsubscribe')`).Scan(&n))
		return n
	}
	good := ls[0]
	tok := good[strings.LastIndex(good, "/")+1:]
	sendID := uuid.MustParse(sendsOf(t, s, leadID)[0])
	otherKeys, err := track.ParseKeys(track.GenerateKey("e2e"))
	require.NoError(t, err)
	var sid [16]byte
	copy(sid[:], sendID[:])
	forged := map[string]string{
		"random":          s.api.URL + "/t/c/e2e.AAAA.BBBB",
		"truncated":       s.api.URL + "/t/c/" + tok[:len(tok)-3],
		"bit flipped":     s.api.URL + "/t/c/" + flip(tok),
		"wrong key":       s.api.URL + "/t/c/" + otherKeys.Sign(track.Token{Kind: track.KindClick, SendID: sid, Link: 1}),
		"other link":      s.api.URL + "/t/c/" + s.keys.Sign(track.Token{Kind: track.KindClick, SendID: sid, Link: 99}),
		"other send":      s.api.URL + "/t/c/" + s.keys.Sign(track.Token{Kind: track.KindClick, SendID: [16]byte{1, 2, 3}, Link: 1}),
		"open as click":   s.api.URL + "/t/c/" + s.keys.Sign(track.Token{Kind: track.KindOpen, SendID: sid}),
		"unsub as click":  s.api.URL + "/t/c/" + s.keys.Sign(track.Token{Kind: track.KindUnsubscribe, SendID: sid}),
		"with target url": good + "?url=https://evil.example/",
	}
	n := events()
	for name, u := range forged {
		resp := request(t, http.MethodGet, u, browserUA)
		if name == "with target url" {
			// A valid token still goes only to its recorded URL.
			assert.Equal(t, http.StatusFound, resp.StatusCode)
			assert.Equal(t, "https://acme.test/analytics/guide", resp.Header.Get("Location"), name)
			n++
			continue
		}
		assert.Equal(t, http.StatusNotFound, resp.StatusCode, name)
		assert.Empty(t, resp.Header.Get("Location"), name)
	}
	// Forged unsubscribe and open tokens: the same answer as a real one, and nothing changes.
	resp, err := http.PostForm(s.api.URL+"/u/"+flip(tok), url.Values{"List-Unsubscribe": {"One-Click"}})
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, 200, resp.StatusCode)
	assert.Equal(t, 200, request(t, http.MethodGet, s.api.URL+"/t/o/"+flip(tok), browserUA).StatusCode)
	time.Sleep(500 * time.Millisecond)
	assert.Equal(t, n, events(), "only the valid click was recorded")
	assert.Nil(t, s.lead(leadID)["unsubscribed_at"])
}

func flip(tok string) string {
	b := []byte(tok)
	i := len(b) / 2
	if b[i] == 'A' {
		b[i] = 'B'
	} else {
		b[i] = 'A'
	}
	return string(b)
}

func sendsOf(t *testing.T, s *stack, leadID string) []string {
	sends, err := s.store.Sends(context.Background(), leadID)
	require.NoError(t, err)
	var ids []string
	for _, sd := range sends {
		ids = append(ids, sd.ID)
	}
	return ids
}

// Machine opens and clicks (a HEAD request, a scanner's user agent, an open right after sending)
// are stored and marked, and do not move the score.
func TestMachineOpensAndClicksAreStoredNotScored(t *testing.T) {
	t.Parallel()
	s := setup(t, options{})
	leadID, m := s.captureAda()
	// Apple Mail Privacy Protection style: the image fetched at once by a generic agent.
	request(t, http.MethodGet, strings.ReplaceAll(pixelRe.FindStringSubmatch(m.HTML)[1], "&amp;", "&"), "Mozilla/5.0")
	ls := links(t, m)
	resp := request(t, http.MethodHead, ls[0], browserUA)
	assert.Equal(t, http.StatusFound, resp.StatusCode, "a scanner still gets the redirect")
	request(t, http.MethodGet, ls[1], "Mozilla/5.0 (compatible; Barracuda Sentinel)")
	eventually(t, 10*time.Second, func() bool {
		var n int
		require.NoError(t, s.store.Pool().QueryRow(context.Background(), `SELECT count(*) FROM events WHERE machine`).Scan(&n))
		return n == 3
	}, "three machine events stored")
	rows, err := s.store.Pool().Query(context.Background(), `SELECT type, machine_reason FROM events WHERE machine ORDER BY id`)
	require.NoError(t, err)
	var reasons []string
	for rows.Next() {
		var typ, reason string
		require.NoError(t, rows.Scan(&typ, &reason))
		reasons = append(reasons, typ+": "+reason)
	}
	assert.ElementsMatch(t, []string{"open: privacy proxy", "click: head request", "click: scanner user agent"}, reasons)
	eventually(t, 30*time.Second, func() bool { return s.score(leadID) > 0 }, "capture scored")
	time.Sleep(time.Second)
	assert.Equal(t, 10.0, s.score(leadID), "only the capture and fit count")
}

// One-click unsubscribe: a POST with exactly the RFC 8058 body unsubscribes at once, without a
// redirect; a GET never does; no further email is sent and the workflow says why it stopped.
func TestOneClickUnsubscribe(t *testing.T) {
	t.Parallel()
	s := setup(t, options{})
	leadID, m := s.captureAda()
	u := strings.TrimSuffix(strings.SplitN(strings.TrimPrefix(m.Header.Get("List-Unsubscribe"), "<"), ">", 2)[0], ">")

	resp := request(t, http.MethodGet, u, "Mozilla/5.0 (compatible; link scanner)")
	assert.Equal(t, 200, resp.StatusCode)
	assert.Nil(t, s.lead(leadID)["unsubscribed_at"], "a GET does not unsubscribe")

	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader("List-Unsubscribe=One-Click"))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err = noRedirect.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, 200, resp.StatusCode, "no redirect")
	assert.NotNil(t, s.lead(leadID)["unsubscribed_at"])
	// Repeats are harmless.
	req, _ = http.NewRequest(http.MethodPost, u, strings.NewReader("List-Unsubscribe=One-Click"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err = noRedirect.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, 200, resp.StatusCode)

	eventually(t, 30*time.Second, func() bool { return s.leadState(leadID).ExitReason == "unsubscribed" }, "the workflow stops")
	time.Sleep(5 * time.Second) // the next steps were due
	assert.Equal(t, 1, len(s.inbox.Messages()), "no email after unsubscribing")
	var n int
	require.NoError(t, s.store.Pool().QueryRow(context.Background(), `SELECT count(*) FROM events WHERE type = 'unsubscribe'`).Scan(&n))
	assert.Equal(t, 1, n)
}

// An unsubscribe that arrives while the next email's activity is about to send stops that email.
func TestUnsubscribeWhileTheNextSendIsInFlight(t *testing.T) {
	t.Parallel()
	arrived := make(chan struct{})
	proceed := make(chan struct{})
	var once atomic.Bool
	s := setup(t, options{beforeSend: func(ctx context.Context, in activities.SendInput) {
		if in.StepID == "deep-dive" && once.CompareAndSwap(false, true) {
			close(arrived)
			<-proceed
		}
	}})
	leadID, m := s.captureAda()
	select {
	case <-arrived:
	case <-time.After(30 * time.Second):
		t.Fatal("the second step never started")
	}
	u := strings.SplitN(strings.TrimPrefix(m.Header.Get("List-Unsubscribe"), "<"), ">", 2)[0]
	resp, err := http.Post(u, "application/x-www-form-urlencoded", strings.NewReader("List-Unsubscribe=One-Click"))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode)
	close(proceed)
	eventually(t, 30*time.Second, func() bool { return s.leadState(leadID).ExitReason == "unsubscribed" }, "the workflow stops")
	time.Sleep(2 * time.Second)
	assert.Equal(t, 1, len(s.inbox.Messages()), "the in-flight email was not sent")
	sends, err := s.store.Sends(context.Background(), leadID)
	require.NoError(t, err)
	require.Len(t, sends, 2)
	assert.Equal(t, "suppressed", sends[1].Status)
}

// A burst of events for one lead costs one signal and one rescore, not one per event.
func TestBurstOfEventsIsCoalesced(t *testing.T) {
	t.Parallel()
	s := setup(t, options{})
	leadID, _ := s.captureAda()
	eventually(t, 30*time.Second, func() bool { return s.leadState(leadID).Rescores >= 1 }, "capture scored")
	rescoresBefore := s.leadState(leadID).Rescores
	signalsBefore := s.engagedSignals(leadID)
	for batch := range 5 {
		var evs []map[string]any
		for i := range 10 {
			evs = append(evs, map[string]any{"id": fmt.Sprintf("b%d-%d", batch, i), "lead_id": leadID, "type": "page_view",
				"url": "https://acme.test/blog/post", "tags": []string{"blog"}})
		}
		code, res := s.post("/api/v1/events", map[string]any{"events": evs})
		require.Equal(t, 200, code, "%v", res)
	}
	eventually(t, 30*time.Second, func() bool { return s.score(leadID) == 15 }, "blog views scored, capped at 5")
	time.Sleep(time.Second)
	signals := s.engagedSignals(leadID) - signalsBefore
	rescores := s.leadState(leadID).Rescores - rescoresBefore
	t.Logf("50 events in 5 requests cost %d engaged signal(s) and %d rescore activity(ies)", signals, rescores)
	// At most one per request (the coalescer flushes every 200 ms here; usually 1 in all), never
	// one per event.
	assert.LessOrEqual(t, signals, 5)
	assert.LessOrEqual(t, rescores, signals)
}

func (s *stack) engagedSignals(leadID string) int {
	it := s.client.GetWorkflowHistory(context.Background(), workflows.LeadWorkflowID(leadID), "", false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	n := 0
	for it.HasNext() {
		ev, err := it.Next()
		require.NoError(s.t, err)
		if a := ev.GetWorkflowExecutionSignaledEventAttributes(); a != nil && a.GetSignalName() == workflows.SignalEngaged {
			n++
		}
	}
	return n
}

// The lead list filters by stage, band, segment and score, and pages with a cursor.
func TestListLeads(t *testing.T) {
	t.Parallel()
	s := setup(t, options{})
	for i, in := range []string{"analytics", "analytics", "newsletter"} {
		lead := ada()
		lead["email"] = fmt.Sprintf("person%d@example.com", i)
		lead["interests"] = []string{in}
		code, _ := s.post("/api/v1/leads", lead)
		require.Equal(t, 201, code)
	}
	code, page := s.get("/api/v1/leads?segment=analytics&limit=1")
	require.Equal(t, 200, code)
	require.Len(t, page["leads"], 1)
	first := page["leads"].([]any)[0].(map[string]any)
	assert.Equal(t, "person0@example.com", first["email"])
	next := page["next"].(string)
	code, page = s.get("/api/v1/leads?segment=analytics&limit=1&cursor=" + next)
	require.Equal(t, 200, code)
	require.Len(t, page["leads"], 1)
	assert.Equal(t, "person1@example.com", page["leads"].([]any)[0].(map[string]any)["email"])
	code, page = s.get("/api/v1/leads?segment=analytics&limit=1&cursor=" + page["next"].(string))
	require.Equal(t, 200, code)
	assert.Empty(t, page["leads"])
	assert.Nil(t, page["next"])

	code, page = s.get("/api/v1/leads?stage=lead&band=cold&min_score=0&max_score=49")
	require.Equal(t, 200, code)
	assert.Len(t, page["leads"], 3)
	code, page = s.get("/api/v1/leads?stage=mql")
	require.Equal(t, 200, code)
	assert.Empty(t, page["leads"])
	code, bad := s.get("/api/v1/leads?stage=prospect&band=lukewarm&min_score=x&cursor=zzz")
	assert.Equal(t, 422, code)
	assert.Len(t, bad["fields"], 4)
}
