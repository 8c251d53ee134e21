// Package config reads tend's settings from the environment (with defaults), and validates them
// with errors that name the variable at fault.
package config

import (
	"errors"
	"fmt"
	"net/mail"
	"net/netip"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Config is every setting tend reads. The environment variable of each field is in its comment.
type Config struct {
	DataDir  string // TEND_DATA_DIR: where tend dev keeps Postgres, Temporal's SQLite file; default .tend
	HTTPAddr string // TEND_HTTP_ADDR: the API server's listen address; default 127.0.0.1:8080

	DatabaseURL string // DATABASE_URL: Postgres; tend dev starts its own cluster when empty

	TemporalAddress   string // TEMPORAL_ADDRESS: host:port of the Temporal frontend; default 127.0.0.1:7233
	TemporalNamespace string // TEMPORAL_NAMESPACE: default "default"
	TemporalAPIKey    string // TEMPORAL_API_KEY: for Temporal Cloud API-key auth (implies TLS)
	TemporalTLS       bool   // TEMPORAL_TLS: "true" to dial with TLS (system roots) without client certs
	TemporalTLSCert   string // TEMPORAL_TLS_CERT: client certificate file (mTLS)
	TemporalTLSKey    string // TEMPORAL_TLS_KEY: client key file (mTLS)
	TemporalTLSCA     string // TEMPORAL_TLS_CA: CA bundle to verify the server with
	TaskQueue         string // TEND_TASK_QUEUE: default "tend"

	SMTPURL string // SMTP_URL: smtp://user:pass@host:587?tls=starttls; tend dev uses its capture server when empty

	APIKeys []string // TEND_API_KEYS: comma-separated admin API keys, each "name:key" or a bare key (named "admin")
	// APIKeyNames names each key of APIKeys: who applied a content version, who paused a sequence.
	APIKeyNames map[string]string

	Sequences string // TEND_SEQUENCES: the sequences YAML file; default examples/sequences.yaml
	Scoring   string // TEND_SCORING: the scoring model YAML file; default examples/scoring.yaml
	Sales     string // TEND_SALES: the sales team file; default examples/sales.yaml; "off" hands nothing to sales

	PublicURL         string // TEND_PUBLIC_URL: the address leads reach tracking and unsubscribe links at; default http://TEND_HTTP_ADDR
	TrackingKeys      string // TEND_TRACKING_KEYS: "kid:base64secret,…" HMAC keys for links; the first signs, all verify
	UnsubscribeMailto string // TEND_UNSUBSCRIBE_MAILTO: address offered as the mailto form of List-Unsubscribe
	SuppressionKey    string // TEND_SUPPRESSION_KEY: base64 key (≥ 32 bytes) of the hashes on the suppression list; never change it
	WebhookSecret     string // TEND_WEBHOOK_SECRET: shared secret that signs bounce and complaint webhooks (HMAC-SHA256)
	BounceDomain      string // TEND_BOUNCE_DOMAIN: domain of the VERP envelope sender bounce+<send>@domain; empty keeps TEND_FROM_ADDRESS
	RetentionDays     int    // TEND_RETENTION_DAYS: raw events older than this are folded into daily counts; 0 keeps them
	// TEND_WORKFLOW_CACHE_SIZE: how many lead workflows a worker keeps in memory between their
	// tasks (the SDK's sticky cache, default 10,000); BENCHMARKS.md says how to size it.
	WorkflowCacheSize int
	CRMWebhookURL     string // TEND_CRM_WEBHOOK_URL: every stage change is POSTed here (optional)
	CRMWebhookSecret  string // TEND_CRM_WEBHOOK_SECRET: signs those posts (X-Tend-Signature: sha256=<hex HMAC>)
	TemplatesDir      string // TEND_TEMPLATES_DIR: a directory whose templates override the built-in ones

	FromName        string // TEND_FROM_NAME: sender name of marketing email; default "Acme Insights"
	FromAddress     string // TEND_FROM_ADDRESS: sender address; default hello@acme.test
	MessageIDDomain string // TEND_MESSAGE_ID_DOMAIN: right side of Message-IDs; default the From domain
	PostalAddress   string // TEND_POSTAL_ADDRESS: the postal address every marketing email carries

	// TEND_TRUSTED_PROXIES: comma-separated CIDR ranges (or single addresses) of the load balancers in
	// front of tend, whose X-Forwarded-For names the client; default none: the TCP peer is the client
	TrustedProxies []netip.Prefix

	// TEND_CONTENT_POLL: how often servers and workers check for a content version they were not
	// notified of; default 2s
	ContentPoll    time.Duration
	ReconcileEvery time.Duration // TEND_RECONCILE_EVERY: how often undelivered enrolments are retried; default 10s
	LogLevel       string        // TEND_LOG_LEVEL: debug, info, warn, error; default info

	// TEND_ALLOW_EXAMPLES: "1" lets tend server and tend worker start with the demo sender
	// identity or the example team (see CheckNotExample); tend dev always may
	AllowExamples bool
}

// FromEnv reads the configuration through getenv (os.Getenv in production).
func FromEnv(getenv func(string) string) (Config, error) {
	get := func(k, def string) string {
		if v := strings.TrimSpace(getenv(k)); v != "" {
			return v
		}
		return def
	}
	c := Config{
		DataDir:           get("TEND_DATA_DIR", ".tend"),
		HTTPAddr:          get("TEND_HTTP_ADDR", "127.0.0.1:8080"),
		DatabaseURL:       get("DATABASE_URL", ""),
		TemporalAddress:   get("TEMPORAL_ADDRESS", "127.0.0.1:7233"),
		TemporalNamespace: get("TEMPORAL_NAMESPACE", "default"),
		TemporalAPIKey:    get("TEMPORAL_API_KEY", ""),
		TemporalTLSCert:   get("TEMPORAL_TLS_CERT", ""),
		TemporalTLSKey:    get("TEMPORAL_TLS_KEY", ""),
		TemporalTLSCA:     get("TEMPORAL_TLS_CA", ""),
		TaskQueue:         get("TEND_TASK_QUEUE", "tend"),
		SMTPURL:           get("SMTP_URL", ""),
		Sequences:         get("TEND_SEQUENCES", "examples/sequences.yaml"),
		Scoring:           get("TEND_SCORING", "examples/scoring.yaml"),
		Sales:             get("TEND_SALES", "examples/sales.yaml"),
		TrackingKeys:      get("TEND_TRACKING_KEYS", ""),
		UnsubscribeMailto: get("TEND_UNSUBSCRIBE_MAILTO", ""),
		SuppressionKey:    get("TEND_SUPPRESSION_KEY", ""),
		WebhookSecret:     get("TEND_WEBHOOK_SECRET", ""),
		BounceDomain:      get("TEND_BOUNCE_DOMAIN", ""),
		CRMWebhookURL:     get("TEND_CRM_WEBHOOK_URL", ""),
		CRMWebhookSecret:  get("TEND_CRM_WEBHOOK_SECRET", ""),
		TemplatesDir:      get("TEND_TEMPLATES_DIR", ""),
		FromName:          get("TEND_FROM_NAME", "Acme Insights"),
		FromAddress:       get("TEND_FROM_ADDRESS", "hello@acme.test"),
		MessageIDDomain:   get("TEND_MESSAGE_ID_DOMAIN", ""),
		PostalAddress:     get("TEND_POSTAL_ADDRESS", "Acme Insights GmbH, Beispielstraße 1, 10115 Berlin, Germany"),
		LogLevel:          get("TEND_LOG_LEVEL", "info"),
	}
	c.PublicURL = strings.TrimRight(get("TEND_PUBLIC_URL", "http://"+c.HTTPAddr), "/")
	var errs []error
	var err error
	if u, err := url.Parse(c.PublicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, fmt.Errorf("TEND_PUBLIC_URL: %q is not an http(s) URL", c.PublicURL))
	}
	if v := get("TEMPORAL_TLS", ""); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("TEMPORAL_TLS: %q is not true or false", v))
		}
		c.TemporalTLS = b
	}
	if v := get("TEND_ALLOW_EXAMPLES", ""); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("TEND_ALLOW_EXAMPLES: %q is not 1 or 0", v))
		}
		c.AllowExamples = b
	}
	c.APIKeys, c.APIKeyNames, err = ParseAPIKeys(get("TEND_API_KEYS", ""))
	if err != nil {
		errs = append(errs, fmt.Errorf("TEND_API_KEYS: %w", err))
	}
	if v := get("TEND_RETENTION_DAYS", "0"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			errs = append(errs, fmt.Errorf("TEND_RETENTION_DAYS: %q is not a number of days (0 keeps raw events)", v))
		}
		c.RetentionDays = n
	}
	if v := get("TEND_WORKFLOW_CACHE_SIZE", ""); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			errs = append(errs, fmt.Errorf("TEND_WORKFLOW_CACHE_SIZE: %q is not a whole number of workflows of at least 1", v))
		}
		c.WorkflowCacheSize = n
	}
	poll, err := time.ParseDuration(get("TEND_CONTENT_POLL", "2s"))
	if err != nil || poll <= 0 {
		errs = append(errs, fmt.Errorf("TEND_CONTENT_POLL: %q is not a positive duration like 2s", get("TEND_CONTENT_POLL", "")))
	}
	c.ContentPoll = poll
	proxies, err := ParseTrustedProxies(get("TEND_TRUSTED_PROXIES", ""))
	if err != nil {
		errs = append(errs, fmt.Errorf("TEND_TRUSTED_PROXIES: %w", err))
	}
	c.TrustedProxies = proxies
	d, err := time.ParseDuration(get("TEND_RECONCILE_EVERY", "10s"))
	if err != nil || d <= 0 {
		errs = append(errs, fmt.Errorf("TEND_RECONCILE_EVERY: %q is not a positive duration like 10s", get("TEND_RECONCILE_EVERY", "")))
	}
	c.ReconcileEvery = d
	if a, err := mail.ParseAddress(c.FromAddress); err != nil || a.Name != "" {
		errs = append(errs, fmt.Errorf("TEND_FROM_ADDRESS: %q is not a plain email address", c.FromAddress))
	} else if c.MessageIDDomain == "" {
		c.MessageIDDomain = c.FromAddress[strings.LastIndex(c.FromAddress, "@")+1:]
	}
	if strings.ContainsAny(c.FromName+c.PostalAddress+c.MessageIDDomain, "\r\n<>") {
		errs = append(errs, errors.New("TEND_FROM_NAME, TEND_POSTAL_ADDRESS and TEND_MESSAGE_ID_DOMAIN must not contain line breaks or angle brackets"))
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("TEND_LOG_LEVEL: %q is not one of debug, info, warn, error", c.LogLevel))
	}
	if c.CRMWebhookURL != "" {
		if u, err := url.Parse(c.CRMWebhookURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("TEND_CRM_WEBHOOK_URL: %q is not an http(s) URL", c.CRMWebhookURL))
		}
		if c.CRMWebhookSecret == "" {
			errs = append(errs, errors.New("TEND_CRM_WEBHOOK_SECRET must be set with TEND_CRM_WEBHOOK_URL"))
		}
	}
	if (c.TemporalTLSCert == "") != (c.TemporalTLSKey == "") {
		errs = append(errs, errors.New("TEMPORAL_TLS_CERT and TEMPORAL_TLS_KEY must be set together"))
	}
	return c, errors.Join(errs...)
}

