package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tendhq/tend/internal/api"
	"github.com/tendhq/tend/internal/mailcapture"
	"github.com/tendhq/tend/workflows"
)

// dsn is a Postfix-style delivery status notification for a hard bounce.
func dsn(verp, recipient, messageID string) string {
	return strings.ReplaceAll(`Return-Path: <>
To: `+verp+`
From: MAILER-DAEMON@mx.example.net (Mail Delivery System)
Subject: Undelivered Mail Returned to Sender
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="b1"

--b1
Content-Type: text/plain

<`+recipient+`>: host mx.example.com said: 550 5.1.1 no such user

--b1
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.net

Final-Recipient: rfc822; `+recipient+`
Original-Recipient: rfc822; `+recipient+`
Action: failed
Status: 5.1.1
Diagnostic-Code: smtp; 550 5.1.1 <`+recipient+`>: Recipient address rejected: User unknown

--b1
Content-Type: text/rfc822-headers

Message-ID: `+messageID+`
To: `+recipient+`
Subject: something

--b1--
`, "\n", "\r\n")
}

// arf is a feedback report (complaint) in the Yahoo style.
func arf(recipient, messageID string) string {
	return strings.ReplaceAll(`From: feedback@arf.mail.example
To: abuse@acme.test
Subject: FW: complaint
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report; boundary="b2"

--b2
Content-Type: text/plain

This is an email abuse report.

--b2
Content-Type: message/feedback-report

Feedback-Type: abuse
User-Agent: Yahoo!-Mail-Feedback/2.0
Version: 1
Original-Rcpt-To: `+recipient+`

--b2
Content-Type: message/rfc822

Message-ID: `+messageID+`
From: hello@acme.test
To: `+recipient+`
Subject: something

body
--b2--
`, "\n", "\r\n")
}

// captureAda captures ada() through the API and returns her lead id and first email, once the
// send is recorded as sent (so that its links and bounces refer to a known send).
func (s *stack) captureAda() (string, mailcapture.Message) {
	s.t.Helper()
	code, body := s.post("/api/v1/leads", ada())
	require.Equal(s.t, 201, code, "%v", body)
	leadID := body["id"].(string)
	m := s.waitMessages(1, 30*time.Second, 0)[0]
	s.sentRecorded(leadID)
	return leadID, m
}

// sentRecorded waits until the lead's first send is committed as sent (a moment after the SMTP
// server has the message); a real bounce or complaint never arrives sooner.
func (s *stack) sentRecorded(leadID string) {
	s.t.Helper()
	eventually(s.t, 10*time.Second, func() bool {
		sends, err := s.store.Sends(context.Background(), leadID)
		return err == nil && len(sends) > 0 && sends[0].Status == "sent"
	}, "send recorded")
}

// webhook posts raw mail to the bounce webhook, signed with secret.
func (s *stack) webhook(body, secret string) (int, map[string]any) {
	s.t.Helper()
	return s.postWebhook(body, "message/rfc822", func(req *http.Request) {
		ts, sig := api.SignWebhook(secret, time.Now(), []byte(body))
		req.Header.Set("X-Tend-Timestamp", ts)
		req.Header.Set("X-Tend-Signature", sig)
	})
}

func (s *stack) postWebhook(body, contentType string, authenticate func(*http.Request)) (int, map[string]any) {
	s.t.Helper()
	req, err := http.NewRequest(http.MethodPost, s.api.URL+"/api/v1/webhooks/bounces", strings.NewReader(body))
	require.NoError(s.t, err)
	authenticate(req)
	req.Header.Set("Content-Type", contentType)
	return do(s.t, req)
}

