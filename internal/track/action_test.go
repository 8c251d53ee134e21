package track

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestActionTokens(t *testing.T) {
	keys, err := ParseKeys(GenerateKey("k2") + "," + GenerateKey("k1"))
	require.NoError(t, err)
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	a := Action{Kind: ActionAccept, LeadID: [16]byte{1, 2, 3}, Handoff: 42, Rep: "rep-mia", Expires: now.Add(48 * time.Hour)}
	tok := keys.SignAction(a)
	got, err := keys.VerifyAction(tok, now)
	require.NoError(t, err)
	assert.Equal(t, a.Kind, got.Kind)
	assert.Equal(t, a.LeadID, got.LeadID)
	assert.Equal(t, int64(42), got.Handoff)
	assert.Equal(t, "rep-mia", got.Rep)

	_, err = keys.VerifyAction(tok, now.Add(48*time.Hour))
	assert.ErrorIs(t, err, ErrInvalidToken, "expired")
	for i := range tok {
		if tok[i] == '.' {
			continue
		}
		b := []byte(tok)
		b[i] ^= 1
		_, err := keys.VerifyAction(string(b), now)
		assert.ErrorIs(t, err, ErrInvalidToken, "flipped byte %d", i)
	}
	for i := 0; i < len(tok); i++ {
		_, err := keys.VerifyAction(tok[:i], now)
		assert.ErrorIs(t, err, ErrInvalidToken, "prefix %d", i)
	}
	other, _ := ParseKeys(GenerateKey("k2"))
	_, err = keys.VerifyAction(other.SignAction(a), now)
	assert.ErrorIs(t, err, ErrInvalidToken, "foreign key")
	// A click token is not an action token and vice versa.
	click := keys.Sign(Token{Kind: KindClick, SendID: [16]byte{1}, Link: 1})
	_, err = keys.VerifyAction(click, now)
	assert.ErrorIs(t, err, ErrInvalidToken)
	_, err = keys.Verify(tok)
	assert.ErrorIs(t, err, ErrInvalidToken)
}

// A desk link names a person and no lead; it verifies as its own kind, and an unknown kind does
// not verify at all.
func TestDeskTokens(t *testing.T) {
	keys, err := ParseKeys(GenerateKey("k1"))
	require.NoError(t, err)
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	got, err := keys.VerifyAction(keys.SignAction(Action{Kind: ActionDesk, Rep: "mgr-eva", Expires: now.Add(time.Hour)}), now)
	require.NoError(t, err)
	assert.Equal(t, ActionDesk, got.Kind)
	assert.Equal(t, "mgr-eva", got.Rep)
	assert.Equal(t, [16]byte{}, got.LeadID)
	_, err = keys.VerifyAction(keys.SignAction(Action{Kind: 'X', Rep: "rep-jonas", Expires: now.Add(time.Hour)}), now)
	assert.ErrorIs(t, err, ErrInvalidToken)
}
