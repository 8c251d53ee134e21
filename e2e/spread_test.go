package e2e

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A step that falls due outside the send window goes out when the window opens plus its lead's
// spread offset, on the real parts: the window opens every other minute, the second step falls due
// a minute after the first email, always in an odd minute, and arrives in the next even minute at
// the second the lead's offset says.
func TestSpreadSendsAtTheLeadsSlotOnRealParts(t *testing.T) {
	t.Parallel()
	s := setup(t, options{live: true, sequences: "testdata/spread.yaml"})
	seq, ok := s.deps.Live.Current().Catalog.Sequence("spread-series")
	require.True(t, ok)
	require.Equal(t, 50*time.Second, seq.Window.Spread)
	code, body := s.post("/api/v1/leads", map[string]any{"email": "spread@example.com", "name": "Spread Lead",
		"interests": []string{"analytics"}, "source": "api", "consent": map[string]any{"granted": true, "wording_id": "spread"}})
	require.Equal(t, 201, code, "%v", body)
	leadID := body["id"].(string)
	msgs := s.waitMessages(2, 5*time.Minute, 3*time.Second)
	require.Len(t, msgs, 2)
	at := map[string]time.Time{}
	for _, m := range msgs {
		at[m.Subject] = m.Received.UTC()
	}
	first, second := at["Spread first"], at["Spread second"]
	require.False(t, first.IsZero() || second.IsZero(), "both emails arrive: %v", at)

	// The first email: at once when captured in an open (even) minute, else at its slot.
	assert.Zero(t, first.Minute()%2, "the first email goes out in an open minute, at %s", first)
	// The second falls due a minute later, in a closed minute: the next opening plus the offset.
	opening := first.Add(time.Minute).Truncate(2 * time.Minute).Add(2 * time.Minute)
	want := opening.Add(seq.Window.SpreadOffset(leadID, seq.ID, "second"))
	assert.WithinDuration(t, want, second, 3*time.Second, "the second email at the lead's slot (opening %s)", opening)
	assert.Zero(t, second.Minute()%2, "and inside the window")
	s.recordScenario("lead-send-spread", leadID)
}
