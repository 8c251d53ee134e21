package bounce_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tendhq/tend/internal/bounce"
)

// sample is what each file in testdata must parse to. Diagnostic is a substring to find.
type sample struct {
	file         string
	kind         bounce.Kind
	recipient    string
	status       string
	action       string
	messageID    string
	verpToken    string
	feedbackType string
	diagnostic   string
}

var samples = []sample{
	{
		file: "postfix_hard_511.eml", kind: bounce.KindHard, recipient: "jane.doe@example.org",
		status: "5.1.1", action: "failed", messageID: "<01JWQ3S8RZ4N7D2K9F6V5T3B1A@tend.example>",
		verpToken: "p7k2m9q4", diagnostic: "550 5.1.1 <Jane.Doe@example.org>: Recipient address rejected: User unknown in virtual mailbox table",
	},
	{
		file: "gmail_failure_511.eml", kind: bounce.KindHard, recipient: "nobody.here@gmail.com",
		status: "5.1.1", action: "failed", messageID: "<01JWQ4B2XG7M3P9C5H8N1K6D0E@tend.example>",
		verpToken: "g3h8x1z6", diagnostic: "550-5.1.1 The email account that you tried to reach does not exist.",
	},
	{
		file: "exchange_ndr_5110.eml", kind: bounce.KindHard, recipient: "jdoe@contoso.com",
		status: "5.1.10", action: "failed", messageID: "<01JWQ6C9M2T5V8B1X4Z7N0P3R6@tend.example>",
		verpToken: "e5w2r8t1", diagnostic: "550 5.1.10 RESOLVER.ADR.RecipientNotFound;",
	},
	{
		file: "postfix_soft_522.eml", kind: bounce.KindSoft, recipient: "marco.rossi@example.it",
		status: "5.2.2", action: "failed", messageID: "<01JWT1H4K8N2Q6S0V3X7Z1B5D9@tend.example>",
		verpToken: "f9d4c7b2", diagnostic: "552 5.2.2 <marco.rossi@example.it>: Mailbox full - quota exceeded",
	},
	{
		file: "postfix_giveup_422.eml", kind: bounce.KindSoft, recipient: "li.wei@example.cn",
		status: "4.2.2", action: "failed", messageID: "<01JWT1J0C3E6G9J2L5N8Q1S4U7@tend.example>",
		verpToken: "a1b2c3d4", diagnostic: "452 4.2.2 Mailbox full",
	},
	{
		file: "sendmail_delayed_447.eml", kind: bounce.KindDelayed, recipient: "priya@example.net",
		status: "4.4.7", action: "delayed", messageID: "<01JWQ5V7A0C3E6G9J2L5N8Q1S4@tend.example>",
		verpToken: "d3l4y7w2",
	},
	{
		file: "postfix_policy_571.eml", kind: bounce.KindSoft, recipient: "tom.baker@fabrikam.example",
		status: "5.7.1", action: "failed", messageID: "<01JWW0P2R5T8V1X4Z7B0D3F6H9@tend.example>",
		verpToken: "x2y5z8w1", diagnostic: "550 5.7.1 Service unavailable, Client host [203.0.113.7] blocked using Spamhaus.",
	},
	{
		file: "yahoo_arf_complaint.eml", kind: bounce.KindComplaint, recipient: "sally.jones@yahoo.com",
		messageID: "<01JWZ3M6P9R2T5V8X1Z4B7D0F3@tend.example>", verpToken: "y6h3j9k2", feedbackType: "abuse",
	},
	{
		file: "microsoft_jmrp_arf.eml", kind: bounce.KindComplaint, recipient: "kim.nguyen@outlook.com",
		messageID: "<01JX0A7C1E4G7J0L3N6Q9S2U5W@tend.example>", verpToken: "m1c2r3s4", feedbackType: "abuse",
	},
	{
		file: "exim_plain_bounce.eml", kind: bounce.KindHard, recipient: "gone.user@example.net",
		status: "5.1.1", messageID: "<01JXA2D5F8H1K4M7P0R3T6W9Y2@tend.example>",
		verpToken: "q8w4e6r2", diagnostic: "550 5.1.1 <gone.user@example.net>: Recipient address rejected",
	},
	{
		file: "qmail_failure_notice.eml", kind: bounce.KindHard, recipient: "ana.souza@example.com.br",
		status: "5.1.1", messageID: "<01JXC8F2H5K8M1P4R7T0W3Y6A9@tend.example>",
		verpToken: "n5b7v9c1", diagnostic: "Sorry, no mailbox here by that name. (#5.1.1)",
	},
}

