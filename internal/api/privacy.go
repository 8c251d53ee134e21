package api

import (
	"bytes"
	"context"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/mail"
	"strings"
	"time"

	"github.com/tendhq/tend/internal/bounce"
	"github.com/tendhq/tend/internal/engage"
)

// Canceller stops a lead's workflow.
type Canceller interface {
	CancelLead(ctx context.Context, leadID string) error
}

// MaxReportBytes bounds a bounce or complaint report posted to the webhook.
const MaxReportBytes = 1 << 20

func (s *Server) exportLead(w http.ResponseWriter, r *http.Request) {
	out, err := s.Store.ExportLead(r.Context(), r.PathValue("id"))
	if err != nil {
		s.fail(w, "export lead", err)
		return
	}
	w.Header().Set("Content-Disposition", `attachment; filename="lead-`+r.PathValue("id")+`.json"`)
	writeJSON(w, http.StatusOK, out)
}

type eraseRequest struct {
	Reason string `json:"reason"`
}

// eraseLead stops the lead's workflow and erases everything tend holds about the person, keeping
// only a keyed hash of the address on the suppression list.
func (s *Server) eraseLead(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	req := eraseRequest{Reason: "erasure request"}
	if r.ContentLength != 0 && !decode(w, r, &req) {
		return
	}
	if len(req.Reason) > 200 {
		writeError(w, http.StatusUnprocessableEntity, "reason is longer than 200 characters (and must not hold personal data)", nil)
		return
	}
	if _, err := s.Store.Lead(r.Context(), id); err != nil {
		s.fail(w, "erase lead", err)
		return
	}
	if s.Canceller != nil {
		if err := s.Canceller.CancelLead(r.Context(), id); err != nil {
			s.log().Warn("cancel lead workflow before erasure", "lead_id", id, "err", err)
		}
	}
	if err := s.Store.EraseLead(r.Context(), id, req.Reason); err != nil {
		s.fail(w, "erase lead", err)
		return
	}
	s.log().Info("lead erased", "lead_id", id)
	writeJSON(w, http.StatusOK, map[string]any{"id": id, "erased": true})
}

// bounceWebhook returns the handler of what comes back from sending: mail (a bounce (DSN), a
// complaint (ARF) or a mailto unsubscribe) as a mailbox reader posts it, or bounce and complaint
// events as JSON, in tend's format or a mail provider's (Amazon SES/SNS, SendGrid, Postmark,
// Mailgun). The caller proves it knows TEND_WEBHOOK_SECRET by signing the timestamp and the body
// (X-Tend-Timestamp, X-Tend-Signature; see SignWebhook) or, for providers that cannot sign that
// way, with HTTP Basic credentials whose password is the secret (https://tend:SECRET@host/… in
// their settings). The headers are checked before the body is read; seen holds the signatures
// already applied.
func (s *Server) bounceWebhook(seen *replayGuard) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		auth, why := s.webhookHeaders(r, seen, time.Now())
		if why != "" {
			writeError(w, http.StatusUnauthorized, why, nil)
			return
		}
		applied := false
		if auth.sig != "" {
			defer func() {
				if !applied {
					seen.release(auth.sig)
				}
			}()
		}
		sw := &statusWriter{ResponseWriter: w}
		s.applyWebhook(sw, r, auth)
		// A handler that wrote nothing applied nothing: the raw status, not code()'s default.
		applied = sw.status >= 200 && sw.status < 300
	}
}

