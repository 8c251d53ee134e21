package track

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"strings"
	"time"
)

// ActionKind names what an action link does. Each link does one thing only.
type ActionKind byte

// Action kinds: a rep accepting or rejecting a lead handed to them, and the link to a person's
// desk (the page of the handoffs they answer for), which names no lead.
const (
	ActionAccept ActionKind = 'A'
	ActionReject ActionKind = 'R'
	ActionDesk   ActionKind = 'D'
)

// Action is a signed, expiring, single-purpose link for a person of the sales team: it names the
// action, the lead, the handoff row and the rep it was sent to.
type Action struct {
	Kind    ActionKind
	LeadID  [16]byte
	Handoff int64
	Rep     string
	Expires time.Time
}

const actionPrefix = "tend/action/v1"

// SignAction returns a URL-safe token for a.
func (k *Keys) SignAction(a Action) string {
	payload := []byte{byte(a.Kind)}
	payload = append(payload, a.LeadID[:]...)
	payload = binary.AppendUvarint(payload, uint64(a.Handoff))
	payload = binary.AppendUvarint(payload, uint64(a.Expires.Unix()))
	payload = append(payload, a.Rep...)
	kid := k.signing
	return kid + "." + b64.EncodeToString(payload) + "." + b64.EncodeToString(actionMAC(k.secrets[kid], kid, payload))
}

// VerifyAction checks a token from SignAction and that it has not expired at now. Every failure is
// ErrInvalidToken.
func (k *Keys) VerifyAction(s string, now time.Time) (Action, error) {
	var a Action
	if len(s) > 300 {
		return a, ErrInvalidToken
	}
	parts := strings.Split(s, ".")
	if len(parts) != 3 {
		return a, ErrInvalidToken
	}
	secret, ok := k.secrets[parts[0]]
	if !ok {
		return a, ErrInvalidToken
	}
	payload, err := b64.DecodeString(parts[1])
	if err != nil || b64.EncodeToString(payload) != parts[1] {
		return a, ErrInvalidToken
	}
	mac, err := b64.DecodeString(parts[2])
	if err != nil || !hmac.Equal(mac, actionMAC(secret, parts[0], payload)) {
		return a, ErrInvalidToken
	}
	if len(payload) < 17 {
		return a, ErrInvalidToken
	}
	a.Kind = ActionKind(payload[0])
	if a.Kind != ActionAccept && a.Kind != ActionReject && a.Kind != ActionDesk {
		return a, ErrInvalidToken
	}
	copy(a.LeadID[:], payload[1:17])
	rest := payload[17:]
	h, n := binary.Uvarint(rest)
	if n <= 0 {
		return a, ErrInvalidToken
	}
	rest = rest[n:]
	exp, n := binary.Uvarint(rest)
	if n <= 0 {
		return a, ErrInvalidToken
	}
	a.Handoff, a.Expires, a.Rep = int64(h), time.Unix(int64(exp), 0), string(rest[n:])
	if !now.Before(a.Expires) {
		return a, ErrInvalidToken
	}
	return a, nil
}

func actionMAC(secret []byte, kid string, payload []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(actionPrefix))
	m.Write([]byte{0})
	m.Write([]byte(kid))
	m.Write([]byte{0})
	m.Write(payload)
	return m.Sum(nil)[:macLen]
}
