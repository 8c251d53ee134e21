package api_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tendhq/tend/internal/api"
	"github.com/tendhq/tend/internal/capture"
	"github.com/tendhq/tend/internal/dbtest"
	"github.com/tendhq/tend/internal/engage"
	"github.com/tendhq/tend/internal/track"
)

func prefixes(t *testing.T, cidrs ...string) []netip.Prefix {
	t.Helper()
	var out []netip.Prefix
	for _, c := range cidrs {
		out = append(out, netip.MustParsePrefix(c))
	}
	return out
}

func TestClientAddr(t *testing.T) {
	t.Parallel()
	lb := prefixes(t, "10.0.0.0/8", "2001:db8:ffff::/48")
	for _, tc := range []struct {
		name    string
		peer    string
		xff     []string // one entry per header line
		trusted []netip.Prefix
		want    string
	}{
		{name: "no proxies trusted: the peer", peer: "198.51.100.7:4242", xff: []string{"203.0.113.9"}, want: "198.51.100.7"},
		{name: "spoof from an untrusted peer is ignored", peer: "198.51.100.7:4242", xff: []string{"203.0.113.9, 10.0.0.1"},
			trusted: lb, want: "198.51.100.7"},
		{name: "one trusted proxy", peer: "10.0.0.2:80", xff: []string{"203.0.113.9"}, trusted: lb, want: "203.0.113.9"},
		{name: "chain through two trusted proxies", peer: "10.0.0.2:80", xff: []string{"203.0.113.9, 10.1.2.3"}, trusted: lb,
			want: "203.0.113.9"},
		{name: "client's own forged entries left of the real one", peer: "10.0.0.2:80",
			xff: []string{"1.1.1.1, 203.0.113.9"}, trusted: lb, want: "203.0.113.9"},
		{name: "several header lines are one list", peer: "10.0.0.2:80", xff: []string{"1.1.1.1", "203.0.113.9, 10.1.2.3"},
			trusted: lb, want: "203.0.113.9"},
		{name: "trusted peer without the header", peer: "10.0.0.2:80", trusted: lb, want: "10.0.0.2"},
		{name: "every hop trusted: the farthest", peer: "10.0.0.2:80", xff: []string{"10.9.9.9, 10.1.2.3"}, trusted: lb, want: "10.9.9.9"},
		{name: "malformed entry: the nearest hop vouched for", peer: "10.0.0.2:80", xff: []string{"203.0.113.9, not-an-ip, 10.1.2.3"},
			trusted: lb, want: "10.1.2.3"},
		{name: "malformed header: the trusted peer", peer: "10.0.0.2:80", xff: []string{"<script>"}, trusted: lb, want: "10.0.0.2"},
		{name: "empty entries are malformed", peer: "10.0.0.2:80", xff: []string{"203.0.113.9,,"}, trusted: lb, want: "10.0.0.2"},
		{name: "entry with a port", peer: "10.0.0.2:80", xff: []string{"203.0.113.9:5555"}, trusted: lb, want: "203.0.113.9"},
		{name: "IPv6 client through an IPv6 proxy", peer: "[2001:db8:ffff::1]:443", xff: []string{"2001:DB8:1::5"}, trusted: lb,
			want: "2001:db8:1::5"},
		{name: "IPv6 client with a port", peer: "10.0.0.2:80", xff: []string{"[2001:db8:1::5]:443"}, trusted: lb, want: "2001:db8:1::5"},
		{name: "IPv4-mapped IPv6 peer matches an IPv4 range", peer: "[::ffff:10.0.0.2]:80", xff: []string{"203.0.113.9"}, trusted: lb,
			want: "203.0.113.9"},
		{name: "IPv6 untrusted peer", peer: "[2001:db8:2::1]:443", xff: []string{"203.0.113.9"}, trusted: lb, want: "2001:db8:2::1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.RemoteAddr = tc.peer
			for _, v := range tc.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			assert.Equal(t, tc.want, api.ClientAddr(r, tc.trusted))
		})
	}
}