// applyWebhook reads and applies an inbound report whose headers were authenticated.
func (s *Server) applyWebhook(w http.ResponseWriter, r *http.Request, auth webhookAuth) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxReportBytes))
	if err != nil {
		var maxErr *http.MaxBytesError
		if errors.As(err, &maxErr) {
			writeError(w, http.StatusRequestEntityTooLarge, "report is larger than 1 MiB", nil)
			return
		}
		writeError(w, http.StatusBadRequest, "could not read the report", nil)
		return
	}
	if !auth.bodyAuthentic(s.WebhookSecret, body) {
		writeError(w, http.StatusUnauthorized, "X-Tend-Signature does not match X-Tend-Timestamp and the body (sha256=<hex HMAC-SHA256 of timestamp.body>)", nil)
		return
	}
	if trimmed := bytes.TrimSpace(body); len(trimmed) > 0 && (trimmed[0] == '{' || trimmed[0] == '[') {
		s.providerEvents(w, r, trimmed)
		return
	}
	if token, ok := unsubscribeRequest(body); ok {
		// A person used the mailto: form of List-Unsubscribe.
		err := s.Engage.Unsubscribe(context.WithoutCancel(r.Context()), token, "mailto")
		if err != nil && !errors.Is(err, engage.ErrInvalidLink) {
			s.fail(w, "unsubscribe by mail", err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"kind": "unsubscribe", "unsubscribed": err == nil})
		return
	}
	rep, err := bounce.Parse(body)
	if err != nil {
		writeError(w, http.StatusUnprocessableEntity, "not a delivery status notification or feedback report: "+err.Error(), nil)
		return
	}
	res, err := s.Engage.RecordReport(r.Context(), rep)
	if err != nil {
		s.fail(w, "apply bounce report", err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

// providerEvents applies bounce and complaint events posted as JSON. Each is idempotent, so a
// provider that retries after an error changes nothing twice.
func (s *Server) providerEvents(w http.ResponseWriter, r *http.Request, body []byte) {
	ev, err := bounce.ParseEvents(body)
	if err != nil {
		writeError(w, http.StatusUnprocessableEntity, err.Error(), nil)
		return
	}
	if ev.ConfirmURL != "" {
		// tend fetches no URL named in a request; a person confirms the subscription once.
		s.log().Warn("Amazon SNS subscription to the bounce webhook awaits confirmation: open its SubscribeURL", "url", ev.ConfirmURL)
		writeJSON(w, http.StatusOK, map[string]any{"source": ev.Source, "confirm_url": ev.ConfirmURL})
		return
	}
	results := make([]engage.BounceResult, 0, len(ev.Reports))
	for _, rep := range ev.Reports {
		res, err := s.Engage.RecordReport(r.Context(), rep)
		if err != nil {
			s.fail(w, "apply bounce event", err)
			return
		}
		results = append(results, res)
	}
	writeJSON(w, http.StatusOK, map[string]any{"source": ev.Source, "results": results})
}

// limitWebhook applies the per-client rate limit to a webhook before anything else, so guessing
// the Basic password or flooding the endpoint is slow. Webhooks have buckets of their own: a
// provider's bursts of bounces do not use up its address's allowance for links, nor the reverse.
func (s *Server) limitWebhook(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.Limiter != nil && !s.Limiter.Allow("webhook|"+s.clientAddr(r)) {
			w.Header().Set("Retry-After", "1")
			writeError(w, http.StatusTooManyRequests, "too many webhook requests from this address; retry in a moment", nil)
			return
		}
		h(w, r)
	})
}

// unsubscribeRequest recognises a mail sent to the List-Unsubscribe mailto address: its subject is
// "unsubscribe <token>" (as the mailto link fills it in; a "Re:" or "Fwd:" prefix is tolerated).
func unsubscribeRequest(raw []byte) (string, bool) {
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return "", false
	}
	subject, err := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
	if err != nil {
		return "", false
	}
	fields := strings.Fields(subject)
	for len(fields) > 0 && strings.HasSuffix(fields[0], ":") {
		fields = fields[1:] // Re: / Fwd:
	}
	if len(fields) != 2 || !strings.EqualFold(fields[0], "unsubscribe") || len(fields[1]) > 256 {
		return "", false
	}
	return fields[1], true
}

func (s *Server) privacyRoutes(mux routeMux) {
	mux.Handle("GET /api/v1/leads/{id}/export", s.admin(s.exportLead))
	mux.Handle("DELETE /api/v1/leads/{id}", s.admin(s.eraseLead))
	if s.Engage != nil {
		// Both routes share one replay guard and, per client address, the public rate limit.
		hook := s.limitWebhook(s.bounceWebhook(&replayGuard{}))
		mux.Handle("POST /api/v1/webhooks/bounces", hook)
		mux.Handle("POST /api/v1/webhooks/inbound", hook) // the same: any mail tend receives
	}
}
