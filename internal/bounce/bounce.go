// Package bounce reads what mailbox providers send back about tend's email: delivery status
// notifications (RFC 3464 DSNs), feedback-loop complaints (ARF, RFC 5965), and the plain-text
// bounces older MTAs still write. It also owns the VERP envelope address that ties a bounce to the
// send that caused it. It does no I/O: callers hand it a raw message and act on the Report.
package bounce

import (
	"errors"
	"fmt"
	"net/mail"
	"regexp"
	"strings"
	"unicode/utf8"
)

// Kind is what a report means for the recipient's address.
type Kind string

// The kinds of report.
const (
	// KindHard: the address does not work (5.x.x other than the soft ones); suppress it.
	KindHard Kind = "hard"
	// KindSoft: this message failed but the address may work later: mailbox full (5.2.2),
	// message too big (5.2.3, 5.3.4), a policy rejection (5.7.x), or a 4.x.x failure given up on.
	KindSoft Kind = "soft"
	// KindComplaint: the recipient marked the message as spam (ARF).
	KindComplaint Kind = "complaint"
	// KindDelayed: delivery is still being retried (Action: delayed, or a 4.x.x status).
	KindDelayed Kind = "delayed"
	// KindUnknown: a report, but not one that says anything about failure (a success DSN, or a
	// bounce with no status code in it).
	KindUnknown Kind = "unknown"
)

// MaxDiagnostic is the longest Diagnostic kept, in bytes (so also at most that many characters).
const MaxDiagnostic = 300

// ErrNotAReport is wrapped by Parse's error when the message is not a bounce or complaint at all:
// a reply from a person, a read receipt, an empty or headerless input.
var ErrNotAReport = errors.New("not a delivery status or feedback report")

// Report is what one bounce or complaint says.
type Report struct {
	Kind Kind
	// Recipient is the address that failed or complained, lower-cased. For a DSN it is the
	// Original-Recipient when given (the address as tend sent it, before any forwarding), else
	// the Final-Recipient; for ARF the Original-Rcpt-To, else the original message's recipient.
	Recipient string
	// Status is the RFC 3463 enhanced status code, e.g. 5.1.1.
	Status string
	// Action is the DSN action: failed, delayed, delivered, relayed or expanded.
	Action string
	// Diagnostic is the remote server's text (Diagnostic-Code without its type), trimmed,
	// at most MaxDiagnostic bytes.
	Diagnostic string
	// MessageID is the Message-ID of the message that bounced or drew the complaint, with <>.
	MessageID string
	// FeedbackType is ARF's Feedback-Type: abuse, fraud, virus, other, not-spam, …
	FeedbackType string
	// VERPToken is the token of the VERP address (bounce+TOKEN@domain) the report was sent to,
	// or that the original message was sent from.
	VERPToken string
}

// PolicyRejection reports whether the receiver refused on policy (5.7.x: reputation, blocklist,
// authentication, DMARC). Such a bounce is KindSoft but is about the sender, not the person: record
// it and alert, and don't count it toward suppressing the address.
func (r Report) PolicyRejection() bool {
	return strings.HasPrefix(r.Status, "5.7.")
}

// Parser reads reports. The zero value expects VERP addresses with DefaultVERPLocalPart.
type Parser struct {
	// VERPLocalPart is the local part before "+token" in VERP addresses; "" means "bounce".
	VERPLocalPart string
}

// Parse reads a raw message with the default VERP local part. See Parser.Parse.
func Parse(raw []byte) (Report, error) {
	return Parser{}.Parse(raw)
}

// Parse reads a raw RFC 5322 message (CRLF or LF line endings) and says what it reports. A
// message that is no report at all gets an error wrapping ErrNotAReport that names why. A report
// whose parts are damaged or missing still parses, as far as it goes, with no error.
func (p Parser) Parse(raw []byte) (Report, error) {
	if len(strings.TrimSpace(string(raw))) == 0 {
		return Report{}, fmt.Errorf("%w: empty message", ErrNotAReport)
	}
	header, body := splitMessage(raw)
	if len(header) == 0 {
		return Report{}, fmt.Errorf("%w: no header fields", ErrNotAReport)
	}
	var c contents
	c.walk(header, body, 0)
	topType, _ := mediaType(header)

	var r Report
	switch {
	case c.feedbackReport != nil || c.reportType == "feedback-report":
		r = c.arf()
	case c.deliveryStatus != nil:
		r = c.dsn(header)
	case c.reportType != "" && c.reportType != "delivery-status":
		return Report{}, fmt.Errorf("%w: multipart/report of type %q", ErrNotAReport, c.reportType)
	case c.reportType == "delivery-status" || looksLikeBounce(header):
		r = c.plain(header)
	default:
		return Report{}, fmt.Errorf("%w: %s with no delivery-status or feedback-report part and no bounce sender or subject",
			ErrNotAReport, topType)
	}
	if r.MessageID == "" {
		r.MessageID = messageID(c.original.get("message-id"))
	}
	r.VERPToken = p.verpToken(header, &c)
	return r, nil
}

