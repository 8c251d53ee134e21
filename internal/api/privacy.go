package api

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/mail"
	"strings"

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

// bounceWebhook takes mail that came back to tend — a bounce (DSN), a complaint (ARF) or a
// mailto unsubscribe — as posted by a mail provider or a mailbox reader, signed with
// TEND_WEBHOOK_SECRET: X-Tend-Signature: sha256=<hex HMAC of the body>.
func (s *Server) bounceWebhook(w http.ResponseWriter, r *http.Request) {
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
	sig, ok := strings.CutPrefix(r.Header.Get("X-Tend-Signature"), "sha256=")
	got, decErr := hex.DecodeString(sig)
	mac := hmac.New(sha256.New, []byte(s.WebhookSecret))
	mac.Write(body)
	if s.WebhookSecret == "" || !ok || decErr != nil || !hmac.Equal(got, mac.Sum(nil)) {
		writeError(w, http.StatusUnauthorized, "missing or wrong X-Tend-Signature (sha256=<hex HMAC-SHA256 of the body>)", nil)
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

func (s *Server) privacyRoutes(mux *http.ServeMux) {
	mux.Handle("GET /api/v1/leads/{id}/export", s.admin(s.exportLead))
	mux.Handle("DELETE /api/v1/leads/{id}", s.admin(s.eraseLead))
	if s.Engage != nil {
		mux.HandleFunc("POST /api/v1/webhooks/bounces", s.bounceWebhook)
		mux.HandleFunc("POST /api/v1/webhooks/inbound", s.bounceWebhook) // the same: any mail tend receives
	}
}