// A DSN that arrives after the message was accepted suppresses the address: the send is found
// through the VERP envelope sender, and no further email goes out.
func TestDSNAfterSendingSuppresses(t *testing.T) {
	t.Parallel()
	s := setup(t, options{})
	leadID, m := s.captureAda()
	require.True(t, strings.HasPrefix(m.From, "bounce+") && strings.HasSuffix(m.From, "@acme.test"), "VERP envelope sender, got %q", m.From)
	s.sentRecorded(leadID)

	code, bad := s.webhook(dsn(m.From, "ada.lovelace@example.com", m.MessageID), "wrong secret")
	assert.Equal(t, 401, code, "%v", bad)
	_, suppressed, err := s.store.Suppressed(context.Background(), "ada.lovelace@example.com")
	require.NoError(t, err)
	assert.False(t, suppressed, "a forged webhook changes nothing")

	code, res := s.webhook(dsn(m.From, "ada.lovelace@example.com", m.MessageID), webhookSecret)
	require.Equal(t, 200, code, "%v", res)
	assert.Equal(t, "hard", res["kind"])
	assert.Equal(t, leadID, res["lead_id"])
	assert.Equal(t, true, res["suppressed"])
	reason, suppressed, err := s.store.Suppressed(context.Background(), "ada.lovelace@example.com")
	require.NoError(t, err)
	assert.True(t, suppressed)
	assert.Equal(t, "hard_bounce", reason)
	eventually(t, 30*time.Second, func() bool { return s.leadState(leadID).ExitReason == "suppressed" }, "the series stops at the next step")
	assert.Equal(t, 1, len(s.inbox.Messages()), "nothing more was sent")
	// The bounce counts against the score.
	eventually(t, 10*time.Second, func() bool { return strings.Contains(fmt.Sprint(s.lead(leadID)["breakdown"]), "hard-bounce") }, "scored")
}

// A complaint through the webhook unsubscribes the person and suppresses the address.
func TestComplaintWebhookUnsubscribes(t *testing.T) {
	t.Parallel()
	s := setup(t, options{})
	leadID, m := s.captureAda()
	code, res := s.webhook(arf("ada.lovelace@example.com", m.MessageID), webhookSecret)
	require.Equal(t, 200, code, "%v", res)
	assert.Equal(t, "complaint", res["kind"])
	assert.Equal(t, true, res["unsubscribed"])
	assert.NotNil(t, s.lead(leadID)["unsubscribed_at"])
	eventually(t, 30*time.Second, func() bool { return s.leadState(leadID).ExitReason == "unsubscribed" }, "the workflow stops")
	code, _ = s.webhook("hello, just a reply", webhookSecret)
	assert.Equal(t, 422, code, "not a report")
}

// providerWebhook posts a provider's JSON event the way a provider does: with the secret as the
// password of HTTP Basic credentials instead of a body signature.
func (s *stack) providerWebhook(body, password string) (int, map[string]any) {
	s.t.Helper()
	return s.postWebhook(body, "application/json", func(req *http.Request) { req.SetBasicAuth("sendgrid", password) })
}

// A mail provider's bounce event (SendGrid's shape, naming the Message-ID tend set) suppresses the
// address and stops the series, like a DSN; the provider's spam report then unsubscribes. Wrong
// credentials change nothing.
func TestProviderBounceEvents(t *testing.T) {
	t.Parallel()
	s := setup(t, options{})
	leadID, m := s.captureAda()
	event := func(kind string) string {
		return fmt.Sprintf(`[{"email":"Ada.Lovelace@example.com","timestamp":1763630001,"smtp-id":%q,"event":%q,"type":"bounce",
			"status":"5.1.1","reason":"550 5.1.1 The email account that you tried to reach does not exist.",
			"sg_event_id":"e1","sg_message_id":"14c5d75ce93.dfd.64b469.filter0001.1"}]`, m.MessageID, kind)
	}

	code, res := s.providerWebhook(event("bounce"), "wrong secret")
	assert.Equal(t, 401, code, "%v", res)
	_, suppressed, err := s.store.Suppressed(context.Background(), "ada.lovelace@example.com")
	require.NoError(t, err)
	assert.False(t, suppressed, "a forged event changes nothing")

	code, res = s.providerWebhook(event("bounce"), webhookSecret)
	require.Equal(t, 200, code, "%v", res)
	assert.Equal(t, "sendgrid", res["source"])
	results := res["results"].([]any)
	require.Len(t, results, 1)
	assert.Equal(t, map[string]any{"kind": "hard", "lead_id": leadID, "suppressed": true, "unsubscribed": false}, results[0])
	reason, suppressed, err := s.store.Suppressed(context.Background(), "ada.lovelace@example.com")
	require.NoError(t, err)
	assert.True(t, suppressed)
	assert.Equal(t, "hard_bounce", reason)
	eventually(t, 30*time.Second, func() bool { return s.leadState(leadID).ExitReason == "suppressed" }, "the series stops")

	code, res = s.providerWebhook(event("spamreport"), webhookSecret)
	require.Equal(t, 200, code, "%v", res)
	assert.Equal(t, true, res["results"].([]any)[0].(map[string]any)["unsubscribed"])
	assert.NotNil(t, s.lead(leadID)["unsubscribed_at"])

	code, res = s.providerWebhook(`{"hello":"world"}`, webhookSecret)
	assert.Equal(t, 422, code)
	assert.Contains(t, res["error"], "not a known event format")
	assert.Len(t, s.inbox.Messages(), 1, "nothing more was sent")
}

