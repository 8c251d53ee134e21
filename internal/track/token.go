package track

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strings"
)

// Kind says what a tracking token is for. It is the first byte of the signed payload, so a token
// issued for one purpose never verifies as another.
type Kind byte

// The kinds of tracking token.
const (
	KindOpen        Kind = 'o'
	KindClick       Kind = 'c'
	KindUnsubscribe Kind = 'u'
)

// String names the kind ("open", "click", "unsubscribe").
func (k Kind) String() string {
	switch k {
	case KindOpen:
		return "open"
	case KindClick:
		return "click"
	case KindUnsubscribe:
		return "unsubscribe"
	}
	return fmt.Sprintf("Kind(%d)", byte(k))
}

func (k Kind) valid() bool {
	return k == KindOpen || k == KindClick || k == KindUnsubscribe
}

// Token is what a tracking URL carries: which send it belongs to and, for a click, which of the
// send's links. It holds no URL: the click redirect looks the target up by (send, link).
type Token struct {
	Kind Kind
	// SendID is the send's UUID as 16 bytes (uuid.UUID converts directly).
	SendID [16]byte
	// Link is the link index for KindClick (see Rewrite) and 0 for every other kind.
	Link int
}

// validate reports why t cannot be signed. Verify rejects exactly the payloads that decode to
// such tokens, which keeps the encoding canonical.
func (t Token) validate() error {
	switch {
	case !t.Kind.valid():
		return fmt.Errorf("unknown kind %d", byte(t.Kind))
	case t.Link < 0 || t.Link > maxLink:
		return fmt.Errorf("link %d out of range [0, %d]", t.Link, maxLink)
	case t.Kind != KindClick && t.Link != 0:
		return fmt.Errorf("link %d on a %s token (only clicks carry a link)", t.Link, t.Kind)
	}
	return nil
}

// ErrInvalidToken is the only error Verify returns. Every failure (unknown key, bad encoding,
// bad signature, wrong length…) is reported with this one value so that a caller, and through
// it a client, cannot tell them apart.
var ErrInvalidToken = errors.New("invalid tracking token")

const (
	// MaxTokenLen bounds the input Verify looks at; real tokens are under 70 characters.
	MaxTokenLen = 200
	// minSecretLen is the shortest accepted secret: HMAC-SHA256 gains nothing from more than
	// 32 bytes, and less weakens it.
	minSecretLen = 32
	// macLen is the HMAC-SHA256 output kept in a token: 128 bits resist forgery by guessing,
	// and keep URLs short.
	macLen     = 16
	maxKeyID   = 8
	maxLink    = math.MaxInt32
	payloadMin = 1 + 16 + 1
	payloadMax = 1 + 16 + binary.MaxVarintLen32
	// macDomain separates these MACs from any other use of the same secret.
	macDomain = "tend/track/v1\x00"
)

var b64 = base64.RawURLEncoding.Strict()

// Keys signs and verifies tracking tokens. The first key signs; every key verifies, so a key can
// be rotated without breaking the links in emails already sent: put the new key first, keep the
// old one after it for as long as those emails matter, then remove it. Keys is safe for
// concurrent use and never prints its secrets.
type Keys struct {
	signing string
	ids     []string // in spec order, for String
	secrets map[string][]byte
}

// ParseKeys reads a key list such as "k2:SECRET,k1:SECRET" (a TEND_TRACK_KEYS style value). Key
// ids are 1 to 8 characters of [a-z0-9]; a secret is base64 (standard or URL alphabet, padded or
// not) of at least 32 bytes. Errors name the entry by position and key id, never by its secret.
func ParseKeys(spec string) (*Keys, error) {
	k := &Keys{secrets: map[string][]byte{}}
	entries := strings.Split(spec, ",")
	for i, entry := range entries {
		entry = strings.TrimSpace(entry)
		n := i + 1
		if entry == "" {
			if len(entries) == 1 {
				return nil, errors.New("tracking keys: no key given (want kid:base64secret[,kid:base64secret…])")
			}
			return nil, fmt.Errorf("tracking keys: entry %d is empty", n)
		}
		id, secret, ok := strings.Cut(entry, ":")
		if !ok {
			// The entry may be a bare secret: do not echo it.
			return nil, fmt.Errorf("tracking keys: entry %d: want kid:base64secret", n)
		}
		id = strings.TrimSpace(id)
		if !validKeyID(id) {
			// An invalid id is not echoed either: it may be part of a mangled secret.
			return nil, fmt.Errorf("tracking keys: entry %d: key id must be 1 to %d characters of a-z and 0-9", n, maxKeyID)
		}
		if _, dup := k.secrets[id]; dup {
			return nil, fmt.Errorf("tracking keys: entry %d: key id %q appears twice", n, id)
		}
		raw, err := decodeSecret(strings.TrimSpace(secret))
		if err != nil {
			return nil, fmt.Errorf("tracking keys: entry %d (key %q): secret is not valid base64", n, id)
		}
		if len(raw) < minSecretLen {
			return nil, fmt.Errorf("tracking keys: entry %d (key %q): secret is %d bytes, want at least %d", n, id, len(raw), minSecretLen)
		}
		if i == 0 {
			k.signing = id
		}
		k.ids = append(k.ids, id)
		k.secrets[id] = raw
	}
	return k, nil
}

