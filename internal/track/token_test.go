package track

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func testSecret(b byte) string {
	return base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{b}, 32))
}

func mustKeys(t testing.TB, spec string) *Keys {
	t.Helper()
	k, err := ParseKeys(spec)
	require.NoError(t, err)
	return k
}

var (
	sendA = [16]byte{0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0x4d, 0xef, 0x80, 1, 2, 3, 4, 5, 6, 7}
	sendB = [16]byte{0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0x4d, 0xef, 0x80, 1, 2, 3, 4, 5, 6, 8}
)

func TestParseKeys(t *testing.T) {
	t.Parallel()
	secret := testSecret(7)
	short := base64.StdEncoding.EncodeToString(make([]byte, 31))
	raw := bytes.Repeat([]byte{0xfb, 0xff}, 16) // encodes with '+' and '/' in std, '-' and '_' in url
	tests := []struct {
		name    string
		spec    string
		wantErr string // substring; "" for success
		signing string
	}{
		{name: "one key", spec: "k1:" + secret, signing: "k1"},
		{name: "first signs", spec: "k2:" + testSecret(2) + ",k1:" + secret, signing: "k2"},
		{name: "spaces around entries", spec: " k2 : " + testSecret(2) + " , k1:" + secret + " ", signing: "k2"},
		{name: "std alphabet", spec: "a:" + base64.StdEncoding.EncodeToString(raw), signing: "a"},
		{name: "url alphabet", spec: "a:" + base64.URLEncoding.EncodeToString(raw), signing: "a"},
		{name: "unpadded", spec: "a:" + base64.RawStdEncoding.EncodeToString(make([]byte, 40)), signing: "a"},
		{name: "eight character id", spec: "abcd1234:" + secret, signing: "abcd1234"},
		{name: "empty", spec: "", wantErr: "no key given"},
		{name: "empty entry", spec: "k1:" + secret + ",", wantErr: "entry 2 is empty"},
		{name: "no colon", spec: secret, wantErr: "entry 1: want kid:base64secret"},
		{name: "uppercase id", spec: "K1:" + secret, wantErr: "entry 1: key id must be"},
		{name: "long id", spec: "abcdefghi:" + secret, wantErr: "entry 1: key id must be"},
		{name: "id with dot", spec: "k.1:" + secret, wantErr: "entry 1: key id must be"},
		{name: "empty id", spec: ":" + secret, wantErr: "entry 1: key id must be"},
		{name: "duplicate id", spec: "k1:" + secret + ",k1:" + testSecret(3), wantErr: `entry 2: key id "k1" appears twice`},
		{name: "bad base64", spec: "k1:" + secret + ",k2:not*base64!", wantErr: `entry 2 (key "k2"): secret is not valid base64`},
		{name: "empty secret", spec: "k1:", wantErr: `entry 1 (key "k1"): secret is not valid base64`},
		{name: "short secret", spec: "k1:" + short, wantErr: `entry 1 (key "k1"): secret is 31 bytes, want at least 32`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			k, err := ParseKeys(tt.spec)
			if tt.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.wantErr)
				for _, s := range []string{secret, short, testSecret(3), "not*base64!"} {
					assert.NotContains(t, err.Error(), s, "an error must not echo a secret")
				}
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.signing, k.SigningKeyID())
		})
	}
}

func TestKeysDoNotPrintSecrets(t *testing.T) {
	t.Parallel()
	k := mustKeys(t, "k2:"+testSecret(2)+",k1:"+testSecret(1))
	for _, format := range []string{"%v", "%+v", "%#v", "%s"} {
		for _, v := range []any{k, *k} {
			out := fmt.Sprintf(format, v)
			assert.Equal(t, "track.Keys{sign: k2, verify: k2,k1}", out, format)
		}
	}
}

func TestGenerateKey(t *testing.T) {
	t.Parallel()
	a, b := GenerateKey("dev"), GenerateKey("dev")
	assert.NotEqual(t, a, b)
	k := mustKeys(t, a+","+strings.Replace(b, "dev:", "old:", 1))
	assert.Equal(t, "dev", k.SigningKeyID())
	tok, err := k.Verify(k.Sign(Token{Kind: KindOpen, SendID: sendA}))
	require.NoError(t, err)
	assert.Equal(t, sendA, tok.SendID)
}

func TestSignVerifyRoundTrip(t *testing.T) {
	t.Parallel()
	k := mustKeys(t, "k1:"+testSecret(1))
	tokens := []Token{
		{Kind: KindOpen, SendID: sendA},
		{Kind: KindUnsubscribe, SendID: sendA},
		{Kind: KindClick, SendID: sendA, Link: 0},
		{Kind: KindClick, SendID: sendA, Link: 1},
		{Kind: KindClick, SendID: sendA, Link: 127},
		{Kind: KindClick, SendID: sendA, Link: 128},
		{Kind: KindClick, SendID: sendB, Link: MaxLinks},
		{Kind: KindClick, SendID: [16]byte{}, Link: maxLink},
	}
	seen := map[string]bool{}
	for _, tok := range tokens {
		s := k.Sign(tok)
		assert.False(t, seen[s], "two tokens share the string %s", s)
		seen[s] = true
		assert.True(t, strings.HasPrefix(s, "k1."), s)
		assert.Equal(t, s, k.Sign(tok), "signing is deterministic")
		assert.Equal(t, s, url.PathEscape(s), "the token needs no escaping in a URL path")
		assert.Equal(t, s, url.QueryEscape(s), "nor in a query")
		assert.LessOrEqual(t, len(s), 70)
		got, err := k.Verify(s)
		require.NoError(t, err, s)
		assert.Equal(t, tok, got)
	}
}

