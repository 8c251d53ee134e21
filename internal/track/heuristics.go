package track

import (
	"strings"
	"time"
)

// Reasons a Verdict gives for a machine hit.
const (
	ReasonHEAD         = "head request"
	ReasonPrefetch     = "prefetch"
	ReasonTooSoon      = "too soon after sending"
	ReasonScanner      = "scanner user agent"
	ReasonPrivacyProxy = "privacy proxy"
	ReasonAllLinks     = "all links clicked at once"
)

// Heuristics tells machine activity (security scanners, link checkers, prefetchers, privacy
// proxies) from a person's. The zero value detects nothing: start from DefaultHeuristics and
// change what you need. A zero duration or an empty list turns its rule off.
//
// Agent lists hold case-insensitive substrings of the User-Agent header; an entry that starts
// with '=' must equal the whole header instead ("=mozilla/5.0" matches that exact agent only).
type Heuristics struct {
	// OpenMinDelay: an open this soon after sending, with no user agent or a privacy proxy's,
	// is a prefetch by the receiving system, not a person. Default 2s.
	OpenMinDelay time.Duration
	// ClickMinDelay is the same for clicks and unsubscribe-link visits. Default 2s.
	ClickMinDelay time.Duration
	// ScannerAgents are security gateways, link checkers, HTTP libraries, headless browsers and
	// crawlers. A hit from one is machine whatever its timing. Gmail's and Yahoo's image proxies
	// fetch images when a person opens the message, so they are not listed.
	ScannerAgents []string
	// ProxyAgents are mail privacy proxies that fetch every image whether or not the message is
	// read, such as Apple Mail Privacy Protection (its agent is a bare "Mozilla/5.0"). An open
	// through one is machine; a click through one is machine only when too soon.
	ProxyAgents []string
	// AllLinksWindow: when every link of a message (two or more) was first clicked within this
	// window, a scanner followed them all. Default 1s.
	AllLinksWindow time.Duration
	// DedupeWindow: an open of a send, or a click of a link, within this window of an earlier
	// one is a duplicate (a reload, a double click, an image fetched twice). Default 1h.
	DedupeWindow time.Duration
}

// DefaultScannerAgents is the default Heuristics.ScannerAgents.
var DefaultScannerAgents = []string{
	// Mail security gateways and link scanners.
	"barracuda", "mimecast", "proofpoint", "symantec", "forcepoint", "trendmicro", "trend micro",
	"ironport", "fireeye", "sophos", "microsoft office existence discovery",
	// HTTP libraries and command-line clients: people click with browsers.
	"python-requests", "python-urllib", "go-http-client", "curl/", "wget", "libwww-perl",
	"apache-httpclient", "java/", "node-fetch", "axios/",
	// Headless browsers, crawlers and link previewers.
	"headlesschrome", "phantomjs", "bot", "spider", "crawler", "preview", "facebookexternalhit",
}

// DefaultProxyAgents is the default Heuristics.ProxyAgents: Apple Mail Privacy Protection's
// proxy sends exactly "Mozilla/5.0" and nothing more.
var DefaultProxyAgents = []string{"=mozilla/5.0"}

// DefaultHeuristics returns the documented defaults. The lists are copies: changing them does not
// change the package defaults.
func DefaultHeuristics() Heuristics {
	return Heuristics{
		OpenMinDelay:   2 * time.Second,
		ClickMinDelay:  2 * time.Second,
		ScannerAgents:  append([]string(nil), DefaultScannerAgents...),
		ProxyAgents:    append([]string(nil), DefaultProxyAgents...),
		AllLinksWindow: time.Second,
		DedupeWindow:   time.Hour,
	}
}

// Hit is one request to a tracking URL, as the HTTP layer saw it.
type Hit struct {
	Kind      Kind
	Method    string // "GET", "HEAD", "POST"…
	UserAgent string
	At        time.Time // when the request arrived
	SentAt    time.Time // when the send was handed to SMTP; zero if unknown (no timing rule then)
	// Purpose is the value of whichever prefetch header the request carried (Sec-Purpose,
	// Purpose or X-Moz), or "".
	Purpose string
}

// Verdict says whether a hit came from a machine, and why.
type Verdict struct {
	Machine bool
	Reason  string // one of the Reason constants; "" for a person
}

