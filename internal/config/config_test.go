package config_test

import (
	"net/netip"
	"strings"
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
	c, err := config.FromEnv(env(map[string]string{"TEND_API_KEYS": "ci:k-ci-0123456789abc, plainkey-0123456789 ,marketing:k-m-0123456789abc"}))
	require.NoError(t, err)
	assert.Equal(t, []string{"k-ci-0123456789abc", "plainkey-0123456789", "k-m-0123456789abc"}, c.APIKeys)
	assert.Equal(t, map[string]string{"k-ci-0123456789abc": "ci", "plainkey-0123456789": "admin", "k-m-0123456789abc": "marketing"}, c.APIKeyNames)

	for _, bad := range []string{"ci:", ":secretkey-0123456789", "a:secretkey-0123456789,b:secretkey-0123456789"} {
		_, err := config.FromEnv(env(map[string]string{"TEND_API_KEYS": bad}))
		require.Error(t, err, bad)
		assert.Contains(t, err.Error(), "TEND_API_KEYS")
		assert.NotContains(t, err.Error(), "secr", "a key is never printed, not even its start")
	}
}

// A short key, or one copied from the docs or docker-compose.yml, is refused with the entry's
// position and name, never the key; a key tend dev generates passes.
func TestAPIKeysMustBeLongAndNotExamples(t *testing.T) {
	for list, want := range map[string]string{
		"ci:k-ci-0123456789abc,marketing:short-key1": "entry 2 (marketing): the key has 10 characters; use at least 16",
		"change-me":                           "entry 1 (admin): the key is an example value",
		"ops:changeme":                        "entry 1 (ops): the key is an example value",
		"ci:k-ci-0123456789abc,change-me-too": "entry 2 (admin): the key is an example value",
		"ops:change-me-change-me-change-me":   "entry 1 (ops): the key is an example value",
		"ops:SECRET-SECRET-SECRET-1":          "entry 1 (ops): the key is an example value",
		"x:example-example-example":           "entry 1 (x): the key is an example value",
	} {
		_, err := config.FromEnv(env(map[string]string{"TEND_API_KEYS": list}))
		require.Error(t, err, list)
		assert.Contains(t, err.Error(), "TEND_API_KEYS: "+want, list)
		for _, part := range []string{"short-key1", "change", "SECRET", "example-"} {
			assert.NotContains(t, err.Error(), part, "the key is never echoed (%s)", list)
		}
	}
	// tend dev's generated key: "dev_" and 32 hex digits.
	c, err := config.FromEnv(env(map[string]string{"TEND_API_KEYS": "dev_0f1e2d3c4b5a69788796a5b4c3d2e1f0"}))
	require.NoError(t, err)
	assert.Len(t, c.APIKeys, 1)
}

// tend server and worker refuse the demo's sender identity and example team, naming each
// variable to change, unless TEND_ALLOW_EXAMPLES says so; a production configuration passes.
func TestCheckNotExample(t *testing.T) {
	c, err := config.FromEnv(env(nil))
	require.NoError(t, err)
	err = c.CheckNotExample()
	require.Error(t, err, "the defaults are the demo")
	assert.Contains(t, err.Error(), `TEND_FROM_ADDRESS: "hello@acme.test" is the demo sender`)
	assert.Contains(t, err.Error(), `TEND_MESSAGE_ID_DOMAIN: "acme.test" is an example domain`)
	assert.Contains(t, err.Error(), `TEND_SALES: "examples/sales.yaml" is the example team`)
	assert.Contains(t, err.Error(), "TEND_ALLOW_EXAMPLES=1")

	for want, vars := range map[string]map[string]string{
		"TEND_FROM_ADDRESS":      {"TEND_FROM_ADDRESS": "news@mail.example.com", "TEND_MESSAGE_ID_DOMAIN": "northwind.io", "TEND_SALES": "off"},
		"TEND_MESSAGE_ID_DOMAIN": {"TEND_FROM_ADDRESS": "news@northwind.io", "TEND_MESSAGE_ID_DOMAIN": "acme.test", "TEND_SALES": "off"},
		"TEND_SALES":             {"TEND_FROM_ADDRESS": "news@northwind.io", "TEND_SALES": "/etc/tend/examples/sales.yaml"},
		"TEND_BOUNCE_DOMAIN":     {"TEND_FROM_ADDRESS": "news@northwind.io", "TEND_BOUNCE_DOMAIN": "bounces.example.org", "TEND_SALES": "off"},
	} {
		c, err := config.FromEnv(env(vars))
		require.NoError(t, err, want)
		err = c.CheckNotExample()
		require.Error(t, err, want)
		assert.Equal(t, 1, strings.Count(err.Error(), ": \""), "only %s is at fault: %v", want, err)
		assert.Contains(t, err.Error(), want+": ")
	}

	prod := map[string]string{"TEND_FROM_ADDRESS": "news@northwind.io", "TEND_SALES": "/etc/tend/examples/sales-production.yaml"}
	c, err = config.FromEnv(env(prod))
	require.NoError(t, err)
	assert.NoError(t, c.CheckNotExample())

	c, err = config.FromEnv(env(map[string]string{"TEND_ALLOW_EXAMPLES": "1"}))
	require.NoError(t, err)
	assert.NoError(t, c.CheckNotExample(), "allowed")
	_, err = config.FromEnv(env(map[string]string{"TEND_ALLOW_EXAMPLES": "please"}))
	require.ErrorContains(t, err, "TEND_ALLOW_EXAMPLES")
}

func TestContentPoll(t *testing.T) {
	c, err := config.FromEnv(env(nil))
	require.NoError(t, err)
	assert.Equal(t, "2s", c.ContentPoll.String())
	_, err = config.FromEnv(env(map[string]string{"TEND_CONTENT_POLL": "soon"}))
	require.ErrorContains(t, err, "TEND_CONTENT_POLL")
}

func TestWorkflowCacheSize(t *testing.T) {
	c, err := config.FromEnv(env(nil))
	require.NoError(t, err)
	assert.Equal(t, 0, c.WorkflowCacheSize, "unset keeps the SDK's default")
	c, err = config.FromEnv(env(map[string]string{"TEND_WORKFLOW_CACHE_SIZE": "2000"}))
	require.NoError(t, err)
	assert.Equal(t, 2000, c.WorkflowCacheSize)
	for _, bad := range []string{"0", "-5", "lots"} {
		_, err = config.FromEnv(env(map[string]string{"TEND_WORKFLOW_CACHE_SIZE": bad}))
		require.ErrorContains(t, err, "TEND_WORKFLOW_CACHE_SIZE", bad)
	}
}