// exampleDomains are the sender domains of tend's examples and of the names reserved for
// documentation and testing (RFC 2606, RFC 6761): mail from them reaches no one, or someone else.
var exampleDomains = []string{"example.com", "example.net", "example.org"}

// exampleTLDs are the top-level domains reserved for tests and examples.
var exampleTLDs = []string{".test", ".example", ".invalid", ".localhost", ".local"}

// isExampleDomain reports whether d is, or is under, an example domain.
func isExampleDomain(d string) bool {
	d = strings.ToLower(strings.TrimSuffix(d, "."))
	for _, tld := range exampleTLDs {
		if strings.HasSuffix(d, tld) || d == tld[1:] {
			return true
		}
	}
	for _, ex := range exampleDomains {
		if d == ex || strings.HasSuffix(d, "."+ex) {
			return true
		}
	}
	return false
}

// CheckNotExample refuses, unless AllowExamples is set, a configuration that would run a
// production part (tend server, tend worker) as the demo: mail from the examples' sender identity
// (hello@acme.test, a Message-ID or bounce domain under .test or example.com) or the example
// sales team of examples/sales.yaml, whose reps are made up. The error names each variable to
// change. tend dev does not call it.
func (c Config) CheckNotExample() error {
	if c.AllowExamples {
		return nil
	}
	var errs []error
	if at := strings.LastIndex(c.FromAddress, "@"); at >= 0 && isExampleDomain(c.FromAddress[at+1:]) {
		errs = append(errs, fmt.Errorf("TEND_FROM_ADDRESS: %q is the demo sender; set your own sender address", c.FromAddress))
	}
	if c.MessageIDDomain != "" && isExampleDomain(c.MessageIDDomain) {
		errs = append(errs, fmt.Errorf("TEND_MESSAGE_ID_DOMAIN: %q is an example domain; set your own (it defaults to the From domain)", c.MessageIDDomain))
	}
	if c.BounceDomain != "" && isExampleDomain(c.BounceDomain) {
		errs = append(errs, fmt.Errorf("TEND_BOUNCE_DOMAIN: %q is an example domain; set your own", c.BounceDomain))
	}
	if filepath.ToSlash(filepath.Clean(c.Sales)) == "examples/sales.yaml" || strings.HasSuffix(filepath.ToSlash(filepath.Clean(c.Sales)), "/examples/sales.yaml") {
		errs = append(errs, fmt.Errorf("TEND_SALES: %q is the example team, whose reps are made up; point it at your team's file, or set it to off", c.Sales))
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("%w\n(set TEND_ALLOW_EXAMPLES=1 or pass --allow-examples to run with the examples anyway)", errors.Join(errs...))
}

// MinAPIKeyLength is the shortest admin API key accepted: 16 characters, long enough that guessing
// one through the rate-limited API is hopeless (tend dev generates 36).
const MinAPIKeyLength = 16

// exampleKeys are values that appear in tend's docs, examples and docker-compose.yml, or that
// people type while trying things: a key anyone can read is no key.
var exampleKeys = []string{"change-me", "changeme", "change-me-too", "secret", "example", "password", "admin", "test", "dev"}

// ParseAPIKeys reads a comma-separated list of admin keys, each "name:key" or a bare key, which is
// named "admin". The name is recorded with what the key does (content versions, pauses); a name
// may serve several keys (rotation), a key has one name. A key shorter than MinAPIKeyLength, or
// one made of an example value ("change-me"), is refused; errors name the entry by position and
// name and never show the key.
func ParseAPIKeys(list string) (keys []string, names map[string]string, err error) {
	names = map[string]string{}
	pos := 0
	for _, entry := range strings.Split(list, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		pos++
		name, key, named := strings.Cut(entry, ":")
		if !named {
			name, key = "admin", entry
		}
		name, key = strings.TrimSpace(name), strings.TrimSpace(key)
		if name == "" || key == "" {
			return nil, nil, fmt.Errorf("entry %d: write name:key, or the key alone", pos)
		}
		which := fmt.Sprintf("entry %d (%s)", pos, name)
		if isExampleKey(key) {
			return nil, nil, fmt.Errorf("%s: the key is an example value from the docs; generate one, e.g. openssl rand -hex 24", which)
		}
		if len(key) < MinAPIKeyLength {
			return nil, nil, fmt.Errorf("%s: the key has %d characters; use at least %d, e.g. openssl rand -hex 24", which, len(key), MinAPIKeyLength)
		}
		if _, dup := names[key]; dup {
			return nil, nil, fmt.Errorf("%s: the key is listed twice", which)
		}
		keys = append(keys, key)
		names[key] = name
	}
	return keys, names, nil
}

// isExampleKey reports whether key is, or merely pads, an example value: "change-me",
// "change-me-change-me", "secret-secret-secret1".
func isExampleKey(key string) bool {
	k := strings.ToLower(key)
	for _, ex := range exampleKeys {
		if k == ex {
			return true
		}
		rest := strings.Trim(strings.ReplaceAll(k, ex, ""), "-_.0123456789 ")
		if strings.Contains(k, ex) && rest == "" {
			return true
		}
	}
	return false
}

// ParseTrustedProxies reads a comma-separated list of CIDR ranges ("10.0.0.0/8, 2001:db8::/32") or
// single addresses; the error names the first entry that is neither.
func ParseTrustedProxies(list string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, entry := range strings.Split(list, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		p, err := netip.ParsePrefix(entry)
		if err != nil {
			a, aerr := netip.ParseAddr(entry)
			if aerr != nil || a.Zone() != "" {
				return nil, fmt.Errorf("%q is not a CIDR range like 10.0.0.0/8 or 2001:db8::/32, nor an IP address", entry)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		// Clients' addresses are compared in their IPv4 form, so a range written as IPv4-mapped
		// IPv6 is turned into IPv4 too.
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}