func readSample(t testing.TB, name string) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", name))
	require.NoError(t, err)
	return raw
}

// lineEndings returns the sample as written and with its line endings swapped, since the same
// bounce may reach tend with CRLF (SMTP, most mailbox exports) or LF (a Maildir, a webhook).
func lineEndings(raw []byte) map[string][]byte {
	lf := bytes.ReplaceAll(raw, []byte("\r\n"), []byte("\n"))
	return map[string][]byte{"lf": lf, "crlf": bytes.ReplaceAll(lf, []byte("\n"), []byte("\r\n"))}
}

func TestParseSamples(t *testing.T) {
	t.Parallel()
	for _, s := range samples {
		for endings, raw := range lineEndings(readSample(t, s.file)) {
			t.Run(s.file+"/"+endings, func(t *testing.T) {
				t.Parallel()
				r, err := bounce.Parse(raw)
				require.NoError(t, err)
				assert.Equal(t, s.kind, r.Kind, "kind")
				assert.Equal(t, s.recipient, r.Recipient, "recipient")
				assert.Equal(t, s.status, r.Status, "status")
				assert.Equal(t, s.action, r.Action, "action")
				assert.Equal(t, s.messageID, r.MessageID, "message id")
				assert.Equal(t, s.verpToken, r.VERPToken, "verp token")
				assert.Equal(t, s.feedbackType, r.FeedbackType, "feedback type")
				assert.Contains(t, r.Diagnostic, s.diagnostic, "diagnostic")
				assert.LessOrEqual(t, len(r.Diagnostic), bounce.MaxDiagnostic)
				assert.NotContains(t, r.Diagnostic, "\n")
				assert.Equal(t, strings.HasPrefix(s.status, "5.7."), r.PolicyRejection(), "policy rejection")
			})
		}
	}
}

func TestParseNotAReport(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		raw    []byte
		reason string
	}{
		"reply from a person quoting a bounce": {readSample(t, "not_report_reply.eml"), "multipart/alternative"},
		"read receipt":                         {readSample(t, "not_report_read_receipt.eml"), `"disposition-notification"`},
		"empty":                                {nil, "empty message"},
		"blank lines":                          {[]byte("\r\n\r\n"), "empty message"},
		"no header fields":                     {[]byte("just some text\nwithout headers\n"), "no header fields"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, err := bounce.Parse(tt.raw)
			require.Error(t, err)
			assert.True(t, errors.Is(err, bounce.ErrNotAReport), "%v is ErrNotAReport", err)
			assert.Contains(t, err.Error(), tt.reason)
		})
	}
}

