package bounce

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Events is what a JSON webhook body said.
type Events struct {
	// Source names the format: tend, ses, sns, sendgrid, postmark or mailgun.
	Source string
	// Reports holds one report per recipient and event. Events that say nothing about failure
	// (a delivery, an open) are KindUnknown.
	Reports []Report
	// ConfirmURL is set for an Amazon SNS subscription confirmation: a person opens it once to
	// start the subscription (tend does not fetch URLs named in requests).
	ConfirmURL string
}

// ErrUnknownJSON is wrapped by ParseEvents' error when the body is JSON in no known shape.
var ErrUnknownJSON = errors.New(`not a known event format: expected {"events":[…]} (tend's own), or an Amazon SES/SNS, SendGrid, Postmark or Mailgun event`)

// ParseEvents reads bounce and complaint events posted as JSON, in tend's own format or as one of
// the mail providers below sends them, into Reports:
//
//   - tend: {"events":[{"type":"bounce","recipient":"a@example.com","bounce_type":"hard",
//     "status":"5.1.1","message_id":"<…>","diagnostic":"…"}]}; type is bounce, complaint or
//     delayed; a bounce needs a status or a bounce_type (hard or soft).
//   - Amazon SES notifications and event publishing (Bounce, Complaint), bare or inside an SNS
//     message.
//   - SendGrid's event webhook (bounce, blocked, dropped, deferred, spamreport).
//   - Postmark's bounce and spam complaint webhooks.
//   - Mailgun's webhooks (failed, complained).
//
// A provider's own message id is not tend's; where the provider also reports the Message-ID
// header tend set (SES, SendGrid, Mailgun), that is used.
func ParseEvents(body []byte) (Events, error) {
	body = bytes.TrimSpace(body)
	if len(body) == 0 || (body[0] != '{' && body[0] != '[') {
		return Events{}, fmt.Errorf("%w: the body is not a JSON object or array", ErrUnknownJSON)
	}
	if body[0] == '[' {
		return parseSendGrid(body)
	}
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(body, &probe); err != nil {
		return Events{}, fmt.Errorf("invalid JSON: %v", err)
	}
	switch {
	case probe["TopicArn"] != nil && probe["Type"] != nil:
		return parseSNS(body)
	case probe["mail"] != nil && (probe["notificationType"] != nil || probe["eventType"] != nil):
		return parseSES(body, "ses")
	case probe["RecordType"] != nil:
		return parsePostmark(body)
	case probe["event-data"] != nil:
		return parseMailgun(body)
	case probe["events"] != nil:
		return parseTend(body)
	}
	return Events{}, ErrUnknownJSON
}

// tendEvent is one event of tend's own format.
type tendEvent struct {
	Type       string `json:"type"`
	Recipient  string `json:"recipient"`
	BounceType string `json:"bounce_type"`
	Status     string `json:"status"`
	MessageID  string `json:"message_id"`
	Diagnostic string `json:"diagnostic"`
	Feedback   string `json:"feedback_type"`
}