// proxied runs the public pages and the capture API behind a real HTTP server whose every
// request comes from 127.0.0.1, the proxy, with a rate limit of two requests per client.
func proxied(t *testing.T, trusted ...string) (string, *bundle) {
	t.Helper()
	store := dbtest.Store(t)
	keys, err := track.ParseKeys(track.GenerateKey("k1"))
	require.NoError(t, err)
	srv := &api.Server{
		Capture:        &capture.Service{Store: store, Catalog: loadCatalog(t), Enroller: &fakeEnroller{}},
		Store:          store,
		APIKeys:        []string{apiKey},
		Engage:         &engage.Service{Store: store, Keys: keys, Heuristics: track.DefaultHeuristics()},
		Limiter:        api.NewLimiter(0.001, 2),
		TrustedProxies: prefixes(t, trusted...),
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	return hs.URL, &bundle{URL: hs.URL, Store: store}
}

// pixelFrom fetches an open pixel as the client the proxy names in X-Forwarded-For.
func pixelFrom(t *testing.T, url, xff string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url+"/t/o/k1.bogus.token", nil)
	require.NoError(t, err)
	req.Header.Set("X-Forwarded-For", xff)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	return resp.StatusCode
}

// Two visitors behind one load balancer each get their own rate-limit bucket, and a consent
// records the visitor's address, not the balancer's.
func TestClientsBehindATrustedProxyAreToldApart(t *testing.T) {
	t.Parallel()
	url, b := proxied(t, "127.0.0.0/8")
	for i := range 2 {
		require.Equal(t, http.StatusOK, pixelFrom(t, url, "203.0.113.5"), "request %d of the first client", i+1)
	}
	assert.Equal(t, http.StatusTooManyRequests, pixelFrom(t, url, "203.0.113.5"), "the first client is over its limit")
	assert.Equal(t, http.StatusOK, pixelFrom(t, url, "203.0.113.6"), "the second client has a bucket of its own")
	assert.Equal(t, http.StatusOK, pixelFrom(t, url, "203.0.113.6"))

	resp := do(t, http.MethodPost, url+"/api/v1/leads",
		strings.NewReader(`{"email":"ana@example.com","consent":{"granted":true,"wording_id":"v1"}}`),
		"X-Forwarded-For", "2001:db8::77, 127.0.0.1")
	require.Equal(t, http.StatusCreated, resp.Code, resp.Raw)
	var ip string
	require.NoError(t, b.Store.Pool().QueryRow(context.Background(), `SELECT ip FROM consents`).Scan(&ip))
	assert.Equal(t, "2001:db8::77", ip, "the consent records the visitor's address")
}

// A client that reaches tend directly cannot choose its rate-limit bucket, or the address its
// consent records, by sending X-Forwarded-For.
func TestSpoofedForwardedForFromAnUntrustedPeerIsIgnored(t *testing.T) {
	t.Parallel()
	url, b := proxied(t, "10.0.0.0/8")
	assert.Equal(t, http.StatusOK, pixelFrom(t, url, "203.0.113.1"))
	assert.Equal(t, http.StatusOK, pixelFrom(t, url, "203.0.113.2"))
	assert.Equal(t, http.StatusTooManyRequests, pixelFrom(t, url, "203.0.113.3"), "a new forged address is still the same client")
	assert.Equal(t, http.StatusTooManyRequests, pixelFrom(t, url, "10.0.0.9, 203.0.113.4"))

	resp := do(t, http.MethodPost, url+"/api/v1/leads",
		strings.NewReader(`{"email":"ana@example.com","consent":{"granted":true,"wording_id":"v1"}}`), "X-Forwarded-For", "203.0.113.1")
	require.Equal(t, http.StatusCreated, resp.Code, resp.Raw)
	var ip string
	require.NoError(t, b.Store.Pool().QueryRow(context.Background(), `SELECT ip FROM consents`).Scan(&ip))
	assert.Equal(t, "127.0.0.1", ip)
}
