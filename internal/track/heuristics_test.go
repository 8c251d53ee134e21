package track

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

const (
	chromeUA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36"
	gmailUA  = "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)"
	yahooUA  = "YahooMailProxy; https://help.yahoo.com/kb/yahoo-mail-proxy-SLN28749.html"
	appleUA  = "Mozilla/5.0"
)

func TestClassify(t *testing.T) {
	t.Parallel()
	sent := time.Date(2026, 5, 4, 9, 0, 0, 0, time.UTC)
	later := sent.Add(10 * time.Minute)
	soon := sent.Add(500 * time.Millisecond)
	h := DefaultHeuristics()

	tests := []struct {
		name string
		h    Heuristics
		hit  Hit
		want Verdict
	}{
		{"person opens", h, Hit{Kind: KindOpen, Method: "GET", UserAgent: chromeUA, At: later, SentAt: sent}, Verdict{}},
		{"person clicks", h, Hit{Kind: KindClick, Method: "GET", UserAgent: chromeUA, At: later, SentAt: sent}, Verdict{}},
		{"Gmail's image proxy is a real open", h, Hit{Kind: KindOpen, Method: "GET", UserAgent: gmailUA, At: later, SentAt: sent}, Verdict{}},
		{"Yahoo's image proxy is a real open", h, Hit{Kind: KindOpen, Method: "GET", UserAgent: yahooUA, At: later, SentAt: sent}, Verdict{}},

		{"HEAD", h, Hit{Kind: KindClick, Method: "HEAD", UserAgent: chromeUA, At: later, SentAt: sent}, Verdict{true, ReasonHEAD}},
		{"head in lower case", h, Hit{Kind: KindOpen, Method: "head", UserAgent: chromeUA, At: later, SentAt: sent}, Verdict{true, ReasonHEAD}},
		{"HEAD wins over other reasons", h, Hit{Kind: KindClick, Method: "HEAD", UserAgent: "curl/8.5.0", Purpose: "prefetch", At: soon, SentAt: sent}, Verdict{true, ReasonHEAD}},

		{"Sec-Purpose prefetch", h, Hit{Kind: KindClick, Method: "GET", UserAgent: chromeUA, Purpose: "prefetch;prerender", At: later, SentAt: sent}, Verdict{true, ReasonPrefetch}},
		{"X-Moz prefetch", h, Hit{Kind: KindClick, Method: "GET", UserAgent: chromeUA, Purpose: "prefetch", At: later, SentAt: sent}, Verdict{true, ReasonPrefetch}},
		{"blank purpose is none", h, Hit{Kind: KindClick, Method: "GET", UserAgent: chromeUA, Purpose: "  ", At: later, SentAt: sent}, Verdict{}},

		{"security gateway", h, Hit{Kind: KindClick, Method: "GET", UserAgent: "Mozilla/5.0 Proofpoint URL Defense", At: later, SentAt: sent}, Verdict{true, ReasonScanner}},
		{"scanner matched case-insensitively", h, Hit{Kind: KindClick, Method: "GET", UserAgent: "BARRACUDA Sentinel", At: later, SentAt: sent}, Verdict{true, ReasonScanner}},
		{"office link discovery", h, Hit{Kind: KindClick, Method: "GET", UserAgent: "Microsoft Office Existence Discovery", At: later, SentAt: sent}, Verdict{true, ReasonScanner}},
		{"HTTP library", h, Hit{Kind: KindClick, Method: "GET", UserAgent: "Go-http-client/2.0", At: later, SentAt: sent}, Verdict{true, ReasonScanner}},
		{"curl", h, Hit{Kind: KindUnsubscribe, Method: "GET", UserAgent: "curl/8.5.0", At: later, SentAt: sent}, Verdict{true, ReasonScanner}},
		{"headless browser", h, Hit{Kind: KindClick, Method: "GET", UserAgent: "Mozilla/5.0 HeadlessChrome/120.0", At: later, SentAt: sent}, Verdict{true, ReasonScanner}},
		{"crawler", h, Hit{Kind: KindOpen, Method: "GET", UserAgent: "Mozilla/5.0 (compatible; bingbot/2.0)", At: later, SentAt: sent}, Verdict{true, ReasonScanner}},
		{"scanner list emptied", Heuristics{}, Hit{Kind: KindClick, Method: "GET", UserAgent: "curl/8.5.0", At: later, SentAt: sent}, Verdict{}},

		{"Apple privacy proxy open", h, Hit{Kind: KindOpen, Method: "GET", UserAgent: appleUA, At: later, SentAt: sent}, Verdict{true, ReasonPrivacyProxy}},
		{"exact proxy pattern matches only the exact agent", h, Hit{Kind: KindOpen, Method: "GET", UserAgent: "Mozilla/5.0 (iPhone)", At: later, SentAt: sent}, Verdict{}},
		{"a click through a proxy agent later is a person", h, Hit{Kind: KindClick, Method: "GET", UserAgent: appleUA, At: later, SentAt: sent}, Verdict{}},
		{"a click through a proxy agent too soon is not", h, Hit{Kind: KindClick, Method: "GET", UserAgent: appleUA, At: soon, SentAt: sent}, Verdict{true, ReasonTooSoon}},
		{"substring proxy pattern", Heuristics{ProxyAgents: []string{"privacyrelay"}}, Hit{Kind: KindOpen, UserAgent: "X PrivacyRelay/1", At: later, SentAt: sent}, Verdict{true, ReasonPrivacyProxy}},

		{"too soon, no agent: open", h, Hit{Kind: KindOpen, Method: "GET", At: soon, SentAt: sent}, Verdict{true, ReasonTooSoon}},
		{"too soon, no agent: click", h, Hit{Kind: KindClick, Method: "GET", UserAgent: "  ", At: soon, SentAt: sent}, Verdict{true, ReasonTooSoon}},
		{"too soon with a browser agent is a person", h, Hit{Kind: KindOpen, Method: "GET", UserAgent: chromeUA, At: soon, SentAt: sent}, Verdict{}},
		{"no agent but later is a person", h, Hit{Kind: KindOpen, Method: "GET", At: later, SentAt: sent}, Verdict{}},
		{"exactly the minimum delay is not too soon", h, Hit{Kind: KindOpen, Method: "GET", At: sent.Add(2 * time.Second), SentAt: sent}, Verdict{}},
		{"before the send (clock skew) is too soon", h, Hit{Kind: KindOpen, Method: "GET", At: sent.Add(-time.Second), SentAt: sent}, Verdict{true, ReasonTooSoon}},
		{"unknown send time: no timing rule", h, Hit{Kind: KindOpen, Method: "GET", At: soon}, Verdict{}},
		{"open and click delays are separate", Heuristics{OpenMinDelay: time.Minute}, Hit{Kind: KindClick, At: sent.Add(time.Second), SentAt: sent}, Verdict{}},
		{"open delay applies to opens", Heuristics{OpenMinDelay: time.Minute}, Hit{Kind: KindOpen, At: sent.Add(time.Second), SentAt: sent}, Verdict{true, ReasonTooSoon}},
		{"click delay applies to unsubscribe visits", Heuristics{ClickMinDelay: time.Minute}, Hit{Kind: KindUnsubscribe, At: sent.Add(time.Second), SentAt: sent}, Verdict{true, ReasonTooSoon}},
		{"zero heuristics find nothing", Heuristics{}, Hit{Kind: KindOpen, Method: "GET", At: soon, SentAt: sent}, Verdict{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			assert.Equal(t, tt.want, tt.h.Classify(tt.hit))
		})
	}
}

