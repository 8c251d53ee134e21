package engage_test

import (
	"context"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/tendhq/tend/internal/content"
	"github.com/tendhq/tend/internal/sequence"
	"github.com/tendhq/tend/internal/track"
)

// The preference centre offers the interests of the sequences in use: a new version's interests
// appear on the next visit, without a restart.
func TestPreferencesOfferTheLiveInterests(t *testing.T) {
	svc, claim, _ := claimed(t)
	ctx := context.Background()
	require.NoError(t, claim.MarkSent(ctx, "Welcome", 250))
	token := svc.Keys.Sign(track.Token{Kind: track.KindUnsubscribe, SendID: uuid.MustParse(claim.Send.ID)})

	catalog := func(interests string) *sequence.Catalog {
		c, diags := sequence.Parse("s.yaml", []byte(strings.ReplaceAll(`version: 1
default_segment: general
segments:
  - id: analytics
    interests: [INTERESTS]
    sequence: {id: a, steps: [{id: one, template: t, subject: s, wait: 0s}]}
  - id: general
    sequence: {id: g, steps: [{id: one, template: t, subject: s, wait: 0s}]}
`, "INTERESTS", interests)), sequence.Options{})
		require.Empty(t, diags)
		return c
	}
	svc.Live = content.Static(&content.Set{Catalog: catalog("analytics")})
	p, err := svc.Preferences(ctx, token)
	require.NoError(t, err)
	require.Equal(t, []string{"analytics"}, p.Interests)

	svc.Live.Swap(&content.Set{Catalog: catalog("analytics, dashboards")})
	p, err = svc.Preferences(ctx, token)
	require.NoError(t, err)
	require.Equal(t, []string{"analytics", "dashboards"}, p.Interests)
}