func TestSignPanicsOnInvalidToken(t *testing.T) {
	t.Parallel()
	k := mustKeys(t, "k1:"+testSecret(1))
	for _, tok := range []Token{
		{Kind: 'x', SendID: sendA},
		{Kind: 0, SendID: sendA},
		{Kind: KindClick, SendID: sendA, Link: -1},
		{Kind: KindOpen, SendID: sendA, Link: 1},
		{Kind: KindUnsubscribe, SendID: sendA, Link: 3},
	} {
		assert.Panics(t, func() { k.Sign(tok) }, "%+v", tok)
	}
}

func TestRotation(t *testing.T) {
	t.Parallel()
	old := "k1:" + testSecret(1)
	next := "k2:" + testSecret(2)
	tok := Token{Kind: KindClick, SendID: sendA, Link: 3}

	before := mustKeys(t, old)
	oldToken := before.Sign(tok)

	during := mustKeys(t, next+","+old)
	got, err := during.Verify(oldToken)
	require.NoError(t, err, "a token signed before the rotation still verifies")
	assert.Equal(t, tok, got)
	newToken := during.Sign(tok)
	assert.True(t, strings.HasPrefix(newToken, "k2."), "new tokens use the new key: %s", newToken)
	_, err = before.Verify(newToken)
	assert.ErrorIs(t, err, ErrInvalidToken, "the old key set does not know k2")

	after := mustKeys(t, next)
	_, err = after.Verify(oldToken)
	assert.ErrorIs(t, err, ErrInvalidToken, "a removed key verifies nothing")
	got, err = after.Verify(newToken)
	require.NoError(t, err)
	assert.Equal(t, tok, got)
}

