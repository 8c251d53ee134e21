package config_test

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tendhq/tend/internal/config"
)

func env(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

func TestTrustedProxiesDefaultToNone(t *testing.T) {
	c, err := config.FromEnv(env(nil))
	require.NoError(t, err)
	assert.Empty(t, c.TrustedProxies)
}

func TestTrustedProxiesAreRangesAndAddresses(t *testing.T) {
	c, err := config.FromEnv(env(map[string]string{"TEND_TRUSTED_PROXIES": " 10.0.0.0/8, 2001:db8::/32,192.0.2.7 ,,10.1.2.3/16, ::ffff:172.16.0.0/108"}))
	require.NoError(t, err)
	want := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8::/32"),
		netip.MustParsePrefix("192.0.2.7/32"), netip.MustParsePrefix("10.1.0.0/16"), netip.MustParsePrefix("172.16.0.0/12")}
	assert.Equal(t, want, c.TrustedProxies)
}

func TestBadTrustedProxyIsNamed(t *testing.T) {
	for _, bad := range []string{"10.0.0.0/33", "proxy.internal", "10.0.0.0/8/8", "fe80::1%eth0"} {
		_, err := config.FromEnv(env(map[string]string{"TEND_TRUSTED_PROXIES": "10.0.0.0/8, " + bad}))
		require.Error(t, err, bad)
		assert.Contains(t, err.Error(), "TEND_TRUSTED_PROXIES")
		assert.Contains(t, err.Error(), `"`+bad+`"`)
		assert.NotContains(t, err.Error(), `"10.0.0.0/8"`, "only the bad entry is named")
	}
}

// Keys may carry a name (name:key), recorded with what they publish; a bare key is "admin", so
// an existing TEND_API_KEYS keeps working.
func TestAPIKeysHaveNames(t *testing.T) {
	c, err := config.FromEnv(env(map[string]string{"TEND_API_KEYS": "ci:k-ci-123, plainkey ,marketing:k-m-456"}))
	require.NoError(t, err)
	assert.Equal(t, []string{"k-ci-123", "plainkey", "k-m-456"}, c.APIKeys)
	assert.Equal(t, map[string]string{"k-ci-123": "ci", "plainkey": "admin", "k-m-456": "marketing"}, c.APIKeyNames)

	for _, bad := range []string{"ci:", ":secretkey", "a:dup1,b:dup1"} {
		_, err := config.FromEnv(env(map[string]string{"TEND_API_KEYS": bad}))
		require.Error(t, err, bad)
		assert.Contains(t, err.Error(), "TEND_API_KEYS")
		assert.NotContains(t, err.Error(), "secretkey", "a key is never printed whole")
	}
}

func TestContentPoll(t *testing.T) {
	c, err := config.FromEnv(env(nil))
	require.NoError(t, err)
	assert.Equal(t, "2s", c.ContentPoll.String())
	_, err = config.FromEnv(env(map[string]string{"TEND_CONTENT_POLL": "soon"}))
	require.ErrorContains(t, err, "TEND_CONTENT_POLL")
}