func decodeSecret(s string) ([]byte, error) {
	if s == "" {
		return nil, errors.New("empty")
	}
	var firstErr error
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
		raw, err := enc.DecodeString(s)
		if err == nil {
			return raw, nil
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	return nil, firstErr
}

func validKeyID(id string) bool {
	if len(id) == 0 || len(id) > maxKeyID {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}

// GenerateKey returns a new "id:secret" entry for ParseKeys with 32 random bytes, for docs and
// development setups. It does not check id; ParseKeys will.
func GenerateKey(id string) string {
	secret := make([]byte, minSecretLen)
	_, _ = rand.Read(secret) // crypto/rand.Read never fails; it crashes the program instead.
	return id + ":" + base64.RawURLEncoding.EncodeToString(secret)
}

// SigningKeyID is the id of the key that signs new tokens.
func (k *Keys) SigningKeyID() string { return k.signing }

// String lists the key ids, never the secrets, so that logging a Keys is harmless.
func (k Keys) String() string {
	return fmt.Sprintf("track.Keys{sign: %s, verify: %s}", k.signing, strings.Join(k.ids, ","))
}

// GoString is String, so that %#v does not print the secrets either.
func (k Keys) GoString() string { return k.String() }

// Sign returns the URL-safe token for t, signed with the first key:
//
//	<kid>.<base64url(payload)>.<base64url(HMAC-SHA256(secret, domain ‖ kid ‖ "." ‖ payload)[:16])>
//
// where payload is the kind byte, the 16 send-ID bytes and the link as a uvarint. Sign panics
// when t is not a token it could verify: an unknown kind, a negative link, or a link on a
// non-click token. Those are programming errors, not input errors.
func (k *Keys) Sign(t Token) string {
	return k.signWith(k.signing, t)
}

func (k *Keys) signWith(kid string, t Token) string {
	if err := t.validate(); err != nil {
		panic("track: Sign: " + err.Error())
	}
	secret, ok := k.secrets[kid]
	if !ok {
		panic("track: Sign: unknown key id")
	}
	payload := make([]byte, 0, payloadMax)
	payload = append(payload, byte(t.Kind))
	payload = append(payload, t.SendID[:]...)
	payload = binary.AppendUvarint(payload, uint64(t.Link))
	mac := tokenMAC(secret, kid, payload)

	var b strings.Builder
	b.Grow(len(kid) + 2 + b64.EncodedLen(len(payload)) + b64.EncodedLen(macLen))
	b.WriteString(kid)
	b.WriteByte('.')
	b.WriteString(b64.EncodeToString(payload))
	b.WriteByte('.')
	b.WriteString(b64.EncodeToString(mac))
	return b.String()
}

func tokenMAC(secret []byte, kid string, payload []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(macDomain))
	m.Write([]byte(kid))
	m.Write([]byte{'.'}) // a kid never contains '.', so kid ‖ "." ‖ payload is unambiguous
	m.Write(payload)
	return m.Sum(nil)[:macLen]
}

// Verify checks s and returns the token it carries. Any failure returns ErrInvalidToken and a
// zero Token. Only the canonical encoding verifies: a token that verifies re-signs (with the same
// key) to exactly s, so there is one string per (key, token) and it is safe as a dedupe key.
func (k *Keys) Verify(s string) (Token, error) {
	if len(s) > MaxTokenLen {
		return Token{}, ErrInvalidToken
	}
	kid, rest, ok := strings.Cut(s, ".")
	if !ok {
		return Token{}, ErrInvalidToken
	}
	encPayload, encMAC, ok := strings.Cut(rest, ".")
	if !ok {
		return Token{}, ErrInvalidToken
	}
	// Go's base64 decoder skips '\r' and '\n'; a strict alphabet check keeps the encoding canonical.
	if !validKeyID(kid) || !isB64URL(encPayload) || !isB64URL(encMAC) {
		return Token{}, ErrInvalidToken
	}
	secret, ok := k.secrets[kid]
	if !ok {
		return Token{}, ErrInvalidToken
	}
	if len(encPayload) > b64.EncodedLen(payloadMax) || len(encMAC) != b64.EncodedLen(macLen) {
		return Token{}, ErrInvalidToken
	}
	payload, err := b64.DecodeString(encPayload)
	if err != nil {
		return Token{}, ErrInvalidToken
	}
	mac, err := b64.DecodeString(encMAC)
	if err != nil || len(mac) != macLen {
		return Token{}, ErrInvalidToken
	}
	// Authenticate before parsing: nothing about an unauthenticated payload is looked at.
	if !hmac.Equal(mac, tokenMAC(secret, kid, payload)) {
		return Token{}, ErrInvalidToken
	}
	if len(payload) < payloadMin || len(payload) > payloadMax {
		return Token{}, ErrInvalidToken
	}
	t := Token{Kind: Kind(payload[0])}
	copy(t.SendID[:], payload[1:17])
	link, n := binary.Uvarint(payload[17:])
	switch {
	case n <= 0, 17+n != len(payload): // malformed, or trailing bytes
		return Token{}, ErrInvalidToken
	case n != uvarintLen(link): // overlong encoding: not canonical
		return Token{}, ErrInvalidToken
	case link > maxLink:
		return Token{}, ErrInvalidToken
	}
	t.Link = int(link)
	if t.validate() != nil {
		return Token{}, ErrInvalidToken
	}
	return t, nil
}

func uvarintLen(v uint64) int {
	var buf [binary.MaxVarintLen64]byte
	return binary.PutUvarint(buf[:], v)
}

func isB64URL(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}
