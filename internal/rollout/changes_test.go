package rollout

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/tendhq/tend/internal/sequence"
)

func TestChangedSequences(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		edit   func(c *sequence.Catalog)
		want   map[string]Change
		scope  Scope
		remark string
	}{
		{
			name:  "nothing changed",
			edit:  func(*sequence.Catalog) {},
			want:  map[string]Change{"analytics-series": Unchanged, "automation-series": Unchanged, "webinar-series": Unchanged, "general-series": Unchanged, "reengagement": Unchanged},
			scope: Scope{Sequences: []string{}, Segments: []string{}},
		},
		{
			name:  "a changed wait",
			edit:  func(c *sequence.Catalog) { c.Segments[1].Sequence.Steps[1].Wait = 2 * day },
			want:  map[string]Change{"analytics-series": Unchanged, "automation-series": Changed, "webinar-series": Unchanged, "general-series": Unchanged, "reengagement": Unchanged},
			scope: Scope{Sequences: []string{"automation-series"}, Segments: []string{"automation"}},
		},
		{
			name:  "a changed subject",
			edit:  func(c *sequence.Catalog) { c.Segments[0].Sequence.Steps[0].Subject = "Hello again" },
			want:  map[string]Change{"analytics-series": Changed, "automation-series": Unchanged, "webinar-series": Unchanged, "general-series": Unchanged, "reengagement": Unchanged},
			scope: Scope{Sequences: []string{"analytics-series"}, Segments: []string{"analytics"}},
		},
		{
			name: "a new default send window reaches every sequence it is folded into",
			edit: func(c *sequence.Catalog) {
				for i := range c.Segments {
					c.Segments[i].Sequence.Window.Cron = "* 9-17 * * 1-5"
				}
			},
			want:  map[string]Change{"analytics-series": Changed, "automation-series": Changed, "webinar-series": Changed, "general-series": Changed, "reengagement": Unchanged},
			scope: Scope{Sequences: []string{"analytics-series", "automation-series", "webinar-series", "general-series"}, Segments: []string{"analytics", "automation", "webinars", "general"}},
		},
		{
			name:  "a segment's interests changed, not its sequence",
			edit:  func(c *sequence.Catalog) { c.Segments[0].Interests = []string{"analytics", "bi"} },
			want:  map[string]Change{"analytics-series": Unchanged, "automation-series": Unchanged, "webinar-series": Unchanged, "general-series": Unchanged, "reengagement": Unchanged},
			scope: Scope{Sequences: []string{}, Segments: []string{}},
		},
		{
			name:  "the re-engagement series changed: every lead is in scope",
			edit:  func(c *sequence.Catalog) { c.Reengagement.Sequence.Steps[1].Wait = 3 * day },
			want:  map[string]Change{"analytics-series": Unchanged, "automation-series": Unchanged, "webinar-series": Unchanged, "general-series": Unchanged, "reengagement": Changed},
			scope: Scope{Sequences: []string{"reengagement"}, Segments: []string{}, Reengagement: true},
		},
		{
			name:  "the re-engagement series removed",
			edit:  func(c *sequence.Catalog) { c.Reengagement = nil },
			want:  map[string]Change{"analytics-series": Unchanged, "automation-series": Unchanged, "webinar-series": Unchanged, "general-series": Unchanged, "reengagement": Removed},
			scope: Scope{Sequences: []string{"reengagement"}, Segments: []string{}, Reengagement: true},
		},
		{
			name: "a removed segment and an added one",
			edit: func(c *sequence.Catalog) {
				*c = *proposedCatalog()
			},
			want:  map[string]Change{"analytics-series": Changed, "automation-series": Unchanged, "webinar-series": Removed, "general-series": Unchanged, "reengagement": Unchanged, "pricing-series": Added},
			scope: Scope{Sequences: []string{"analytics-series", "webinar-series"}, Segments: []string{"analytics", "webinars"}},
		},
		{
			name: "a wait if clicked added",
			edit: func(c *sequence.Catalog) {
				d := time.Hour
				c.Segments[2].Sequence.Steps[1].WaitIfClicked = &d
			},
			want:  map[string]Change{"analytics-series": Unchanged, "automation-series": Unchanged, "webinar-series": Changed, "general-series": Unchanged, "reengagement": Unchanged},
			scope: Scope{Sequences: []string{"webinar-series"}, Segments: []string{"webinars"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cur, next := currentCatalog(), currentCatalog()
			tt.edit(next)
			got := map[string]Change{}
			for _, c := range ChangedSequences(cur, next) {
				got[c.ID] = c.Change
				assert.Equal(t, c.ID == "reengagement", c.Reengagement, c.ID)
			}
			assert.Equal(t, tt.want, got)
			assert.Equal(t, tt.scope, ScopeOf(cur, next))
		})
	}
}

// The current catalog's sequences come first, in file order, then the added ones.
func TestChangedSequencesOrder(t *testing.T) {
	t.Parallel()
	var ids []string
	for _, c := range ChangedSequences(currentCatalog(), proposedCatalog()) {
		ids = append(ids, c.ID)
	}
	assert.Equal(t, []string{"analytics-series", "automation-series", "webinar-series", "general-series", "reengagement", "pricing-series"}, ids)
}
