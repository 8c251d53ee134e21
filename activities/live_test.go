package activities

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tendhq/tend/internal/content"
	"github.com/tendhq/tend/internal/db"
	"github.com/tendhq/tend/internal/dbtest"
	"github.com/tendhq/tend/internal/lifecycle"
	"github.com/tendhq/tend/internal/render"
	"github.com/tendhq/tend/internal/sequence"
	"github.com/tendhq/tend/templates"
)

func emailSetup(t *testing.T, attrs map[string]string) (*Email, *recordingMailer, *db.Store, string) {
	t.Helper()
	store := dbtest.Store(t)
	r, err := render.New(templates.FS)
	require.NoError(t, err)
	c, err := store.RecordCapture(context.Background(), db.Capture{Email: "grace@example.com", Name: "Grace", Source: "api",
		Segment: "analytics", Stage: "lead", Attributes: attrs, Interests: []string{"analytics"}})
	require.NoError(t, err)
	m := &recordingMailer{}
	return &Email{Store: store, Mailer: m, Renderer: r, From: From{Name: "Acme", Address: "news@example.com", Domain: "example.com"}}, m, store, c.Lead.ID
}

func countRows(t *testing.T, store *db.Store, sql string, args ...any) int {
	t.Helper()
	var n int
	require.NoError(t, store.Pool().QueryRow(context.Background(), sql, args...).Scan(&n))
	return n
}

// A send of a paused step claims nothing and mails nothing: the lead is held, in the order its
// send fell due. Once resumed, the released send goes out and the hold is gone.
func TestPausedStepHoldsTheSendAndResumeReleasesIt(t *testing.T) {
	ctx := context.Background()
	a, m, store, id := emailSetup(t, nil)
	_, err := store.Pool().Exec(ctx, `INSERT INTO sequence_pauses (sequence_id, step_id, paused_by) VALUES ('analytics-series', 'deep-dive', 'test')`)
	require.NoError(t, err)
	in := SendInput{LeadID: id, SequenceID: "analytics-series", StepID: "deep-dive", Template: "analytics-2", Subject: "Two", Pausable: true}
	res, err := a.SendStep(ctx, in)
	require.NoError(t, err)
	assert.Equal(t, StatusPaused, res.Status)
	assert.Empty(t, m.sent)
	assert.Zero(t, countRows(t, store, `SELECT count(*) FROM sends WHERE lead_id = $1`, id), "nothing claimed")
	assert.Equal(t, 1, countRows(t, store, `SELECT count(*) FROM held_sends WHERE lead_id = $1 AND step_id = 'deep-dive'`, id))

	// A run from before pauses existed does not ask, and is not held.
	old := in
	old.Pausable, old.StepID = false, "intro"
	res, err = a.SendStep(ctx, old)
	require.NoError(t, err)
	assert.Equal(t, StatusSent, res.Status)

	_, err = store.Pool().Exec(ctx, `DELETE FROM sequence_pauses`)
	require.NoError(t, err)
	in.Released = true
	res, err = a.SendStep(ctx, in)
	require.NoError(t, err)
	assert.Equal(t, StatusSent, res.Status)
	assert.Len(t, m.sent, 2)
	assert.Zero(t, countRows(t, store, `SELECT count(*) FROM held_sends WHERE lead_id = $1`, id))
}

// A pause of the whole sequence (step ”) holds every step of it.
func TestPausedSequenceHoldsEveryStep(t *testing.T) {
	ctx := context.Background()
	a, m, store, id := emailSetup(t, nil)
	_, err := store.Pool().Exec(ctx, `INSERT INTO sequence_pauses (sequence_id, paused_by) VALUES ('analytics-series', 'test')`)
	require.NoError(t, err)
	res, err := a.SendStep(ctx, SendInput{LeadID: id, SequenceID: "analytics-series", StepID: "case-study", Template: "analytics-3", Subject: "Three", Pausable: true})
	require.NoError(t, err)
	assert.Equal(t, StatusPaused, res.Status)
	res, err = a.SendStep(ctx, SendInput{LeadID: id, SequenceID: "general-series", StepID: "welcome", Template: "general-1", Subject: "Hi", Pausable: true})
	require.NoError(t, err)
	assert.Equal(t, StatusSent, res.Status, "another sequence is not paused")
	assert.Len(t, m.sent, 1)
}