func TestParseReportEdges(t *testing.T) {
	t.Parallel()
	const head = "From: MAILER-DAEMON@mx.example.net\r\nTo: bounce+tok1@mail.tend.example\r\n" +
		"Content-Type: multipart/report; report-type=delivery-status; boundary=b\r\n\r\n" +
		"--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.net\r\n\r\n"
	tests := map[string]struct {
		recipients string
		want       bounce.Report
	}{
		"the failed recipient wins over a delayed one": {
			"Final-Recipient: rfc822; a@example.net\r\nAction: delayed\r\nStatus: 4.4.1\r\n\r\n" +
				"Final-Recipient: rfc822; b@example.net\r\nAction: failed\r\nStatus: 5.1.1\r\n",
			bounce.Report{Kind: bounce.KindHard, Recipient: "b@example.net", Status: "5.1.1", Action: "failed"},
		},
		"5.0.0 takes the diagnostic's code": {
			"Final-Recipient: rfc822; a@example.net\r\nAction: failed\r\nStatus: 5.0.0\r\n" +
				"Diagnostic-Code: smtp; 550 5.2.2 mailbox full\r\n",
			bounce.Report{Kind: bounce.KindSoft, Recipient: "a@example.net", Status: "5.2.2", Action: "failed",
				Diagnostic: "550 5.2.2 mailbox full"},
		},
		"a success DSN says nothing about failure": {
			"Final-Recipient: rfc822; a@example.net\r\nAction: delivered\r\nStatus: 2.0.0\r\n",
			bounce.Report{Kind: bounce.KindUnknown, Recipient: "a@example.net", Status: "2.0.0", Action: "delivered"},
		},
		"a missing action is classified by status": {
			"Final-Recipient: rfc822; a@example.net\r\nStatus: 5.1.2 (bad destination system)\r\n",
			bounce.Report{Kind: bounce.KindHard, Recipient: "a@example.net", Status: "5.1.2"},
		},
		"a 4.x.x that was not given up on is delayed": {
			"Final-Recipient: rfc822; a@example.net\r\nStatus: 4.4.1\r\n",
			bounce.Report{Kind: bounce.KindDelayed, Recipient: "a@example.net", Status: "4.4.1"},
		},
		"no status anywhere": {
			"Final-Recipient: rfc822; a@example.net\r\nAction: failed\r\n",
			bounce.Report{Kind: bounce.KindUnknown, Recipient: "a@example.net", Action: "failed"},
		},
		"a long diagnostic is cut": {
			"Final-Recipient: rfc822; a@example.net\r\nAction: failed\r\nStatus: 5.7.26\r\n" +
				"Diagnostic-Code: smtp; 550 5.7.26 " + strings.Repeat("é", 400) + "\r\n",
			bounce.Report{Kind: bounce.KindSoft, Recipient: "a@example.net", Status: "5.7.26", Action: "failed",
				Diagnostic: strings.TrimSpace(("550 5.7.26 " + strings.Repeat("é", 400))[:299])},
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			r, err := bounce.Parse([]byte(head + tt.recipients + "--b--\r\n"))
			require.NoError(t, err)
			tt.want.VERPToken = "tok1"
			assert.Equal(t, tt.want, r)
			assert.True(t, utf8.ValidString(r.Diagnostic))
		})
	}
}

func TestParseReportWithoutStatusPart(t *testing.T) {
	t.Parallel()
	// With the machine-readable part lost, the human text (quoted-printable here, base64 HTML
	// beside it) is all there is.
	raw := readSample(t, "exchange_ndr_5110.eml")
	raw = bytes.Replace(raw, []byte("Content-Type: message/delivery-status"), []byte("Content-Type: application/octet-stream"), 1)
	r, err := bounce.Parse(raw)
	require.NoError(t, err)
	assert.Equal(t, bounce.KindHard, r.Kind)
	assert.Equal(t, "5.1.10", r.Status)
	assert.Equal(t, "Remote server returned '550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient jdoe@contoso.com not found by SMTP address lookup'", r.Diagnostic)
	assert.Equal(t, "<01JWQ6C9M2T5V8B1X4Z7N0P3R6@tend.example>", r.MessageID)
	assert.Equal(t, "e5w2r8t1", r.VERPToken)

	html := bytes.Replace(raw, []byte("Content-Type: text/plain; charset=\"utf-8\""), []byte("Content-Type: image/gif"), 1)
	r, err = bounce.Parse(html)
	require.NoError(t, err)
	assert.Equal(t, "5.1.10", r.Status, "from the base64 HTML part")
}

