package capture

import (
	"fmt"
	"net/mail"
	"regexp"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/tendhq/tend/internal/db"
	"github.com/tendhq/tend/internal/lifecycle"
	"github.com/tendhq/tend/internal/schedule"
)

// Sources are the capture events tend knows, from the lead-capture playbook. The source of a
// capture is one of these, so that lead-source reports compare like with like.
var Sources = []string{
	"quote_request", "newsletter_signup", "waitlist_registration", "callback_request", "ebook_download",
	"video_series_signup", "demo_registration", "webinar_registration", "contact_form", "import", "api",
}

// FieldError names one invalid field.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// ValidationError lists every invalid field of a request; nothing was stored.
type ValidationError struct {
	Fields []FieldError
}

func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Fields))
	for i, f := range e.Fields {
		parts[i] = f.Field + ": " + f.Message
	}
	return "invalid lead: " + strings.Join(parts, "; ")
}

func (e *ValidationError) add(field, format string, args ...any) {
	e.Fields = append(e.Fields, FieldError{Field: field, Message: fmt.Sprintf(format, args...)})
}

var (
	interestRe  = regexp.MustCompile(`^[a-z0-9][a-z0-9 _-]{0,63}$`)
	attrKeyRe   = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)
	localPartRe = regexp.MustCompile("^[a-z0-9!#$%&'*+/=?^_`{|}~-]+(\\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*$")
	labelRe     = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
	wordingRe   = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,64}$`)
)

// Limits on what one capture may carry.
const (
	maxInterests  = 20
	maxAttributes = 50
	maxTextLen    = 200
	maxAttrLen    = 500
)

// NormalizeEmail validates an address and returns its normal form: trimmed and lower-cased. Only
// plain addresses (no display name, no quoted local part, ASCII domain with a dot) are accepted.
func NormalizeEmail(raw string) (string, error) {
	s := strings.ToLower(strings.TrimSpace(raw))
	if s == "" {
		return "", fmt.Errorf("is required")
	}
	if len(s) > 254 {
		return "", fmt.Errorf("is longer than 254 characters")
	}
	if strings.ContainsAny(s, "\r\n\t ") || strings.IndexFunc(s, unicode.IsControl) >= 0 {
		return "", fmt.Errorf("%q is not a valid email address: it contains spaces or control characters", raw)
	}
	addr, err := mail.ParseAddress(s)
	if err != nil || addr.Name != "" || addr.Address != s {
		return "", fmt.Errorf("%q is not a valid email address", raw)
	}
	local, domain, _ := strings.Cut(s, "@")
	if len(local) > 64 || !localPartRe.MatchString(local) {
		return "", fmt.Errorf("%q is not a valid email address: invalid local part", raw)
	}
	labels := strings.Split(domain, ".")
	if len(labels) < 2 {
		return "", fmt.Errorf("%q is not a valid email address: the domain needs a dot", raw)
	}
	for _, l := range labels {
		if !labelRe.MatchString(l) {
			return "", fmt.Errorf("%q is not a valid email address: invalid domain", raw)
		}
	}
	if tld := labels[len(labels)-1]; len(tld) < 2 || strings.Trim(tld, "0123456789") == "" {
		return "", fmt.Errorf("%q is not a valid email address: invalid top-level domain", raw)
	}
	return s, nil
}

// cleanText trims s and rejects control characters (CR/LF included) and overlong values.
func cleanText(e *ValidationError, field, s string, max int) string {
	s = strings.TrimSpace(s)
	if !utf8.ValidString(s) {
		e.add(field, "is not valid UTF-8")
		return ""
	}
	if strings.IndexFunc(s, unicode.IsControl) >= 0 {
		e.add(field, "must not contain control characters or line breaks")
		return ""
	}
	if utf8.RuneCountInString(s) > max {
		e.add(field, "is longer than %d characters", max)
		return ""
	}
	return s
}

// normalize validates req and returns it in normal form, or a *ValidationError naming every bad
// field.
func normalize(req Request) (Request, error) {
	e := &ValidationError{}
	out := Request{}
	var err error
	if out.Email, err = NormalizeEmail(req.Email); err != nil {
		e.add("email", "%s", err.Error())
	}
	out.Name = cleanText(e, "name", req.Name, maxTextLen)
	out.Company = cleanText(e, "company", req.Company, maxTextLen)

	if len(req.Interests) > maxInterests {
		e.add("interests", "has %d entries; at most %d are allowed", len(req.Interests), maxInterests)
	} else {
		seen := map[string]bool{}
		for i, in := range req.Interests {
			v := strings.ToLower(strings.TrimSpace(in))
			if !interestRe.MatchString(v) {
				e.add(fmt.Sprintf("interests[%d]", i), "%q must be 1-64 characters of a-z, 0-9, space, _ or -", in)
				continue
			}
			if !seen[v] {
				seen[v] = true
				out.Interests = append(out.Interests, v)
			}
		}
		sort.Strings(out.Interests)
	}

	out.Source = strings.TrimSpace(req.Source)
	if out.Source == "" {
		out.Source = "api"
	}
	if !knownSource(out.Source) {
		e.add("source", "%q is not a known capture source (one of: %s)", req.Source, strings.Join(Sources, ", "))
	}

	if len(req.Attributes) > maxAttributes {
		e.add("attributes", "has %d keys; at most %d are allowed", len(req.Attributes), maxAttributes)
	} else if len(req.Attributes) > 0 {
		out.Attributes = map[string]string{}
		keys := make([]string, 0, len(req.Attributes))
		for k := range req.Attributes {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if !attrKeyRe.MatchString(k) {
				e.add("attributes", "key %q must start with a letter and use only a-z, 0-9 and _ (at most 64)", k)
				continue
			}
			out.Attributes[k] = cleanText(e, "attributes."+k, req.Attributes[k], maxAttrLen)
		}
	}

	out.TimeZone = strings.TrimSpace(req.TimeZone)
	if out.TimeZone != "" {
		if err := schedule.ValidTimeZone(out.TimeZone); err != nil {
			e.add("time_zone", "%q is not a known IANA time zone (e.g. Europe/Berlin)", req.TimeZone)
		}
	}

	if req.Consent != nil {
		c := *req.Consent
		c.WordingID = strings.TrimSpace(c.WordingID)
		if c.WordingID != "" && !wordingRe.MatchString(c.WordingID) {
			e.add("consent.wording_id", "%q must be 1-64 characters of letters, digits, . _ : -", req.Consent.WordingID)
		}
		out.Consent = &c
	}
	if len(e.Fields) > 0 {
		return Request{}, e
	}
	return out, nil
}

func knownSource(s string) bool {
	for _, k := range Sources {
		if k == s {
			return true
		}
	}
	return false
}

// eventFor is the behaviour event a capture stands for, so that it counts in the score; "" for
// captures that say nothing about interest (an import, a plain API call).
func eventFor(source string) string {
	switch source {
	case "ebook_download", "video_series_signup":
		return "content_download"
	case "newsletter_signup":
		return "newsletter_signup"
	case "webinar_registration":
		return "webinar_registration"
	case "demo_registration":
		return "demo_request"
	case "quote_request":
		return "quote_request"
	case "callback_request":
		return "callback_request"
	case "contact_form", "waitlist_registration":
		return "form_submit"
	}
	return ""
}

// stageFor is the stage a capture implies: a newsletter signup alone makes a subscriber; giving
// contact details for premium content (the events db.PromotesSubscriber lists, the same that
// promote a subscriber through the events API) makes a lead, and so does a capture that says
// nothing about its channel (an import, a plain API call).
func stageFor(source string) lifecycle.Stage {
	if ev := eventFor(source); ev != "" && !db.PromotesSubscriber(ev) {
		return lifecycle.Subscriber
	}
	return lifecycle.Lead
}

func lifecycleStage(s string) lifecycle.Stage { return lifecycle.Stage(s) }