// Classify judges one hit on its own. The rules, first match wins:
//
//  1. a HEAD request is machine ("head request"): browsers GET links and images;
//  2. a non-empty prefetch header is machine ("prefetch"): browsers send Sec-Purpose, Purpose or
//     X-Moz only when fetching ahead of a person;
//  3. a user agent on ScannerAgents is machine ("scanner user agent");
//  4. an open whose user agent is on ProxyAgents is machine ("privacy proxy");
//  5. a hit sooner than OpenMinDelay (opens) or ClickMinDelay (clicks, unsubscribes) after SentAt,
//     with an empty user agent or one on ProxyAgents, is machine ("too soon after sending").
//
// Everything else is a person. Speed alone does not make a machine (a person reading as the
// message arrives is fast too), following Mautic, which needs two signals out of speed, agent
// and IP. Classify says nothing about repeats (Duplicate) or patterns across hits
// (AllLinksClicked).
func (h Heuristics) Classify(hit Hit) Verdict {
	ua := strings.TrimSpace(hit.UserAgent)
	switch {
	case strings.EqualFold(strings.TrimSpace(hit.Method), "HEAD"):
		return Verdict{Machine: true, Reason: ReasonHEAD}
	case strings.TrimSpace(hit.Purpose) != "":
		return Verdict{Machine: true, Reason: ReasonPrefetch}
	case matchAgent(ua, h.ScannerAgents):
		return Verdict{Machine: true, Reason: ReasonScanner}
	}
	proxy := matchAgent(ua, h.ProxyAgents)
	if hit.Kind == KindOpen && proxy {
		return Verdict{Machine: true, Reason: ReasonPrivacyProxy}
	}
	minDelay := h.ClickMinDelay
	if hit.Kind == KindOpen {
		minDelay = h.OpenMinDelay
	}
	if minDelay > 0 && !hit.SentAt.IsZero() && hit.At.Sub(hit.SentAt) < minDelay && (ua == "" || proxy) {
		return Verdict{Machine: true, Reason: ReasonTooSoon}
	}
	return Verdict{}
}

// matchAgent reports whether ua matches one of the patterns (see Heuristics).
func matchAgent(ua string, patterns []string) bool {
	if ua == "" {
		return false
	}
	lower := strings.ToLower(ua)
	for _, p := range patterns {
		p = strings.ToLower(strings.TrimSpace(p))
		if exact, ok := strings.CutPrefix(p, "="); ok {
			if exact != "" && lower == exact {
				return true
			}
			continue
		}
		if p != "" && strings.Contains(lower, p) {
			return true
		}
	}
	return false
}

// AllLinksClicked reports whether a scanner followed every link of a message: the message has at
// least two links, each was clicked (clickTimes holds the first click per link index), and
// all those first clicks fall within AllLinksWindow of each other. A person reads, then clicks
// one or two links; a gateway fetches them all in a burst. Once it reports true, the message's
// clicks so far should be treated as machine ("all links clicked at once").
func (h Heuristics) AllLinksClicked(clickTimes map[int]time.Time, linkCount int) bool {
	if h.AllLinksWindow <= 0 || linkCount < 2 || len(clickTimes) < linkCount {
		return false
	}
	var first, last time.Time
	clicked := 0
	for _, at := range clickTimes {
		if at.IsZero() { // not clicked
			continue
		}
		clicked++
		if first.IsZero() || at.Before(first) {
			first = at
		}
		if last.IsZero() || at.After(last) {
			last = at
		}
	}
	return clicked >= linkCount && last.Sub(first) <= h.AllLinksWindow
}

// Duplicate reports whether a hit at at repeats one of prev (earlier hits on the same send for
// opens, on the same link for clicks) within DedupeWindow, in either direction, since hits may
// be recorded out of order. A duplicate is still a hit; it should not count again.
func (h Heuristics) Duplicate(prev []time.Time, at time.Time) bool {
	if h.DedupeWindow <= 0 {
		return false
	}
	for _, p := range prev {
		d := at.Sub(p)
		if d < 0 {
			d = -d
		}
		if d < h.DedupeWindow {
			return true
		}
	}
	return false
}