// A holdout lead's step is recorded as done and never mailed; a variant is recorded with the send
// and its subject is the one mailed.
func TestHoldoutIsRecordedNotMailedAndVariantsAreRecorded(t *testing.T) {
	ctx := context.Background()
	a, m, store, id := emailSetup(t, nil)
	res, err := a.SendStep(ctx, SendInput{LeadID: id, SequenceID: "analytics-series", StepID: "intro", Template: "analytics-1", Subject: "One", Holdout: true})
	require.NoError(t, err)
	assert.Equal(t, StatusHeldOut, res.Status)
	assert.Empty(t, m.sent)
	res, err = a.SendStep(ctx, SendInput{LeadID: id, SequenceID: "analytics-series", StepID: "deep-dive", Template: "analytics-2",
		Subject: "Bold subject", Variant: "bold", ContentVersion: 3})
	require.NoError(t, err)
	assert.Equal(t, StatusSent, res.Status)
	require.Len(t, m.sent, 1)
	assert.Equal(t, "Bold subject", m.sent[0].Subject)
	var status, variant string
	var version int
	require.NoError(t, store.Pool().QueryRow(ctx, `SELECT status, variant, content_version FROM sends WHERE lead_id = $1 AND step_id = 'deep-dive'`, id).Scan(&status, &variant, &version))
	assert.Equal(t, []any{"sent", "bold", 3}, []any{status, variant, version})
	require.NoError(t, store.Pool().QueryRow(ctx, `SELECT status FROM sends WHERE lead_id = $1 AND step_id = 'intro'`, id).Scan(&status))
	assert.Equal(t, "held_out", status)

	// A fresh plan never repeats a held-out step.
	leads := &Leads{Store: store, Catalog: exampleCatalog(t)}
	p, err := leads.Plan(ctx, PlanInput{LeadID: id})
	require.NoError(t, err)
	assert.Contains(t, p.Done, "intro")
}

// A step whose attribute conditions do not hold for the lead is skipped before anything is claimed.
func TestAttributeConditionsAreCheckedBeforeTheClaim(t *testing.T) {
	ctx := context.Background()
	a, m, store, id := emailSetup(t, map[string]string{"industry": "Retail", "employees": "40"})
	min50 := 50.0
	in := SendInput{LeadID: id, SequenceID: "analytics-series", StepID: "intro", Template: "analytics-1", Subject: "One",
		Attributes: []sequence.AttributeCondition{{Name: "industry", In: []string{"saas", "retail"}}, {Name: "employees", Range: &sequence.Range{Min: &min50}}}}
	res, err := a.SendStep(ctx, in)
	require.NoError(t, err)
	assert.Equal(t, StatusSkipped, res.Status, "40 employees is below the range")
	assert.Empty(t, m.sent)
	assert.Zero(t, countRows(t, store, `SELECT count(*) FROM sends WHERE lead_id = $1`, id))
	in.Attributes = in.Attributes[:1]
	res, err = a.SendStep(ctx, in)
	require.NoError(t, err)
	assert.Equal(t, StatusSent, res.Status, "retail matches, ignoring case")
}

func exampleCatalog(t *testing.T) *sequence.Catalog {
	t.Helper()
	cat, err := sequence.Load("../examples/sequences.yaml", sequence.Options{})
	require.NoError(t, err)
	return cat
}

