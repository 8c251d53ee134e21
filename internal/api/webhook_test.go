package api_test

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tendhq/tend/internal/api"
	"github.com/tendhq/tend/internal/dbtest"
	"github.com/tendhq/tend/internal/engage"
)

const webhookSecret = "whsec-0123456789abcdef"

// hardBounce is a report in tend's own format for an address tend never sent to: applied, it is
// answered with the reason it changed nothing.
const hardBounce = `{"events":[{"type":"bounce","recipient":"nobody@northwind.io","bounce_type":"hard","status":"5.1.1"}]}`

// untouchable is a request body that fails the test when anything reads it.
type untouchable struct{ t *testing.T }

func (u untouchable) Read([]byte) (int, error) {
	u.t.Error("the body of an unauthenticated webhook was read")
	return 0, http.ErrBodyReadAfterClose
}

func webhookServer(t *testing.T, limiter *api.Limiter) http.Handler {
	t.Helper()
	store := dbtest.Store(t)
	srv := &api.Server{Store: store, Engage: &engage.Service{Store: store}, WebhookSecret: webhookSecret,
		APIKeys: []string{apiKey}, Limiter: limiter}
	return srv.Handler()
}

// postHook sends a webhook request to h from a client address; set adds its headers.
func postHook(h http.Handler, body interface{ Read([]byte) (int, error) }, set func(http.Header)) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, "/api/v1/webhooks/bounces", body)
	req.RemoteAddr = "192.0.2.10:40000"
	req.Header.Set("Content-Type", "application/json")
	set(req.Header)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func signed(at time.Time, body string) func(http.Header) {
	return func(h http.Header) {
		ts, sig := api.SignWebhook(webhookSecret, at, []byte(body))
		h.Set("X-Tend-Timestamp", ts)
		h.Set("X-Tend-Signature", sig)
	}
}

// A webhook without valid credentials in its headers is refused before its body is read: no
// signature, a bad one, no timestamp, a stale or future one, a wrong Basic password.
func TestWebhookAuthenticatedBeforeTheBodyIsRead(t *testing.T) {
	h := webhookServer(t, nil)
	old := time.Now().Add(-6 * time.Minute)
	for name, set := range map[string]func(http.Header){
		"no credentials": func(http.Header) {},
		"malformed signature": func(h http.Header) {
			h.Set("X-Tend-Timestamp", "1")
			h.Set("X-Tend-Signature", "sha256=zz")
		},
		"no timestamp": func(h http.Header) {
			_, sig := api.SignWebhook(webhookSecret, time.Now(), []byte(hardBounce))
			h.Set("X-Tend-Signature", sig)
		},
		"stale timestamp":  signed(old, hardBounce),
		"future timestamp": signed(time.Now().Add(6*time.Minute), hardBounce),
		"wrong password": func(h http.Header) {
			h.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte("tend:guess")))
		},
	} {
		rec := postHook(h, untouchable{t}, set)
		assert.Equal(t, http.StatusUnauthorized, rec.Code, name)
		assert.NotContains(t, rec.Body.String(), webhookSecret, name)
	}
}

// A request signed over its timestamp and body is applied once; the same request played again,
// inside the window or after it, is refused and changes nothing; a body altered under a genuine
// signature is refused.
func TestWebhookSignedRequestsCannotBeReplayed(t *testing.T) {
	h := webhookServer(t, nil)
	now := time.Now()
	rec := postHook(h, strings.NewReader(hardBounce), signed(now, hardBounce))
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	var out struct {
		Source  string `json:"source"`
		Results []struct {
			Ignored string `json:"ignored"`
		} `json:"results"`
	}
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &out), rec.Body.String())
	require.Len(t, out.Results, 1)
	assert.Equal(t, "no send of ours matches the report", out.Results[0].Ignored, "the report was applied")

	rec = postHook(h, untouchable{t}, signed(now, hardBounce))
	assert.Equal(t, http.StatusUnauthorized, rec.Code, "replayed inside the window")
	assert.Contains(t, rec.Body.String(), "replayed")

	// Signed for one body, sent with another: refused, and the signature stays usable for the
	// genuine request (a sender whose first try failed may retry it).
	at := now.Add(-time.Minute)
	rec = postHook(h, strings.NewReader(strings.Replace(hardBounce, "nobody", "somebody", 1)), signed(at, hardBounce))
	assert.Equal(t, http.StatusUnauthorized, rec.Code, "altered body")
	rec = postHook(h, strings.NewReader(hardBounce), signed(at, hardBounce))
	assert.Equal(t, http.StatusOK, rec.Code, "the genuine request after a refused forgery: %s", rec.Body.String())

	// Basic credentials (providers that cannot sign) work, checked before the body too.
	rec = postHook(h, strings.NewReader(hardBounce), func(h http.Header) {
		h.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte("tend:"+webhookSecret)))
	})
	assert.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
}

// Webhooks are rate-limited per client address, before anything else is done.
func TestWebhookRateLimited(t *testing.T) {
	h := webhookServer(t, api.NewLimiter(0.001, 2))
	for i := range 2 {
		assert.Equal(t, http.StatusUnauthorized, postHook(h, untouchable{t}, func(http.Header) {}).Code, "request %d", i)
	}
	rec := postHook(h, untouchable{t}, signed(time.Now(), hardBounce))
	assert.Equal(t, http.StatusTooManyRequests, rec.Code)
	assert.Equal(t, "1", rec.Header().Get("Retry-After"))
}

// Without TEND_WEBHOOK_SECRET every webhook is refused, unread.
func TestWebhookWithoutSecretRefusesAll(t *testing.T) {
	store := dbtest.Store(t)
	h := (&api.Server{Store: store, Engage: &engage.Service{Store: store}, APIKeys: []string{apiKey}}).Handler()
	rec := postHook(h, untouchable{t}, signed(time.Now(), hardBounce))
	assert.Equal(t, http.StatusUnauthorized, rec.Code)
	assert.Contains(t, rec.Body.String(), "TEND_WEBHOOK_SECRET")
}