// contents is what a walk over the MIME tree collects.
type contents struct {
	reportType     string // report-type of the first multipart/report
	deliveryStatus []byte
	feedbackReport []byte
	original       fields // headers of the returned or reported message
	hasOriginal    bool
	envelopeFrom   string   // the report's record of the original envelope sender
	texts          []string // human-readable parts, plain text first
	htmls          []string
}

// maxDepth bounds multipart nesting; real reports nest three deep at most.
const maxDepth = 8

func (c *contents) walk(h fields, body []byte, depth int) {
	mt, params := mediaType(h)
	switch {
	case strings.HasPrefix(mt, "multipart/"):
		if depth >= maxDepth {
			return
		}
		if mt == "multipart/report" && c.reportType == "" {
			c.reportType = strings.ToLower(strings.TrimSpace(params["report-type"]))
		}
		for _, part := range splitMultipart(body, params["boundary"]) {
			ph, pb := splitMessage(part)
			c.walk(ph, pb, depth+1)
		}
	case mt == "message/delivery-status" || mt == "message/global-delivery-status":
		if c.deliveryStatus == nil {
			c.deliveryStatus = decodeBody(h, body)
		}
	case mt == "message/feedback-report":
		if c.feedbackReport == nil {
			c.feedbackReport = decodeBody(h, body)
		}
	case mt == "message/rfc822" || mt == "message/global" ||
		mt == "text/rfc822-headers" || mt == "message/rfc822-headers" || mt == "message/global-headers":
		// The original is not walked into: it may itself be a bounce, or quote one.
		if !c.hasOriginal {
			c.original, _ = splitMessage(decodeBody(h, body))
			c.hasOriginal = len(c.original) > 0
		}
	case mt == "text/html":
		c.htmls = append(c.htmls, htmlTag.ReplaceAllString(string(decodeBody(h, body)), " "))
	case strings.HasPrefix(mt, "text/"):
		c.texts = append(c.texts, string(decodeBody(h, body)))
	}
}

var htmlTag = regexp.MustCompile(`<[^<>]*>`)

// dsn reads an RFC 3464 delivery-status part. With several recipients, the worst outcome wins:
// tend sends one recipient per message, so several means forwarding or aliasing downstream.
func (c *contents) dsn(header fields) Report {
	blocks := splitBlocks(c.deliveryStatus)
	var perMessage fields
	if len(blocks) > 0 && !isRecipientBlock(blocks[0]) {
		perMessage = blocks[0]
	}
	c.envelopeFrom = perMessage.get("x-postfix-sender")
	var best fields
	bestRank := -1
	for _, b := range blocks {
		if !isRecipientBlock(b) {
			continue
		}
		if rank := actionRank(action(b.get("action"))); rank > bestRank {
			best, bestRank = b, rank
		}
	}
	r := Report{
		Action:     action(best.get("action")),
		Diagnostic: diagnostic(best.get("diagnostic-code")),
		MessageID:  messageID(perMessage.get("x-original-message-id")),
	}
	r.Status = statusCode(best.get("status"), r.Diagnostic)
	r.Recipient = firstAddress(best.get("original-recipient"), best.get("final-recipient"),
		header.get("x-failed-recipients"))
	r.Kind = classify(r.Action, r.Status)
	return r
}

func isRecipientBlock(b fields) bool {
	return b.has("final-recipient", "original-recipient", "action", "status")
}

func actionRank(a string) int {
	switch a {
	case "failed":
		return 3
	case "delayed":
		return 2
	case "":
		return 0
	}
	return 1
}

// arf reads an RFC 5965 feedback report.
func (c *contents) arf() Report {
	fr, _ := splitMessage(c.feedbackReport)
	r := Report{Kind: KindComplaint}
	c.envelopeFrom = fr.get("original-mail-from")
	r.FeedbackType = strings.ToLower(firstWord(fr.get("feedback-type")))
	if len(r.FeedbackType) > 64 {
		r.FeedbackType = ""
	}
	// Microsoft's JMRP names the complainant in X-HmXmrOriginalRecipient and may redact To.
	r.Recipient = firstAddress(fr.get("original-rcpt-to"), c.original.get("x-hmxmroriginalrecipient"),
		c.original.get("to"))
	return r
}