// Reaching a sequence's goal by event is reported and recorded once, also when the rescore runs
// again; a machine event does not reach it; a stage goal is reached by that stage or a later one.
func TestRescoreReachesTheGoalOnceByEventOrStage(t *testing.T) {
	ctx := context.Background()
	a, store, id := rescoreSetup(t)
	goal := &sequence.Goal{Event: "webinar_registration"}
	in := RescoreInput{LeadID: id, SequenceID: "general-series", Goal: goal}
	_, err := store.InsertEvents(ctx, []db.Event{{LeadID: id, Type: "webinar_registration", Machine: true}})
	require.NoError(t, err)
	res, err := a.Rescore(ctx, in)
	require.NoError(t, err)
	assert.False(t, res.GoalReached, "a machine's hit is not the lead's")
	addEvents(t, store, id, "webinar_registration")
	res, err = a.Rescore(ctx, in)
	require.NoError(t, err)
	assert.True(t, res.GoalReached)
	res, err = a.Rescore(ctx, in)
	require.NoError(t, err)
	assert.True(t, res.GoalReached, "a retry still reports it")
	assert.Equal(t, 1, countRows(t, store, `SELECT count(*) FROM conversions WHERE lead_id = $1 AND sequence_id = 'general-series'`, id))

	res, err = a.Rescore(ctx, RescoreInput{LeadID: id, SequenceID: "nurture-2", Goal: &sequence.Goal{Stage: lifecycle.MQL}})
	require.NoError(t, err)
	assert.False(t, res.GoalReached, "still a lead")
	addEvents(t, store, id, "demo_request") // a hand-raise: MQL
	res, err = a.Rescore(ctx, RescoreInput{LeadID: id, SequenceID: "nurture-2", Goal: &sequence.Goal{Stage: lifecycle.Lead}})
	require.NoError(t, err)
	assert.True(t, res.GoalReached, "MQL is past lead in the funnel")
}

// Follow reads the lead's sequence from the live content, refuses a version it has not loaded yet,
// and for a sequence that is gone names the segment the lead's interests map to now.
func TestFollowReadsTheLiveSequence(t *testing.T) {
	ctx := context.Background()
	store := dbtest.Store(t)
	cat := exampleCatalog(t)
	c, err := store.RecordCapture(ctx, db.Capture{Email: "lin@example.com", Source: "api", Segment: "analytics", Stage: "lead", Interests: []string{"analytics"}})
	require.NoError(t, err)
	live := content.Static(&content.Set{Catalog: cat, Versions: map[content.Kind]int{content.Sequences: 4}})
	a := &Leads{Store: store, Live: live}
	res, err := a.Follow(ctx, FollowInput{LeadID: c.Lead.ID, SequenceID: "analytics-series", Version: 4})
	require.NoError(t, err)
	assert.True(t, res.Found)
	assert.Equal(t, 4, res.Version)
	assert.Equal(t, "analytics", res.Segment)
	want, _ := cat.Sequence("analytics-series")
	assert.Equal(t, want, res.Sequence)

	_, err = a.Follow(ctx, FollowInput{LeadID: c.Lead.ID, SequenceID: "analytics-series", Version: 5})
	assert.ErrorContains(t, err, "version 5 is not loaded here yet")

	smaller := *cat
	smaller.Segments = nil
	for _, s := range cat.Segments {
		if s.ID != "analytics" {
			smaller.Segments = append(smaller.Segments, s)
		}
	}
	live.Swap(&content.Set{Catalog: &smaller, Versions: map[content.Kind]int{content.Sequences: 5}})
	res, err = a.Follow(ctx, FollowInput{LeadID: c.Lead.ID, SequenceID: "analytics-series", Version: 5})
	require.NoError(t, err)
	assert.False(t, res.Found)
	assert.Equal(t, smaller.DefaultSegment, res.Segment, "no segment left for analytics: the default")
}

// A series whose goal the lead reached is done: planned again (a later capture queues it), it
// has every step finished, so nothing of it is sent again.
func TestPlanOfASeriesWhoseGoalWasReachedIsDone(t *testing.T) {
	ctx := context.Background()
	store := dbtest.Store(t)
	c, err := store.RecordCapture(ctx, db.Capture{Email: "kim@example.com", Source: "api", Segment: "analytics", Stage: "lead", Interests: []string{"analytics"}})
	require.NoError(t, err)
	a := &Leads{Store: store, Catalog: exampleCatalog(t)}
	p, err := a.Plan(ctx, PlanInput{LeadID: c.Lead.ID})
	require.NoError(t, err)
	assert.Empty(t, p.Done)
	_, err = store.RecordConversion(ctx, c.Lead.ID, "analytics-series", "event demo_request", 0, false)
	require.NoError(t, err)
	p, err = a.Plan(ctx, PlanInput{LeadID: c.Lead.ID})
	require.NoError(t, err)
	assert.Equal(t, []string{"intro", "deep-dive", "case-study"}, p.Done)
}
