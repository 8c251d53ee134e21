package activities

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/google/uuid"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/tendhq/tend/internal/bounce"
	"github.com/tendhq/tend/internal/content"
	"github.com/tendhq/tend/internal/db"
	"github.com/tendhq/tend/internal/mail"
	"github.com/tendhq/tend/internal/metrics"
	"github.com/tendhq/tend/internal/render"
	"github.com/tendhq/tend/internal/sequence"
	"github.com/tendhq/tend/internal/track"
)

// Mailer delivers one message; *mail.Mailer is the production implementation.
type Mailer interface {
	Send(ctx context.Context, msg mail.Message) error
}

// From is the sender identity of marketing email.
type From struct {
	Name    string
	Address string
	// Domain is the right-hand side of every Message-ID tend generates.
	Domain string
	// PostalAddress is printed in every footer (CAN-SPAM).
	PostalAddress string
}

// Tracking makes every email trackable: links go through signed click URLs, an open pixel is
// added, and the unsubscribe link and List-Unsubscribe headers carry a signed token.
type Tracking struct {
	Keys *track.Keys
	// BaseURL is the public address of tend server (https in production), e.g. https://t.example.com.
	BaseURL string
	// MailtoAddress, when set, is offered as the mailto form of List-Unsubscribe.
	MailtoAddress string
	// BounceDomain, when set, makes the envelope sender a VERP address bounce+<send id>@domain, so
	// that a bounce arriving later names the send it is about.
	BounceDomain string
}

// Email sends sequence steps.
type Email struct {
	Store    *db.Store
	Mailer   Mailer
	Renderer *render.Renderer
	From     From
	// Tracking, when nil, sends emails without tracking or unsubscribe links (tests only).
	Tracking *Tracking
	// Consent, when set, may require a recorded consent before a lead is mailed.
	Consent *sequence.ConsentPolicy
	// Live, when set, is the published content: its templates and consent policy replace
	// Renderer and Consent.
	Live *content.Live
	Log  *slog.Logger
	// BeforeSend, when set, runs when the activity starts, before the send is claimed. It exists
	// for tests that race an unsubscribe against a send; production code leaves it nil.
	BeforeSend func(ctx context.Context, in SendInput)
	// AfterAccepted, when set, runs after the SMTP server accepted a message and tend recorded it,
	// and its error fails the activity. It exists for fault-injection tests of exactly-once
	// delivery; production code leaves it nil.
	AfterAccepted func(ctx context.Context, in SendInput) error
	// Metrics, when set, counts each step's outcome.
	Metrics *metrics.Set
}

// SendInput names the step to send. It carries ids only, never personal data.
type SendInput struct {
	LeadID     string
	SequenceID string
	StepID     string
	Template   string
	Subject    string
	// Variant is the step's A/B variant the lead gets ("" for a step without variants), recorded
	// with the send; ContentVersion the sequences version the step comes from.
	Variant        string `json:",omitempty"`
	ContentVersion int    `json:",omitempty"`
	// Holdout: the lead is in the sequence's holdout group; the step is recorded, not mailed.
	Holdout bool `json:",omitempty"`
	// Attributes are the step's conditions on the lead's attributes, checked before the claim;
	// a lead they do not hold for gets StatusSkipped.
	Attributes []sequence.AttributeCondition `json:",omitempty"`
	// Pausable: the workflow holds the lead when the step is paused (StatusPaused). Runs from
	// before pauses existed do not set it, so they never see a status they do not know.
	Pausable bool `json:",omitempty"`
	// Released: the lead was held at this step and its pause was resumed.
	Released bool `json:",omitempty"`
}

// Send outcomes.
const (
	StatusSent         = "sent"
	StatusAlreadySent  = "already_sent"
	StatusSuppressed   = "suppressed"
	StatusUnsubscribed = "unsubscribed"
	// StatusPaused: the sequence or step is paused; nothing was claimed and the lead is held.
	StatusPaused = "paused"
	// StatusHeldOut: the lead is in the holdout group; the step is recorded as done, not mailed.
	StatusHeldOut = "held_out"
	// StatusSkipped: the step's attribute conditions do not hold for the lead.
	StatusSkipped = "skipped"
)

// SendResult says what happened to the step.
type SendResult struct {
	Status    string
	SendID    string
	MessageID string
	// Reason explains a suppressed or unsubscribed result.
	Reason string
}