// Export returns everything the database holds for the lead; erasure leaves no trace of the
// address or the name in any table or in the workflow's state, and a re-import is never mailed.
func TestExportAndErasure(t *testing.T) {
	t.Parallel()
	s := setup(t, options{})
	leadID, _ := s.captureAda()
	eventually(t, 30*time.Second, func() bool { return s.score(leadID) > 0 }, "scored")

	req, _ := http.NewRequest(http.MethodGet, s.api.URL+"/api/v1/leads/"+leadID+"/export", nil)
	req.Header.Set("Authorization", "Bearer "+apiKey)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode, "%s", raw)
	var export map[string]any
	require.NoError(t, json.Unmarshal(raw, &export))
	assert.Equal(t, "ada.lovelace@example.com", export["lead"].(map[string]any)["email"])
	for table, key := range map[string]string{"sends": "sends", "events": "events", "consents": "consents", "captures": "captures"} {
		var n int
		require.NoError(t, s.store.Pool().QueryRow(context.Background(), `SELECT count(*) FROM `+table+` WHERE lead_id = $1`, leadID).Scan(&n))
		assert.Len(t, export[key], n, table)
		assert.NotZero(t, n, table)
	}

	req, _ = http.NewRequest(http.MethodDelete, s.api.URL+"/api/v1/leads/"+leadID, strings.NewReader(`{"reason":"gdpr request"}`))
	req.Header.Set("Authorization", "Bearer "+apiKey)
	req.Header.Set("Content-Type", "application/json")
	code, out := do(t, req)
	require.Equal(t, 200, code, "%v", out)

	// No table holds the address or the name any more.
	rows, err := s.store.Pool().Query(context.Background(), `SELECT table_name, column_name FROM information_schema.columns
		WHERE table_schema = 'public' AND data_type IN ('text', 'jsonb', 'ARRAY', 'character varying')`)
	require.NoError(t, err)
	type col struct{ table, column string }
	var cols []col
	for rows.Next() {
		var c col
		require.NoError(t, rows.Scan(&c.table, &c.column))
		cols = append(cols, c)
	}
	require.NotEmpty(t, cols)
	for _, c := range cols {
		var n int
		q := fmt.Sprintf(`SELECT count(*) FROM %q WHERE %q::text ILIKE '%%ada.lovelace%%' OR %q::text ILIKE '%%Ada Lovelace%%'`, c.table, c.column, c.column)
		require.NoError(t, s.store.Pool().QueryRow(context.Background(), q).Scan(&n), q)
		assert.Zero(t, n, "%s.%s still holds the person", c.table, c.column)
	}
	// The workflow was stopped, and its state never held personal data.
	eventually(t, 10*time.Second, func() bool {
		d, err := s.client.DescribeWorkflowExecution(context.Background(), workflows.LeadWorkflowID(leadID), "")
		return err == nil && d.WorkflowExecutionInfo.GetStatus().String() == "Canceled"
	}, "workflow cancelled")
	st, err := json.Marshal(s.leadState(leadID))
	require.NoError(t, err)
	// (Ids are hex and may well contain "ada": look for the name and the address.)
	assert.NotContains(t, strings.ToLower(string(st)), "lovelace")
	assert.NotContains(t, strings.ToLower(string(st)), "example.com")
	hist := s.historyText(leadID)
	assert.NotContains(t, strings.ToLower(hist), "lovelace", "no trace in the workflow history, payloads included")

	// Re-importing the address makes a new lead that is never mailed.
	before := len(s.inbox.Messages())
	code, again := s.post("/api/v1/leads", ada())
	require.Equal(t, 201, code)
	newID := again["id"].(string)
	eventually(t, 30*time.Second, func() bool { return s.leadState(newID).ExitReason == "suppressed" }, "suppressed at the first step")
	assert.Equal(t, before, len(s.inbox.Messages()))
	var erasures int
	require.NoError(t, s.store.Pool().QueryRow(context.Background(), `SELECT count(*) FROM erasures`).Scan(&erasures))
	assert.Equal(t, 1, erasures)
}