func TestParserVERPLocalPart(t *testing.T) {
	t.Parallel()
	raw := readSample(t, "postfix_hard_511.eml")
	raw = bytes.ReplaceAll(raw, []byte("bounce+p7k2m9q4@"), []byte("rtn+p7k2m9q4@"))

	r, err := bounce.Parser{VERPLocalPart: "rtn"}.Parse(raw)
	require.NoError(t, err)
	assert.Equal(t, "p7k2m9q4", r.VERPToken)

	r, err = bounce.Parse(raw)
	require.NoError(t, err)
	assert.Empty(t, r.VERPToken, "the default local part does not match rtn+")
}

func TestVERP(t *testing.T) {
	t.Parallel()
	assert.Equal(t, "bounce+Ab3_x-9@mail.tend.example", bounce.VERPAddress("Ab3_x-9", "", "mail.tend.example"))
	assert.Equal(t, "rtn+t0k@example.com", bounce.VERPAddress("t0k", "rtn", "example.com"))

	tests := []struct {
		addr, localPart, token string
		ok                     bool
	}{
		{"bounce+Ab3_x-9@mail.tend.example", "bounce", "Ab3_x-9", true},
		{"<bounce+abc@mail.tend.example>", "", "abc", true},
		{`"Bounces" <Bounce+abc@Mail.Tend.Example>`, "bounce", "abc", true},
		{"rfc822; bounce+abc@mail.tend.example", "bounce", "abc", true},
		{"bounce+a+b@mail.tend.example", "bounce", "a+b", true},
		{"rtn+abc@mail.tend.example", "rtn", "abc", true},
		{"bounce+@mail.tend.example", "bounce", "", false},
		{"bounce@mail.tend.example", "bounce", "", false},
		{"bounces+abc@mail.tend.example", "bounce", "", false},
		{"xbounce+abc@mail.tend.example", "bounce", "", false},
		{"bounce+abc@", "bounce", "", false},
		{"bounce+abc", "bounce", "", false},
		{`"bounce+a b"@mail.tend.example`, "bounce", "", false},
		{"", "bounce", "", false},
	}
	for _, tt := range tests {
		token, ok := bounce.ParseVERP(tt.addr, tt.localPart)
		assert.Equal(t, tt.ok, ok, tt.addr)
		assert.Equal(t, tt.token, token, tt.addr)
	}

	for _, token := range []string{"p7k2m9q4", "AbC-_=", "0190a5c2-7f1e-7c3a-9d2b-5e8f1a2b3c4d"} {
		got, ok := bounce.ParseVERP(bounce.VERPAddress(token, "bounce", "mail.tend.example"), "bounce")
		assert.True(t, ok, token)
		assert.Equal(t, token, got, "round trip")
	}
}

func FuzzParse(f *testing.F) {
	entries, err := os.ReadDir("testdata")
	require.NoError(f, err)
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".eml") {
			f.Add(readSample(f, e.Name()))
		}
	}
	f.Add([]byte("Content-Type: multipart/report; boundary=\"\"\n\n--\n--\n"))
	f.Add([]byte("From: mailer-daemon\nContent-Transfer-Encoding: base64\n\nNTUwIDUuMS4x=====\n"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		r, err := bounce.Parse(raw)
		if err != nil {
			if !errors.Is(err, bounce.ErrNotAReport) {
				t.Fatalf("error %v does not wrap ErrNotAReport", err)
			}
			return
		}
		switch r.Kind {
		case bounce.KindHard, bounce.KindSoft, bounce.KindComplaint, bounce.KindDelayed, bounce.KindUnknown:
		default:
			t.Fatalf("kind %q", r.Kind)
		}
		if len(r.Diagnostic) > bounce.MaxDiagnostic || !utf8.ValidString(r.Diagnostic) {
			t.Fatalf("diagnostic %q", r.Diagnostic)
		}
		if r.Recipient != strings.ToLower(r.Recipient) || strings.ContainsAny(r.Recipient, " \r\n<>") {
			t.Fatalf("recipient %q", r.Recipient)
		}
		if r.MessageID != "" && (!strings.HasPrefix(r.MessageID, "<") || !strings.HasSuffix(r.MessageID, ">")) {
			t.Fatalf("message id %q", r.MessageID)
		}
	})
}