// plain makes the best of a bounce that is not a DSN: a human-readable text from a
// MAILER-DAEMON, scanned for an enhanced status code.
func (c *contents) plain(header fields) Report {
	texts := c.texts
	if len(texts) == 0 {
		texts = c.htmls
	}
	var r Report
	for _, t := range texts {
		code, line, ok := findStatus(t)
		if !ok {
			continue
		}
		r.Status, r.Diagnostic = code, truncate(collapseSpace(line), MaxDiagnostic)
		break
	}
	switch {
	case r.Status == "":
		r.Kind = KindUnknown
	case r.Status[0] == '4':
		r.Kind = KindSoft
		if mentionsDelay(header.get("subject"), texts) {
			r.Kind = KindDelayed
		}
	default:
		r.Kind = classify("failed", r.Status)
	}
	r.Recipient = firstAddress(header.get("x-failed-recipients"))
	for _, t := range texts {
		if r.Recipient != "" {
			break
		}
		r.Recipient = textRecipient(t)
	}
	// The returned message is often pasted in below the explanation.
	for _, t := range texts {
		if m := inlineMessageID.FindStringSubmatch(t); m != nil {
			r.MessageID = messageID(m[1])
			break
		}
	}
	return r
}

var (
	inlineMessageID = regexp.MustCompile(`(?im)^message-id:[ \t]*(<[^<>\s]+>)`)
	rcptTo          = regexp.MustCompile(`(?i)RCPT TO:\s*<([^<>\s]+@[^<>\s]+)>`)
	leadingAddress  = regexp.MustCompile(`(?m)^[ \t]*<([^<>\s]+@[^<>\s]+)>:`)
	delayWords      = regexp.MustCompile(`(?i)\bdelay|will (?:be )?retr|still (?:being )?(?:retried|trying)|not yet been delivered|warning`)
)

func textRecipient(t string) string {
	if m := rcptTo.FindStringSubmatch(t); m != nil {
		if a := address(m[1]); a != "" {
			return a
		}
	}
	if m := leadingAddress.FindStringSubmatch(t); m != nil {
		return address(m[1])
	}
	return ""
}

func mentionsDelay(subject string, texts []string) bool {
	if delayWords.MatchString(subject) {
		return true
	}
	for _, t := range texts {
		if delayWords.MatchString(t) {
			return true
		}
	}
	return false
}

// looksLikeBounce says whether a message without a report part comes from a mail system.
func looksLikeBounce(h fields) bool {
	if h.has("x-failed-recipients") {
		return true
	}
	from := strings.ToLower(h.get("from"))
	for _, s := range []string{"mailer-daemon", "postmaster", "mail delivery"} {
		if strings.Contains(from, s) {
			return true
		}
	}
	nullSender := strings.TrimSpace(h.get("return-path")) == "<>"
	return nullSender && bounceSubject.MatchString(h.get("subject"))
}

var bounceSubject = regexp.MustCompile(`(?i)undeliver|delivery status notification|delivery (?:has )?fail|mail delivery|returned mail|failure notice|could not be delivered|non-?delivery`)

// classify turns a DSN action and status into a Kind.
func classify(action, status string) Kind {
	switch action {
	case "delayed":
		return KindDelayed
	case "delivered", "relayed", "expanded":
		return KindUnknown
	}
	if status == "" {
		return KindUnknown
	}
	switch status[0] {
	case '5':
		if softPermanent(status) {
			return KindSoft
		}
		return KindHard
	case '4':
		// A 4.x.x with Action: failed was given up on after retries: the message is lost but the
		// address is not known to be bad.
		if action == "failed" {
			return KindSoft
		}
		return KindDelayed
	}
	return KindUnknown
}

// softPermanent lists the permanent failures that say nothing against the address: policy
// (5.7.x — record and alert, don't suppress the person), mailbox full, message too big.
func softPermanent(status string) bool {
	switch status {
	case "5.2.2", "5.2.3", "5.3.4":
		return true
	}
	return strings.HasPrefix(status, "5.7.")
}

func action(v string) string {
	a := strings.ToLower(firstWord(v))
	for _, c := range a {
		if c < 'a' || c > 'z' {
			return ""
		}
	}
	return a
}

func firstWord(v string) string {
	f := strings.FieldsFunc(v, func(r rune) bool { return r == ' ' || r == '\t' || r == ';' || r == '(' })
	if len(f) == 0 {
		return ""
	}
	return f[0]
}

