package rollout

import (
	"testing"
	"time"

	"github.com/tendhq/tend/internal/content"
	"github.com/tendhq/tend/internal/lifecycle"
	"github.com/tendhq/tend/internal/pgtest"
	"github.com/tendhq/tend/internal/sequence"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

const day = 24 * time.Hour

func step(id string, wait time.Duration) sequence.Step {
	return sequence.Step{ID: id, Template: id, Subject: "About " + id, Wait: wait}
}

func series(id string, steps ...sequence.Step) sequence.Sequence {
	return sequence.Sequence{ID: id, Window: sequence.Window{Cron: "* * * * *", TimeZone: "UTC"}, Steps: steps,
		Exit: sequence.Exit{Stages: []lifecycle.Stage{lifecycle.Stage("customer")}, Unsubscribed: true}}
}

// currentCatalog is the published version: four segments and a re-engagement series.
func currentCatalog() *sequence.Catalog {
	return &sequence.Catalog{
		DefaultSegment: "general",
		Segments: []sequence.Segment{
			{ID: "analytics", Interests: []string{"analytics"}, Sequence: series("analytics-series",
				step("intro", 0), step("deep-dive", 2*day), step("case-study", 3*day))},
			{ID: "automation", Interests: []string{"automation"}, Sequence: series("automation-series",
				step("intro", 0), step("deep-dive", day))},
			{ID: "webinars", Interests: []string{"webinars"}, Sequence: series("webinar-series",
				step("invite", 0), step("replay", day))},
			{ID: "general", Sequence: series("general-series", step("welcome", 0))},
		},
		Reengagement: &sequence.Reengagement{After: 30 * day, Sequence: series("reengagement",
			step("still-interested", 0), step("last-call", 7*day))},
	}
}

// proposedCatalog shortens analytics' deep-dive wait (and rewrites its subject), replaces its
// case study by a wrap-up, removes the webinars segment and adds a pricing one.
func proposedCatalog() *sequence.Catalog {
	c := currentCatalog()
	deep := step("deep-dive", day)
	deep.Subject = "A shorter road to a better report"
	c.Segments[0].Sequence = series("analytics-series", step("intro", 0), deep, step("wrap-up", 3*day))
	c.Segments = append(c.Segments[:2], c.Segments[3],
		sequence.Segment{ID: "pricing", Interests: []string{"pricing"}, Sequence: series("pricing-series", step("plans", 0))})
	return c
}

func set(c *sequence.Catalog) *content.Set { return &content.Set{Catalog: c} }