// SendStep sends the step's email to the lead, at most once per (lead, sequence, step): the send
// row is created and locked before SMTP and marked sent in the same transaction after the server
// accepted the message, so a retried or concurrent attempt finds it sent (or busy) and does not
// mail again. Temporary SMTP failures are returned as retryable errors; permanent ones are
// recorded and returned as non-retryable errors, and a hard bounce suppresses the address.
func (a *Email) SendStep(ctx context.Context, in SendInput) (res SendResult, err error) {
	defer func() {
		if o := emailOutcome(res, err); o != "" {
			a.Metrics.Email(o)
		}
	}()
	// Heartbeats tell Temporal within seconds that a worker died mid-send, so the retry does not
	// wait for the start-to-close timeout. The send itself is not cut short by a cancellation:
	// once SMTP accepted a message its row must be marked sent, or a retry would mail again.
	stop := heartbeat(ctx, 2*time.Second)
	defer stop()
	ctx = context.WithoutCancel(ctx)
	log := a.logger().With("lead_id", in.LeadID, "sequence", in.SequenceID, "step", in.StepID)
	if a.BeforeSend != nil {
		a.BeforeSend(ctx, in)
	}
	if res, done, err := a.beforeClaim(ctx, in); done || err != nil {
		return res, err
	}
	claim, err := a.Store.ClaimSend(ctx, db.SendKey{LeadID: in.LeadID, SequenceID: in.SequenceID, StepID: in.StepID}, in.Template, a.From.Domain)
	if errors.Is(err, db.ErrNotFound) {
		return SendResult{}, unknownLead(in.LeadID, err)
	}
	if err != nil {
		return SendResult{}, fmt.Errorf("send step %s of %s to lead %s: %w", in.StepID, in.SequenceID, in.LeadID, err)
	}
	res = SendResult{SendID: claim.Send.ID, MessageID: claim.Send.MessageID}
	switch claim.Send.Status {
	case db.SendSent:
		claim.Abort(ctx)
		log.Info("step already sent; not sending again")
		res.Status = StatusAlreadySent
		return res, nil
	case db.SendSuppressed:
		claim.Abort(ctx)
		res.Status, res.Reason = StatusSuppressed, claim.Send.Error
		return res, nil
	case db.SendFailed:
		claim.Abort(ctx)
		return res, temporal.NewNonRetryableApplicationError("step failed permanently earlier: "+claim.Send.Error, ErrTypeRejected, nil)
	}
	if claim.Lead.UnsubscribedAt != nil {
		res.Status, res.Reason = StatusUnsubscribed, "unsubscribed"
		return res, claim.MarkSuppressed(ctx, "unsubscribed")
	}
	if in.Variant != "" || in.ContentVersion != 0 {
		if err := claim.SetVariant(ctx, in.Variant, in.ContentVersion); err != nil {
			return res, fmt.Errorf("send step %s of %s to lead %s: %w", in.StepID, in.SequenceID, in.LeadID, err)
		}
	}
	if in.Holdout {
		res.Status = StatusHeldOut
		return res, claim.MarkHeldOut(ctx)
	}
	region := claim.Lead.Attributes["region"]
	if region == "" {
		region = claim.Lead.Attributes["country"]
	}
	if claim.ConsentRefused || (!claim.ConsentGranted && a.consent().Requires(region)) {
		res.Status, res.Reason = StatusSuppressed, "consent refused"
		return res, claim.MarkSuppressed(ctx, "consent refused")
	}
	if claim.SuppressedReason != "" {
		res.Status, res.Reason = StatusSuppressed, claim.SuppressedReason
		return res, claim.MarkSuppressed(ctx, "address suppressed: "+claim.SuppressedReason)
	}

	headers := map[string]string{"X-Tend-Send": claim.Send.ID}
	unsubscribeURL := ""
	var sendID [16]byte
	if a.Tracking != nil {
		sendID = uuid.MustParse(claim.Send.ID)
		unsubToken := a.Tracking.Keys.Sign(track.Token{Kind: track.KindUnsubscribe, SendID: sendID})
		unsubscribeURL = a.Tracking.BaseURL + "/u/" + unsubToken
		// RFC 8058 one-click unsubscribe; the https URL carries everything needed.
		headers["List-Unsubscribe"] = "<" + unsubscribeURL + ">"
		if a.Tracking.MailtoAddress != "" {
			headers["List-Unsubscribe"] += ", <mailto:" + a.Tracking.MailtoAddress + "?subject=unsubscribe%20" + unsubToken + ">"
		}
		headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
	}
	data := render.NewData(render.Lead{Name: claim.Lead.Name, Company: claim.Lead.Company, Email: claim.Lead.Email,
		Attributes: claim.Lead.Attributes}, render.Sender{Name: a.From.Name, PostalAddress: a.From.PostalAddress}, unsubscribeURL)
	email, err := a.renderer().Render(in.Template, in.Subject, data)
	if err != nil {
		claim.Abort(ctx)
		return res, temporal.NewNonRetryableApplicationError(fmt.Sprintf("render step %s: %v", in.StepID, err), ErrTypeBadTemplate, nil)
	}
	if a.Tracking != nil {
		email.HTML, email.Text, err = a.track(ctx, claim, sendID, email.HTML, email.Text, unsubscribeURL)
		if err != nil {
			claim.Abort(ctx)
			return res, fmt.Errorf("record links of step %s for lead %s: %w", in.StepID, in.LeadID, err)
		}
	}
	msg := mail.Message{
		FromName: a.From.Name, FromAddress: a.From.Address,
		ToName: claim.Lead.Name, ToAddress: claim.Lead.Email,
		Subject: email.Subject, MessageID: claim.Send.MessageID,
		Text: email.Text, HTML: email.HTML,
		Headers: headers,
	}
	if a.Tracking != nil && a.Tracking.BounceDomain != "" {
		msg.EnvelopeFrom = bounce.VERPAddress(strings.ReplaceAll(claim.Send.ID, "-", ""), bounce.DefaultVERPLocalPart, a.Tracking.BounceDomain)
	}
	sendErr := a.Mailer.Send(ctx, msg)
	if sendErr == nil {
		if err := claim.MarkSent(ctx, email.Subject, 250); err != nil {
			// The server has the message but we could not record it. The claim's transaction rolls
			// back; report it loudly: a retry would send this step a second time.
			log.Error("message accepted by SMTP but not recorded as sent", "err", err)
			return res, fmt.Errorf("record sent step %s to lead %s: %w", in.StepID, in.LeadID, err)
		}
		log.Info("step sent", "message_id", claim.Send.MessageID, "attempt", attempt(ctx))
		res.Status = StatusSent
		return res, a.afterAccepted(ctx, in)
	}
	var f *mail.Failure
	if !errors.As(sendErr, &f) {
		f = &mail.Failure{Temporary: true, Stage: "send"}
	}
	if f.Temporary {
		if err := claim.MarkRetry(ctx, f.Code, f.Error()); err != nil {
			log.Warn("could not record temporary failure", "err", err)
		}
		log.Warn("temporary SMTP failure; will retry", "smtp", f.Error())
		return res, fmt.Errorf("send step %s to lead %s: %w", in.StepID, in.LeadID, f)
	}
	hard := f.HardBounce()
	if err := claim.MarkFailed(ctx, f.Code, f.Enhanced, f.Error(), hard); err != nil {
		return res, fmt.Errorf("record failed step %s to lead %s: %w", in.StepID, in.LeadID, err)
	}
	typ := ErrTypeRejected
	if hard {
		typ = ErrTypeHardBounce
		log.Warn("hard bounce; address suppressed", "smtp", f.Error())
	} else {
		log.Error("permanent SMTP rejection", "smtp", f.Error())
	}
	return res, temporal.NewNonRetryableApplicationError(fmt.Sprintf("send step %s to lead %s: %v", in.StepID, in.LeadID, f), typ, nil)
}