var diagnosticType = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9-]*[ \t]*;`)

// diagnostic drops the diagnostic-type ("smtp;") and collapses the unfolded lines.
func diagnostic(v string) string {
	v = diagnosticType.ReplaceAllString(strings.TrimSpace(v), "")
	return truncate(collapseSpace(v), MaxDiagnostic)
}

// statusCode returns the Status field's code, or the diagnostic's when the field is missing or
// only says the class (x.0.0, as Postfix writes for a remote reply without an enhanced code).
func statusCode(field, diag string) string {
	s := ""
	if codes := enhancedCodes(field); len(codes) > 0 && codes[0].start == leadingSpace(field) {
		s = codes[0].code
	}
	if s != "" && !strings.HasSuffix(s, ".0.0") {
		return s
	}
	for _, c := range enhancedCodes(diag) {
		if (s == "" || c.code[0] == s[0]) && !strings.HasSuffix(c.code, ".0.0") {
			return c.code
		}
	}
	return s
}

func leadingSpace(s string) int {
	return len(s) - len(strings.TrimLeft(s, " \t"))
}

type codeMatch struct {
	code      string
	start     int
	withReply bool // preceded by an SMTP reply code of the same class: "550 5.1.1", "550-5.1.1"
}

var codePattern = regexp.MustCompile(`[245]\.[0-9]{1,3}\.[0-9]{1,3}`)

// enhancedCodes finds RFC 3463 codes in text, skipping pieces of longer dotted numbers
// (IP addresses, versions, dates).
func enhancedCodes(s string) []codeMatch {
	var out []codeMatch
	for _, loc := range codePattern.FindAllStringIndex(s, -1) {
		a, b := loc[0], loc[1]
		if a > 0 && (isDigit(s[a-1]) || s[a-1] == '.') {
			continue
		}
		if b < len(s) && (isDigit(s[b]) || s[b] == '.' && b+1 < len(s) && isDigit(s[b+1])) {
			continue
		}
		m := codeMatch{code: s[a:b], start: a}
		if a >= 4 && (s[a-1] == ' ' || s[a-1] == '-') && s[a-4] == s[a] && isDigit(s[a-3]) && isDigit(s[a-2]) &&
			(a == 4 || !isDigit(s[a-5])) {
			m.withReply = true
		}
		out = append(out, m)
	}
	return out
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// findStatus picks the status code of a human-readable bounce: the first one that follows an SMTP
// reply code, else the first 4.x.x or 5.x.x; it returns the line it was found on.
func findStatus(t string) (code, line string, ok bool) {
	var pick *codeMatch
	codes := enhancedCodes(t)
	for i := range codes {
		if codes[i].withReply {
			pick = &codes[i]
			break
		}
	}
	if pick == nil {
		for i := range codes {
			if codes[i].code[0] != '2' {
				pick = &codes[i]
				break
			}
		}
	}
	if pick == nil {
		return "", "", false
	}
	start := strings.LastIndexByte(t[:pick.start], '\n') + 1
	end := strings.IndexByte(t[pick.start:], '\n')
	if end < 0 {
		end = len(t)
	} else {
		end += pick.start
	}
	return pick.code, strings.TrimSpace(t[start:end]), true
}

// firstAddress returns the first value that holds a usable address.
func firstAddress(values ...string) string {
	for _, v := range values {
		if a := address(v); a != "" {
			return a
		}
	}
	return ""
}

// address reads "rfc822; Jane@Example.org", "<jane@example.org>", "Jane <jane@example.org>" or a
// list, and returns the first address lower-cased, or "" when there is none.
func address(v string) string {
	v = strings.TrimSpace(v)
	if t, rest, ok := strings.Cut(v, ";"); ok && !strings.ContainsAny(t, "<@\"") {
		v = strings.TrimSpace(rest) // address-type: rfc822, utf-8
	}
	if list, err := mail.ParseAddressList(v); err == nil && len(list) > 0 {
		v = list[0].Address
	} else if i := strings.IndexByte(v, '<'); i >= 0 {
		v = v[i+1:]
		if j := strings.IndexByte(v, '>'); j >= 0 {
			v = v[:j]
		}
	} else {
		v, _, _ = strings.Cut(v, ",")
	}
	v = strings.ToLower(strings.TrimSpace(v))
	at := strings.LastIndexByte(v, '@')
	if at <= 0 || at == len(v)-1 || len(v) > 320 || !utf8.ValidString(v) {
		return ""
	}
	for _, c := range v {
		if c <= ' ' || c == '<' || c == '>' || c == '\x7f' {
			return ""
		}
	}
	return v
}

// messageID returns the first <id> in v, or v bracketed when it is a bare id.
func messageID(v string) string {
	v = strings.TrimSpace(v)
	if i := strings.IndexByte(v, '<'); i >= 0 {
		v = v[i+1:]
		j := strings.IndexByte(v, '>')
		if j < 0 {
			return ""
		}
		v = v[:j]
	} else if strings.ContainsAny(v, " \t>") {
		return ""
	}
	if v == "" || len(v) > 998 || !utf8.ValidString(v) {
		return ""
	}
	for _, c := range v {
		if c <= ' ' || c == '\x7f' {
			return ""
		}
	}
	return "<" + v + ">"
}

func collapseSpace(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// truncate cuts s to at most n bytes on a character boundary, replacing invalid UTF-8 first.
func truncate(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return strings.TrimSpace(s[:n])
}