// Retention folds old raw events into daily counts: the lead's score is the same after a rescore.
func TestRetentionKeepsTheScore(t *testing.T) {
	t.Parallel()
	s := setup(t, options{})
	code, body := s.post("/api/v1/leads", ada())
	require.Equal(t, 201, code)
	leadID := body["id"].(string)
	code, res := s.post("/api/v1/events", map[string]any{"events": []map[string]any{
		{"id": "p1", "lead_id": leadID, "type": "page_view", "url": "https://acme.test/pricing", "tags": []string{"pricing"}},
		{"id": "w1", "lead_id": leadID, "type": "webinar_registration"},
	}})
	require.Equal(t, 200, code, "%v", res)
	eventually(t, 30*time.Second, func() bool { return s.score(leadID) == 35 }, "scored: 5 fit + 5 e-book + 15 pricing + 10 webinar (got %v)", s.score(leadID))

	// Make the events old and purge everything received before yesterday.
	_, err := s.store.Pool().Exec(context.Background(), `UPDATE events SET received_at = now() - interval '400 days' WHERE lead_id = $1`, leadID)
	require.NoError(t, err)
	n, err := s.store.PurgeEvents(context.Background(), time.Now().Add(-24*time.Hour))
	require.NoError(t, err)
	assert.Equal(t, int64(3), n)
	s.app.Coalescer.Notify(leadID) // rescore from what is left
	rescores := s.leadState(leadID).Rescores
	eventually(t, 10*time.Second, func() bool { return s.leadState(leadID).Rescores > rescores }, "rescored")
	assert.Equal(t, 35.0, s.score(leadID), "the score survives the purge")
	var left int
	require.NoError(t, s.store.Pool().QueryRow(context.Background(), `SELECT count(*) FROM events WHERE lead_id = $1`, leadID).Scan(&left))
	assert.Zero(t, left)
}

// The mailto: form of List-Unsubscribe: the mail it produces, posted to the inbound webhook,
// unsubscribes the person.
func TestMailtoUnsubscribe(t *testing.T) {
	t.Parallel()
	s := setup(t, options{})
	leadID, m := s.captureAda()
	lu := m.Header.Get("List-Unsubscribe")
	i := strings.Index(lu, "<mailto:")
	require.GreaterOrEqual(t, i, 0, "a mailto in %q", lu)
	mailto := strings.TrimSuffix(lu[i+len("<mailto:"):], ">")
	addr, query, _ := strings.Cut(mailto, "?")
	subject := strings.ReplaceAll(strings.TrimPrefix(query, "subject="), "%20", " ")
	require.True(t, strings.HasPrefix(subject, "unsubscribe "), subject)
	mail := "From: ada.lovelace@example.com\r\nTo: " + addr + "\r\nSubject: " + subject + "\r\n\r\n\r\n"
	code, res := s.webhook(mail, webhookSecret)
	require.Equal(t, 200, code, "%v", res)
	assert.Equal(t, true, res["unsubscribed"])
	assert.NotNil(t, s.lead(leadID)["unsubscribed_at"])
	eventually(t, 30*time.Second, func() bool { return s.leadState(leadID).ExitReason == "unsubscribed" }, "the workflow stops")
	// A made-up token changes nothing, with the same 200.
	code, res = s.webhook("Subject: unsubscribe e2e.AAAA.BBBB\r\n\r\n", webhookSecret)
	assert.Equal(t, 200, code)
	assert.Equal(t, false, res["unsubscribed"])
}