// emailOutcome is what a send's result says for the metrics; "" for a lead that no longer
// exists, which is no email's fate.
func emailOutcome(res SendResult, err error) metrics.EmailOutcome {
	switch res.Status {
	case StatusSent:
		return metrics.EmailSent
	case StatusAlreadySent:
		return metrics.EmailAlreadySent
	case StatusSuppressed:
		return metrics.EmailSuppressed
	case StatusUnsubscribed:
		return metrics.EmailUnsubscribed
	case StatusPaused:
		return metrics.EmailPaused
	case StatusHeldOut:
		return metrics.EmailHeldOut
	case StatusSkipped:
		return metrics.EmailSkipped
	}
	if err == nil {
		return ""
	}
	var app *temporal.ApplicationError
	if errors.As(err, &app) {
		switch app.Type() {
		case ErrTypeHardBounce:
			return metrics.EmailHardBounce
		case ErrTypeRejected:
			return metrics.EmailRejected
		case ErrTypeBadTemplate:
			return metrics.EmailBadTemplate
		case ErrTypeUnknownLead:
			return ""
		}
	}
	// Anything else is retried: a temporary SMTP failure, the database out for a moment.
	return metrics.EmailTemporary
}

// track rewrites the email's links into signed click URLs, adds the open pixel, and records the
// links with the send, in the claim's transaction. The unsubscribe link stays as it is: a link
// scanner following it only reaches a confirmation page, and it must work without tracking.
func (a *Email) track(ctx context.Context, claim *db.Claim, sendID [16]byte, html, text, unsubscribeURL string) (string, string, error) {
	keys, base := a.Tracking.Keys, a.Tracking.BaseURL
	clickURL := func(i int) string {
		return base + "/t/c/" + keys.Sign(track.Token{Kind: track.KindClick, SendID: sendID, Link: i})
	}
	pixel := base + "/t/o/" + keys.Sign(track.Token{Kind: track.KindOpen, SendID: sendID})
	outHTML, outText, links := track.Rewrite(html, text, clickURL, pixel)
	var keep []db.Link
	for _, l := range links {
		if l.URL == unsubscribeURL {
			outHTML = strings.ReplaceAll(outHTML, clickURL(l.Index), unsubscribeURL)
			outText = strings.ReplaceAll(outText, clickURL(l.Index), unsubscribeURL)
			continue
		}
		keep = append(keep, db.Link{Index: l.Index, URL: l.URL, Tag: l.Tag})
	}
	if err := claim.RecordLinks(ctx, keep); err != nil {
		return "", "", err
	}
	return outHTML, outText, nil
}