func TestDefaultHeuristics(t *testing.T) {
	t.Parallel()
	h := DefaultHeuristics()
	assert.Equal(t, 2*time.Second, h.OpenMinDelay)
	assert.Equal(t, 2*time.Second, h.ClickMinDelay)
	assert.Equal(t, time.Second, h.AllLinksWindow)
	assert.Equal(t, time.Hour, h.DedupeWindow)
	for _, ua := range []string{"barracuda", "mimecast", "proofpoint", "symantec", "forcepoint", "trendmicro",
		"microsoft office existence discovery", "python-requests", "go-http-client", "curl/", "wget",
		"headlesschrome", "bot", "spider", "crawler", "preview"} {
		assert.Contains(t, h.ScannerAgents, ua)
	}
	assert.NotContains(t, h.ScannerAgents, "googleimageproxy")

	h.ScannerAgents[0] = "changed"
	assert.NotEqual(t, "changed", DefaultScannerAgents[0], "the defaults are copied")
}

func TestAllLinksClicked(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 5, 4, 9, 0, 0, 0, time.UTC)
	ms := func(n int) time.Time { return at.Add(time.Duration(n) * time.Millisecond) }
	h := DefaultHeuristics()
	tests := []struct {
		name   string
		h      Heuristics
		clicks map[int]time.Time
		links  int
		want   bool
	}{
		{"all three within a second", h, map[int]time.Time{1: ms(0), 2: ms(300), 3: ms(1000)}, 3, true},
		{"in any order", h, map[int]time.Time{1: ms(900), 2: ms(0), 3: ms(450)}, 3, true},
		{"spread over more than a second", h, map[int]time.Time{1: ms(0), 2: ms(300), 3: ms(1001)}, 3, false},
		{"one link not clicked", h, map[int]time.Time{1: ms(0), 2: ms(10)}, 3, false},
		{"a zero time is not a click", h, map[int]time.Time{1: ms(0), 2: ms(10), 3: {}}, 3, false},
		{"a single link proves nothing", h, map[int]time.Time{1: ms(0)}, 1, false},
		{"no links", h, nil, 0, false},
		{"two links", h, map[int]time.Time{1: ms(0), 2: ms(5)}, 2, true},
		{"a person clicking two links minutes apart", h, map[int]time.Time{1: ms(0), 2: ms(180_000)}, 2, false},
		{"window off", Heuristics{}, map[int]time.Time{1: ms(0), 2: ms(0)}, 2, false},
		{"wider window", Heuristics{AllLinksWindow: 5 * time.Second}, map[int]time.Time{1: ms(0), 2: ms(4000)}, 2, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			assert.Equal(t, tt.want, tt.h.AllLinksClicked(tt.clicks, tt.links))
		})
	}
}

func TestDuplicate(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 5, 4, 9, 0, 0, 0, time.UTC)
	h := DefaultHeuristics()
	tests := []struct {
		name string
		h    Heuristics
		prev []time.Time
		want bool
	}{
		{"first hit", h, nil, false},
		{"reload a minute later", h, []time.Time{at.Add(-time.Minute)}, true},
		{"just inside the window", h, []time.Time{at.Add(-time.Hour + time.Nanosecond)}, true},
		{"exactly the window apart", h, []time.Time{at.Add(-time.Hour)}, false},
		{"the next day", h, []time.Time{at.Add(-24 * time.Hour)}, false},
		{"any earlier hit inside counts", h, []time.Time{at.Add(-48 * time.Hour), at.Add(-10 * time.Minute)}, true},
		{"recorded out of order", h, []time.Time{at.Add(time.Second)}, true},
		{"same instant", h, []time.Time{at}, true},
		{"window off", Heuristics{}, []time.Time{at}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			assert.Equal(t, tt.want, tt.h.Duplicate(tt.prev, at))
		})
	}
}
