package engage

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/tendhq/tend/internal/bounce"
	"github.com/tendhq/tend/internal/db"
)

// SoftBounceLimit is how many soft bounces within SoftBounceWindow suppress an address.
const (
	SoftBounceLimit  = 3
	SoftBounceWindow = 30 * 24 * time.Hour
)

// BounceResult says what a report changed.
type BounceResult struct {
	Kind       string `json:"kind"`
	LeadID     string `json:"lead_id,omitempty"`
	Suppressed bool   `json:"suppressed"`
	// Unsubscribed is set for complaints.
	Unsubscribed bool   `json:"unsubscribed"`
	Ignored      string `json:"ignored,omitempty"`
}

// RecordReport applies a parsed bounce or complaint: a hard bounce suppresses the address and
// counts against the score; soft bounces are counted and suppress after SoftBounceLimit within
// SoftBounceWindow; a complaint suppresses and unsubscribes. The send is found by its VERP token,
// else its Message-ID, else the recipient's latest send.
func (s *Service) RecordReport(ctx context.Context, r bounce.Report) (BounceResult, error) {
	res := BounceResult{Kind: string(r.Kind)}
	if r.Kind == bounce.KindUnknown || r.Kind == bounce.KindDelayed {
		res.Ignored = "nothing to act on"
		return res, nil
	}
	if r.PolicyRejection() {
		// 5.7.x: the receiving side refused us (blocklist, policy), not the person's mailbox.
		s.log().Warn("policy rejection reported; address not counted against the person", "status", r.Status)
		res.Ignored = "policy rejection: not the recipient's fault"
		return res, nil
	}
	sendID := ""
	if r.VERPToken != "" {
		if id, err := uuid.Parse(r.VERPToken); err == nil {
			sendID = id.String()
		}
	}
	sent, err := s.Store.FindSend(ctx, sendID, r.MessageID, r.Recipient)
	if errors.Is(err, db.ErrNotFound) && (sendID != "" || r.MessageID != "") && r.Recipient != "" {
		sent, err = s.Store.FindSend(ctx, "", "", r.Recipient)
	}
	if errors.Is(err, db.ErrNotFound) {
		res.Ignored = "no send of ours matches the report"
		return res, nil
	}
	if err != nil {
		return res, err
	}
	res.LeadID = sent.LeadID
	now := time.Now()
	tag := string(r.Kind)
	evType := "bounce"
	if r.Kind == bounce.KindComplaint {
		evType = "complaint"
	}
	// Idempotent per (report kind, send, status): the same report delivered twice counts once.
	clientID := fmt.Sprintf("%s:%s:%s", evType, sent.SendID, strings.ReplaceAll(r.Status+r.FeedbackType, " ", ""))
	if _, err := s.Store.InsertEvents(ctx, []db.Event{{LeadID: sent.LeadID, Type: evType, Tags: []string{tag}, SendID: sent.SendID,
		ClientEventID: clientID, OccurredAt: now}}); err != nil {
		return res, err
	}
	switch r.Kind {
	case bounce.KindHard:
		if err := s.Store.Suppress(ctx, sent.Email, "hard_bounce", r.Status+" "+r.Diagnostic); err != nil {
			return res, err
		}
		res.Suppressed = true
	case bounce.KindSoft:
		n, err := s.Store.CountEvents(ctx, sent.LeadID, "bounce", "soft", now.Add(-SoftBounceWindow))
		if err != nil {
			return res, err
		}
		if n >= SoftBounceLimit {
			if err := s.Store.Suppress(ctx, sent.Email, "soft_bounces", fmt.Sprintf("%d soft bounces", n)); err != nil {
				return res, err
			}
			res.Suppressed = true
		}
	case bounce.KindComplaint:
		if err := s.Store.Suppress(ctx, sent.Email, "complaint", r.FeedbackType); err != nil {
			return res, err
		}
		if _, err := s.Store.Unsubscribe(ctx, sent.LeadID, sent.SendID, "complaint"); err != nil {
			return res, err
		}
		res.Suppressed, res.Unsubscribed = true, true
	}
	s.Metrics.Bounce(string(r.Kind), res.Suppressed)
	s.log().Info("bounce report applied", "lead_id", sent.LeadID, "kind", r.Kind, "suppressed", res.Suppressed)
	s.notify(sent.LeadID)
	return res, nil
}