func TestVerifyRejects(t *testing.T) {
	t.Parallel()
	k := mustKeys(t, "k2:"+testSecret(2)+",k1:"+testSecret(1))
	click := Token{Kind: KindClick, SendID: sendA, Link: 2}
	good := k.Sign(click)
	kid, payload, mac := splitToken(t, good)

	reject := func(t *testing.T, s string) {
		t.Helper()
		tok, err := k.Verify(s)
		assert.Equal(t, ErrInvalidToken, err, "%q", s) // the one value, not a wrapped one
		assert.Zero(t, tok)
	}

	t.Run("every truncation", func(t *testing.T) {
		t.Parallel()
		for i := range len(good) {
			reject(t, good[:i])
		}
	})
	t.Run("every bit flip", func(t *testing.T) {
		t.Parallel()
		for i := range len(good) {
			for bit := range 8 {
				b := []byte(good)
				b[i] ^= 1 << bit
				reject(t, string(b))
			}
		}
	})
	t.Run("every bit of the payload and mac bytes", func(t *testing.T) {
		t.Parallel()
		rawPayload, _ := b64.DecodeString(payload)
		rawMAC, _ := b64.DecodeString(mac)
		for i := range rawPayload {
			for bit := range 8 {
				p := bytes.Clone(rawPayload)
				p[i] ^= 1 << bit
				reject(t, kid+"."+b64.EncodeToString(p)+"."+mac)
			}
		}
		for i := range rawMAC {
			for bit := range 8 {
				m := bytes.Clone(rawMAC)
				m[i] ^= 1 << bit
				reject(t, kid+"."+payload+"."+b64.EncodeToString(m))
			}
		}
	})
	t.Run("random forgeries", func(t *testing.T) {
		t.Parallel()
		for range 1000 {
			p := make([]byte, 18)
			m := make([]byte, macLen)
			_, _ = rand.Read(p)
			_, _ = rand.Read(m)
			reject(t, "k2."+b64.EncodeToString(p)+"."+b64.EncodeToString(m))
		}
	})
	t.Run("signed by a key not in the set", func(t *testing.T) {
		t.Parallel()
		other := mustKeys(t, "k2:"+testSecret(9))
		reject(t, other.Sign(click))
	})
	t.Run("kid swapped", func(t *testing.T) {
		t.Parallel()
		// A valid k2 token relabelled k1: the kid is authenticated, so it fails.
		reject(t, "k1."+payload+"."+mac)
		reject(t, "k3."+payload+"."+mac)
		reject(t, "."+payload+"."+mac)
		// A key set where two kids share a secret still binds the kid.
		same := mustKeys(t, "a:"+testSecret(5)+",b:"+testSecret(5))
		s := same.Sign(click)
		_, p, m := splitToken(t, s)
		_, err := same.Verify("b." + p + "." + m)
		assert.ErrorIs(t, err, ErrInvalidToken)
	})
	t.Run("cross kind", func(t *testing.T) {
		t.Parallel()
		open := k.Sign(Token{Kind: KindOpen, SendID: sendA})
		tok, err := k.Verify(open)
		require.NoError(t, err)
		assert.Equal(t, KindOpen, tok.Kind, "an open token is never a click")
		// Changing the kind byte of a signed open to 'c' breaks the signature.
		_, p, m := splitToken(t, open)
		raw, _ := b64.DecodeString(p)
		raw[0] = byte(KindClick)
		reject(t, "k2."+b64.EncodeToString(raw)+"."+m)
	})
	t.Run("replayed for another send or link", func(t *testing.T) {
		t.Parallel()
		raw, _ := b64.DecodeString(payload)
		other := bytes.Clone(raw)
		copy(other[1:17], sendB[:])
		reject(t, kid+"."+b64.EncodeToString(other)+"."+mac)
		other = bytes.Clone(raw)
		other[17] = 3
		reject(t, kid+"."+b64.EncodeToString(other)+"."+mac)
		assert.NotEqual(t, good, k.Sign(Token{Kind: KindClick, SendID: sendB, Link: 2}))
	})
	t.Run("malformed", func(t *testing.T) {
		t.Parallel()
		for _, s := range []string{
			"", ".", "..", "k2..", "k2." + payload, "k2." + payload + ".", "k2." + payload + "." + mac + ".",
			good + "A", good + "=", kid + "." + payload + "==." + mac, kid + "." + payload + "." + mac + "==",
			kid + "." + payload[:10] + "\n" + payload[10:] + "." + mac, // Go's decoder would skip the newline
			kid + "." + payload + "." + mac[:10] + "\r" + mac[10:],
			" " + good, good + " ", strings.ToUpper(kid) + "." + payload + "." + mac,
			kid + "." + payload[:5] + "+" + payload[6:] + "." + mac, kid + "." + payload + "." + mac[:5] + "/" + mac[6:],
			good + strings.Repeat("A", MaxTokenLen),
		} {
			reject(t, s)
		}
	})
	t.Run("non-canonical payloads signed with the right key", func(t *testing.T) {
		t.Parallel()
		// Even with a valid MAC, only the canonical encoding is accepted.
		secret := k.secrets["k2"]
		base := append([]byte{byte(KindClick)}, sendA[:]...)
		for name, p := range map[string][]byte{
			"overlong varint":     append(bytes.Clone(base), 0x82, 0x00),
			"trailing byte":       append(bytes.Clone(base), 0x02, 0x00),
			"no link":             bytes.Clone(base),
			"short send id":       base[:10],
			"unknown kind":        append([]byte{'x'}, append(sendA[:], 0)...),
			"link on an open":     append([]byte{byte(KindOpen)}, append(sendA[:], 1)...),
			"link over MaxInt32":  append(bytes.Clone(base), 0x80, 0x80, 0x80, 0x80, 0x08),
			"varint overflow":     append(bytes.Clone(base), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01),
			"unterminated varint": append(bytes.Clone(base), 0x80),
		} {
			s := "k2." + b64.EncodeToString(p) + "." + b64.EncodeToString(tokenMAC(secret, "k2", p))
			tok, err := k.Verify(s)
			assert.Equal(t, ErrInvalidToken, err, name)
			assert.Zero(t, tok, name)
		}
		// And the same construction is accepted for a canonical payload.
		p := append(bytes.Clone(base), 0x02)
		s := "k2." + b64.EncodeToString(p) + "." + b64.EncodeToString(tokenMAC(secret, "k2", p))
		assert.Equal(t, good, s)
	})
}

func splitToken(t *testing.T, s string) (kid, payload, mac string) {
	t.Helper()
	parts := strings.Split(s, ".")
	require.Len(t, parts, 3)
	return parts[0], parts[1], parts[2]
}

func FuzzVerify(f *testing.F) {
	keys := mustKeys(f, "k2:"+testSecret(2)+",k1:"+testSecret(1))
	old := mustKeys(f, "k1:"+testSecret(1))
	for _, tok := range []Token{
		{Kind: KindOpen, SendID: sendA},
		{Kind: KindClick, SendID: sendB, Link: 7},
		{Kind: KindClick, SendID: sendB, Link: 300},
		{Kind: KindUnsubscribe, SendID: sendA},
	} {
		f.Add(keys.Sign(tok))
		f.Add(old.Sign(tok))
	}
	f.Add("")
	f.Add("k2..")
	f.Add("k1.AAAA.BBBB")
	f.Fuzz(func(t *testing.T, s string) {
		tok, err := keys.Verify(s)
		if err != nil {
			require.Equal(t, ErrInvalidToken, err)
			require.Zero(t, tok)
			return
		}
		// Canonical: what verifies re-signs, with the key that signed it, to the same string.
		kid, _, _ := strings.Cut(s, ".")
		require.Equal(t, s, keys.signWith(kid, tok))
		require.LessOrEqual(t, len(s), MaxTokenLen)
	})
}