func parseTend(body []byte) (Events, error) {
	var in struct {
		Events []tendEvent `json:"events"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		return Events{}, fmt.Errorf("events: %v", err)
	}
	if len(in.Events) == 0 {
		return Events{}, errors.New("events: empty")
	}
	out := Events{Source: "tend"}
	for i, e := range in.Events {
		r := Report{Recipient: address(e.Recipient), Diagnostic: clip(e.Diagnostic), MessageID: messageID(e.MessageID),
			FeedbackType: e.Feedback}
		if r.Recipient == "" {
			return Events{}, fmt.Errorf("events[%d].recipient: an email address is required", i)
		}
		if e.Status != "" {
			if !enhancedStatus.MatchString(e.Status) {
				return Events{}, fmt.Errorf("events[%d].status: %q is not an enhanced status code like 5.1.1", i, e.Status)
			}
			r.Status = e.Status
		}
		switch e.Type {
		case "bounce":
			switch e.BounceType {
			case "hard":
				r.Kind = KindHard
				if r.Status != "" && classify("failed", r.Status) != KindHard {
					r.Kind = classify("failed", r.Status)
				}
			case "soft":
				r.Kind = KindSoft
			case "":
				if r.Status == "" {
					return Events{}, fmt.Errorf("events[%d]: a bounce needs a status (5.1.1) or a bounce_type (hard or soft)", i)
				}
				r.Kind = classify("failed", r.Status)
			default:
				return Events{}, fmt.Errorf("events[%d].bounce_type: %q is not hard or soft", i, e.BounceType)
			}
			r.Action = "failed"
		case "complaint":
			r.Kind = KindComplaint
		case "delayed":
			r.Kind, r.Action = KindDelayed, "delayed"
		default:
			return Events{}, fmt.Errorf("events[%d].type: %q is not bounce, complaint or delayed", i, e.Type)
		}
		out.Reports = append(out.Reports, r)
	}
	return out, nil
}

// sesMessage is an Amazon SES bounce or complaint notification (or event publishing record).
type sesMessage struct {
	NotificationType string `json:"notificationType"`
	EventType        string `json:"eventType"`
	Bounce           *struct {
		BounceType        string `json:"bounceType"`
		BounceSubType     string `json:"bounceSubType"`
		BouncedRecipients []struct {
			EmailAddress   string `json:"emailAddress"`
			Action         string `json:"action"`
			Status         string `json:"status"`
			DiagnosticCode string `json:"diagnosticCode"`
		} `json:"bouncedRecipients"`
	} `json:"bounce"`
	Complaint *struct {
		ComplainedRecipients []struct {
			EmailAddress string `json:"emailAddress"`
		} `json:"complainedRecipients"`
		ComplaintFeedbackType string `json:"complaintFeedbackType"`
	} `json:"complaint"`
	Mail struct {
		CommonHeaders struct {
			MessageID string `json:"messageId"`
		} `json:"commonHeaders"`
		Headers []struct {
			Name  string `json:"name"`
			Value string `json:"value"`
		} `json:"headers"`
	} `json:"mail"`
}

func parseSES(body []byte, source string) (Events, error) {
	var m sesMessage
	if err := json.Unmarshal(body, &m); err != nil {
		return Events{}, fmt.Errorf("SES notification: %v", err)
	}
	msgID := m.Mail.CommonHeaders.MessageID
	for _, h := range m.Mail.Headers {
		if strings.EqualFold(h.Name, "Message-ID") {
			msgID = h.Value
		}
	}
	out := Events{Source: source}
	kind := m.NotificationType
	if kind == "" {
		kind = m.EventType
	}
	switch {
	case kind == "Bounce" && m.Bounce != nil:
		for _, rcpt := range m.Bounce.BouncedRecipients {
			r := Report{Recipient: address(rcpt.EmailAddress), Action: "failed", MessageID: messageID(msgID),
				Diagnostic: clip(diagnostic(rcpt.DiagnosticCode))}
			r.Status = statusCode(rcpt.Status, r.Diagnostic)
			switch m.Bounce.BounceType {
			case "Permanent":
				r.Kind = KindHard
				if r.Status != "" {
					r.Kind = classify("failed", r.Status)
				}
			default: // Transient, Undetermined: SES gave up, but the address may work
				r.Kind = KindSoft
			}
			out.Reports = append(out.Reports, r)
		}
	case kind == "Complaint" && m.Complaint != nil:
		for _, rcpt := range m.Complaint.ComplainedRecipients {
			out.Reports = append(out.Reports, Report{Kind: KindComplaint, Recipient: address(rcpt.EmailAddress),
				MessageID: messageID(msgID), FeedbackType: m.Complaint.ComplaintFeedbackType})
		}
	default:
		out.Reports = append(out.Reports, Report{Kind: KindUnknown})
	}
	return out, nil
}

func parseSNS(body []byte) (Events, error) {
	var n struct {
		Type         string `json:"Type"`
		Message      string `json:"Message"`
		SubscribeURL string `json:"SubscribeURL"`
	}
	if err := json.Unmarshal(body, &n); err != nil {
		return Events{}, fmt.Errorf("SNS message: %v", err)
	}
	switch n.Type {
	case "SubscriptionConfirmation":
		return Events{Source: "sns", ConfirmURL: n.SubscribeURL}, nil
	case "Notification":
		ev, err := parseSES([]byte(n.Message), "sns")
		if err != nil {
			return Events{}, fmt.Errorf("SNS notification: %w", err)
		}
		return ev, nil
	}
	return Events{Source: "sns", Reports: []Report{{Kind: KindUnknown}}}, nil
}

func parseSendGrid(body []byte) (Events, error) {
	var evs []struct {
		Email  string `json:"email"`
		Event  string `json:"event"`
		Type   string `json:"type"`
		Status string `json:"status"`
		Reason string `json:"reason"`
		SMTPID string `json:"smtp-id"`
	}
	if err := json.Unmarshal(body, &evs); err != nil {
		return Events{}, fmt.Errorf("SendGrid events: %v", err)
	}
	out := Events{Source: "sendgrid"}
	for _, e := range evs {
		r := Report{Recipient: address(e.Email), MessageID: messageID(e.SMTPID), Diagnostic: clip(e.Reason)}
		r.Status = statusCode(e.Status, r.Diagnostic)
		switch e.Event {
		case "bounce":
			r.Action = "failed"
			switch {
			case e.Type == "blocked":
				r.Kind = KindSoft // refused for now, often on policy; the address may be fine
			case r.Status != "":
				r.Kind = classify("failed", r.Status)
			default:
				r.Kind = KindHard
			}
		case "dropped":
			// SendGrid did not try: the address is on its own suppression lists.
			switch e.Reason {
			case "Bounced Address", "Invalid":
				r.Kind = KindHard
			case "Spam Reporting Address":
				r.Kind = KindComplaint
			default:
				r.Kind = KindUnknown
			}
		case "deferred":
			r.Kind, r.Action = KindDelayed, "delayed"
		case "spamreport":
			r.Kind = KindComplaint
		default:
			r.Kind = KindUnknown
		}
		out.Reports = append(out.Reports, r)
	}
	if len(out.Reports) == 0 {
		return Events{}, errors.New("SendGrid events: empty array")
	}
	return out, nil
}

func parsePostmark(body []byte) (Events, error) {
	var e struct {
		RecordType string `json:"RecordType"`
		Type       string `json:"Type"`
		Email      string `json:"Email"`
		Details    string `json:"Details"`
	}
	if err := json.Unmarshal(body, &e); err != nil {
		return Events{}, fmt.Errorf("event from Postmark: %v", err)
	}
	// Postmark's MessageID is its own, not the Message-ID header: match by recipient.
	r := Report{Recipient: address(e.Email), Diagnostic: clip(e.Details)}
	switch {
	case e.RecordType == "SpamComplaint" || e.Type == "SpamComplaint":
		r.Kind = KindComplaint
	case e.RecordType != "Bounce":
		r.Kind = KindUnknown
	default:
		r.Action = "failed"
		switch e.Type {
		case "HardBounce", "BadEmailAddress", "ManuallyDeactivated":
			r.Kind, r.Status = KindHard, "5.1.1"
		case "SoftBounce", "Transient", "DnsError", "ChallengeVerification":
			r.Kind = KindSoft
		case "Blocked", "ContentRelated", "SpamNotification", "VirusNotification":
			r.Kind, r.Status = KindSoft, "5.7.1" // refused on policy or content: not the address's fault
		default:
			r.Kind = KindUnknown
		}
	}
	return Events{Source: "postmark", Reports: []Report{r}}, nil
}

func parseMailgun(body []byte) (Events, error) {
	var e struct {
		Data struct {
			Event          string `json:"event"`
			Severity       string `json:"severity"`
			Recipient      string `json:"recipient"`
			DeliveryStatus struct {
				Code         json.Number `json:"code"`
				EnhancedCode string      `json:"enhanced-code"`
				Message      string      `json:"message"`
				Description  string      `json:"description"`
			} `json:"delivery-status"`
			Message struct {
				Headers struct {
					MessageID string `json:"message-id"`
				} `json:"headers"`
			} `json:"message"`
		} `json:"event-data"`
	}
	if err := json.Unmarshal(body, &e); err != nil {
		return Events{}, fmt.Errorf("event from Mailgun: %v", err)
	}
	d := e.Data
	r := Report{Recipient: address(d.Recipient), MessageID: messageID(d.Message.Headers.MessageID)}
	diag := d.DeliveryStatus.Message
	if diag == "" {
		diag = d.DeliveryStatus.Description
	}
	r.Diagnostic = clip(diag)
	r.Status = statusCode(d.DeliveryStatus.EnhancedCode, r.Diagnostic)
	switch d.Event {
	case "failed":
		r.Action = "failed"
		if d.Severity != "permanent" {
			r.Kind, r.Action = KindDelayed, "delayed" // Mailgun retries temporary failures itself
			break
		}
		switch {
		case r.Status != "":
			r.Kind = classify("failed", r.Status)
		default:
			code, _ := strconv.Atoi(d.DeliveryStatus.Code.String())
			if code >= 400 && code < 500 {
				r.Kind = KindSoft
			} else {
				r.Kind = KindHard
			}
		}
	case "complained":
		r.Kind = KindComplaint
	default:
		r.Kind = KindUnknown
	}
	return Events{Source: "mailgun", Reports: []Report{r}}, nil
}

// clip collapses a provider's diagnostic text and trims it to MaxDiagnostic bytes.
func clip(s string) string { return truncate(collapseSpace(strings.TrimSpace(s)), MaxDiagnostic) }

var enhancedStatus = regexp.MustCompile(`^[245]\.\d{1,3}\.\d{1,3}$`)
