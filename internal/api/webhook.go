package api

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Inbound webhooks (bounces, complaints, mail sent to tend) are authenticated before their body
// is read, so an unauthenticated sender costs tend a header check, not a megabyte read and parse.
// tend's own format is signed over a timestamp and the body:
//
//	X-Tend-Timestamp: <unix seconds>
//	X-Tend-Signature: sha256=<hex HMAC-SHA256(TEND_WEBHOOK_SECRET, timestamp + "." + body)>
//
// A timestamp more than WebhookReplayWindow from the server's clock is refused before the body is
// read, and a signature already accepted inside the window is refused too, so a captured request
// cannot be played again. Providers that cannot sign that way use HTTP Basic credentials whose
// password is the secret, checked before the body is read too; their timestamps are not checked
// (see the README: the credentials, not the timestamp, are what a replay would need, and providers
// retry for hours with the original timestamp).

// WebhookReplayWindow is how far a signed webhook's X-Tend-Timestamp may be from the server's clock.
const WebhookReplayWindow = 5 * time.Minute

// SignWebhook returns the X-Tend-Timestamp and X-Tend-Signature headers that authenticate body,
// posted at the time at, to tend's webhooks.
func SignWebhook(secret string, at time.Time, body []byte) (timestamp, signature string) {
	timestamp = strconv.FormatInt(at.Unix(), 10)
	return timestamp, "sha256=" + hex.EncodeToString(webhookMAC(secret, timestamp, body))
}

func webhookMAC(secret, timestamp string, body []byte) []byte {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(timestamp))
	m.Write([]byte("."))
	m.Write(body)
	return m.Sum(nil)
}

// webhookAuth is what the headers of a webhook request say about who sent it, known before the
// body is read.
type webhookAuth struct {
	// basic: the Basic password was the secret; nothing more to check.
	basic bool
	// timestamp and mac: a signed request whose body is still to be checked against mac.
	timestamp string
	mac       []byte
	sig       string // the claimed signature, released when the request is not applied
}

// webhookHeaders checks what can be checked before the body is read: the secret is set, and the
// request carries either the right Basic password or a well-formed signature with a timestamp
// inside the replay window that was not accepted before. The reason names what is missing,
// never the secret.
func (s *Server) webhookHeaders(r *http.Request, seen *replayGuard, now time.Time) (webhookAuth, string) {
	if s.WebhookSecret == "" {
		return webhookAuth{}, "webhooks are refused: TEND_WEBHOOK_SECRET is not set"
	}
	if sig := r.Header.Get("X-Tend-Signature"); sig != "" {
		hexMAC, ok := strings.CutPrefix(sig, "sha256=")
		mac, err := hex.DecodeString(hexMAC)
		if !ok || err != nil || len(mac) != sha256.Size {
			return webhookAuth{}, "X-Tend-Signature is not sha256=<hex HMAC-SHA256 of timestamp.body>"
		}
		ts := r.Header.Get("X-Tend-Timestamp")
		sec, err := strconv.ParseInt(ts, 10, 64)
		if err != nil || len(ts) > 12 {
			return webhookAuth{}, "X-Tend-Timestamp (unix seconds, signed with the body) is missing or not a number"
		}
		if d := now.Sub(time.Unix(sec, 0)); d > WebhookReplayWindow || d < -WebhookReplayWindow {
			return webhookAuth{}, "X-Tend-Timestamp is more than 5 minutes from the server's clock: a stale or replayed request"
		}
		if !seen.claim(hexMAC, ts, now) {
			return webhookAuth{}, "this signed request was already received: a replayed request"
		}
		return webhookAuth{timestamp: ts, mac: mac, sig: hexMAC}, ""
	}
	if _, pass, ok := r.BasicAuth(); ok {
		if subtle.ConstantTimeCompare([]byte(pass), []byte(s.WebhookSecret)) == 1 {
			return webhookAuth{basic: true}, ""
		}
		return webhookAuth{}, "wrong Basic credentials"
	}
	return webhookAuth{}, "missing X-Tend-Timestamp and X-Tend-Signature (sha256=<hex HMAC-SHA256 of timestamp.body>), or Basic credentials"
}

// bodyAuthentic reports whether body is the one the headers signed.
func (a webhookAuth) bodyAuthentic(secret string, body []byte) bool {
	return a.basic || hmac.Equal(a.mac, webhookMAC(secret, a.timestamp, body))
}

// replayGuard remembers the signatures accepted within the replay window, so one signed request
// is applied once per server instance. Across instances a replay inside the window is harmless:
// every report is recorded idempotently.
type replayGuard struct {
	mu   sync.Mutex
	seen map[string]time.Time // signature → when it stops mattering
}

// maxRemembered bounds the guard's memory; past it the oldest half is forgotten early, which only
// shortens the window for those (they are still refused once their timestamp is stale).
const maxRemembered = 100_000

// claim records sig as received until its timestamp leaves the window, and reports false if it
// already was: of two copies of one request arriving together, one is applied.
func (g *replayGuard) claim(sig, timestamp string, now time.Time) bool {
	sec, _ := strconv.ParseInt(timestamp, 10, 64)
	until := time.Unix(sec, 0).Add(WebhookReplayWindow + time.Second)
	g.mu.Lock()
	defer g.mu.Unlock()
	if u, ok := g.seen[sig]; ok && now.Before(u) {
		return false
	}
	if g.seen == nil {
		g.seen = map[string]time.Time{}
	}
	if len(g.seen) >= maxRemembered {
		for k, u := range g.seen {
			if !now.Before(u) || len(g.seen) >= maxRemembered/2 {
				delete(g.seen, k)
			}
		}
	}
	g.seen[sig] = until
	return true
}

// release forgets sig: the request it signed was not applied, and its sender may retry it.
func (g *replayGuard) release(sig string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.seen, sig)
}