func (a *Email) afterAccepted(ctx context.Context, in SendInput) error {
	if a.AfterAccepted == nil {
		return nil
	}
	return a.AfterAccepted(ctx, in)
}

func (a *Email) logger() *slog.Logger {
	if a.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return a.Log
}

// heartbeat records an activity heartbeat every interval until stop is called, also after a
// cancellation: the send then ends on its own and reports what really happened. Outside an
// activity (a unit test calling the method directly) it does nothing.
func heartbeat(ctx context.Context, every time.Duration) (stop func()) {
	if !activity.IsActivity(ctx) {
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				activity.RecordHeartbeat(ctx)
			}
		}
	}()
	return func() { close(done) }
}

func (a *Email) renderer() *render.Renderer {
	if a.Live != nil {
		return a.Live.Current().Renderer
	}
	return a.Renderer
}

func (a *Email) consent() *sequence.ConsentPolicy {
	if a.Live != nil {
		return a.Live.Current().Catalog.Consent
	}
	return a.Consent
}

// beforeClaim decides what needs no claim: a paused step holds the lead, attribute conditions
// that do not hold skip the step. done is true when the send ends here with res.
func (a *Email) beforeClaim(ctx context.Context, in SendInput) (res SendResult, done bool, err error) {
	fail := func(err error) (SendResult, bool, error) {
		return SendResult{}, true, fmt.Errorf("send step %s of %s to lead %s: %w", in.StepID, in.SequenceID, in.LeadID, err)
	}
	if in.Pausable {
		paused, err := a.Store.Paused(ctx, in.SequenceID, in.StepID)
		if err != nil {
			return fail(err)
		}
		if paused {
			if err := a.Store.HoldSend(ctx, in.LeadID, in.SequenceID, in.StepID); errors.Is(err, db.ErrNotFound) {
				return SendResult{}, true, unknownLead(in.LeadID, err)
			} else if err != nil {
				return fail(err)
			}
			return SendResult{Status: StatusPaused}, true, nil
		}
		if in.Released {
			if _, err := a.Store.ReleaseHeld(ctx, in.LeadID, in.SequenceID, in.StepID); err != nil {
				return fail(err)
			}
		}
	}
	if len(in.Attributes) > 0 && !in.Holdout {
		lead, err := a.Store.Lead(ctx, in.LeadID)
		if errors.Is(err, db.ErrNotFound) {
			return SendResult{}, true, unknownLead(in.LeadID, err)
		}
		if err != nil {
			return fail(err)
		}
		if !(sequence.Condition{Attributes: in.Attributes}).AttributesHold(lead.Attributes) {
			return SendResult{Status: StatusSkipped, Reason: "attributes"}, true, nil
		}
	}
	return SendResult{}, false, nil
}

// attempt is the activity's attempt number, 0 outside an activity (a test calling the method).
func attempt(ctx context.Context) int32 {
	if !activity.IsActivity(ctx) {
		return 0
	}
	return activity.GetInfo(ctx).Attempt
}
