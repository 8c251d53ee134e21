package bounce_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tendhq/tend/internal/bounce"
)

// want is one report expected from a provider's JSON, in order.
type want struct {
	kind      bounce.Kind
	recipient string
	status    string
	messageID string
	policy    bool
}

// Each provider's payload, shaped as the provider documents and sends it, classifies as a person
// reading it would: a bad address is hard, a full mailbox or a block is soft (a block as a policy
// rejection that does not count against the person), a spam report is a complaint, retries and
// deliveries change nothing.
func TestProviderEvents(t *testing.T) {
	cases := []struct {
		file   string
		source string
		want   []want
	}{
		{"ses_bounce_permanent.json", "ses", []want{
			{kind: bounce.KindHard, recipient: "jane.doe@example.org", status: "5.1.1", messageID: "<0d6b1a52-7c1e-4f0e-9a8d-3f1b2c4d5e6f@acme.test>"}}},
		{"sns_ses_complaint.json", "sns", []want{
			{kind: bounce.KindComplaint, recipient: "sam@example.net", messageID: "<7a1b2c3d-0000-4000-8000-000000000001@acme.test>"}}},
		{"sendgrid_events.json", "sendgrid", []want{
			{kind: bounce.KindUnknown, recipient: "ok@example.com"},
			{kind: bounce.KindHard, recipient: "nobody@example.com", status: "5.1.1", messageID: "<11111111-0000-4000-8000-000000000002@acme.test>"},
			{kind: bounce.KindSoft, recipient: "blocked@example.com", status: "5.7.1", policy: true},
			{kind: bounce.KindComplaint, recipient: "angry@example.com"},
			{kind: bounce.KindHard, recipient: "gone@example.com"},
			{kind: bounce.KindDelayed, recipient: "later@example.com"}}},
		{"postmark_hard_bounce.json", "postmark", []want{{kind: bounce.KindHard, recipient: "zaphod@example.com", status: "5.1.1"}}},
		{"postmark_soft_bounce.json", "postmark", []want{{kind: bounce.KindSoft, recipient: "full@example.com"}}},
		{"postmark_spam_complaint.json", "postmark", []want{{kind: bounce.KindComplaint, recipient: "john@example.com"}}},
		{"mailgun_failed_permanent.json", "mailgun", []want{
			{kind: bounce.KindHard, recipient: "alice@example.com", status: "5.1.1", messageID: "<20261120101500.1.ABCDEF@acme.test>"}}},
		{"mailgun_failed_temporary.json", "mailgun", []want{{kind: bounce.KindDelayed, recipient: "alice@example.com", status: "4.2.2"}}},
		{"mailgun_complained.json", "mailgun", []want{{kind: bounce.KindComplaint, recipient: "bob@example.com"}}},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join("testdata", "json", c.file))
			require.NoError(t, err)
			ev, err := bounce.ParseEvents(raw)
			require.NoError(t, err)
			assert.Equal(t, c.source, ev.Source)
			require.Len(t, ev.Reports, len(c.want))
			for i, w := range c.want {
				r := ev.Reports[i]
				assert.Equal(t, w.kind, r.Kind, "report %d", i)
				assert.Equal(t, w.recipient, r.Recipient, "report %d", i)
				if w.status != "" {
					assert.Equal(t, w.status, r.Status, "report %d", i)
				}
				if w.messageID != "" {
					assert.Equal(t, w.messageID, r.MessageID, "report %d", i)
				}
				assert.Equal(t, w.policy, r.PolicyRejection(), "report %d", i)
			}
		})
	}
}

func TestSNSSubscriptionConfirmationIsNotFetched(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("testdata", "json", "sns_subscription_confirmation.json"))
	require.NoError(t, err)
	ev, err := bounce.ParseEvents(raw)
	require.NoError(t, err)
	assert.Empty(t, ev.Reports)
	assert.Contains(t, ev.ConfirmURL, "Action=ConfirmSubscription")
}

func TestTendEvents(t *testing.T) {
	ev, err := bounce.ParseEvents([]byte(`{"events":[
		{"type":"bounce","recipient":" A@Example.com ","status":"5.1.1","message_id":"abc@acme.test","diagnostic":"550  user\n unknown"},
		{"type":"bounce","recipient":"b@example.com","bounce_type":"soft"},
		{"type":"bounce","recipient":"c@example.com","bounce_type":"hard","status":"5.2.2"},
		{"type":"complaint","recipient":"d@example.com","feedback_type":"abuse"},
		{"type":"delayed","recipient":"e@example.com"}]}`))
	require.NoError(t, err)
	require.Len(t, ev.Reports, 5)
	assert.Equal(t, bounce.Report{Kind: bounce.KindHard, Recipient: "a@example.com", Status: "5.1.1", Action: "failed",
		MessageID: "<abc@acme.test>", Diagnostic: "550 user unknown"}, ev.Reports[0])
	assert.Equal(t, bounce.KindSoft, ev.Reports[1].Kind)
	assert.Equal(t, bounce.KindSoft, ev.Reports[2].Kind, "a full mailbox is soft whatever the sender called it")
	assert.Equal(t, bounce.KindComplaint, ev.Reports[3].Kind)
	assert.Equal(t, "abuse", ev.Reports[3].FeedbackType)
	assert.Equal(t, bounce.KindDelayed, ev.Reports[4].Kind)
}

// Bad input names what is wrong.
func TestBadEvents(t *testing.T) {
	for body, msg := range map[string]string{
		`{"events":[]}`: "events: empty",
		`{"events":[{"type":"bounce","recipient":"a@example.com"}]}`:                     "events[0]: a bounce needs a status",
		`{"events":[{"type":"bounce","recipient":"a@example.com","bounce_type":"big"}]}`: `events[0].bounce_type: "big" is not hard or soft`,
		`{"events":[{"type":"open","recipient":"a@example.com"}]}`:                       `events[0].type: "open" is not bounce, complaint or delayed`,
		`{"events":[{"type":"complaint"}]}`:                                              "events[0].recipient: an email address is required",
		`{"events":[{"type":"bounce","recipient":"a@example.com","status":"550"}]}`:      `events[0].status: "550" is not an enhanced status code`,
		`{"events":[{"type":"complaint","recipient":"a@example.com","extra":1}]}`:        `unknown field "extra"`,
		`{"hello":"world"}`: "not a known event format",
		`{"events":`:        "invalid JSON",
		`[]`:                "SendGrid events: empty array",
	} {
		_, err := bounce.ParseEvents([]byte(body))
		require.Error(t, err, body)
		assert.Contains(t, err.Error(), msg, body)
	}
}
