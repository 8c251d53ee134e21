package db_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tendhq/tend/internal/db"
	"github.com/tendhq/tend/internal/dbtest"
	"github.com/tendhq/tend/internal/pgtest"
	"github.com/tendhq/tend/internal/sales"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// setupReportDB returns a store over a fresh, migrated database.
func setupReportDB(t *testing.T) *db.Store {
	t.Helper()
	return dbtest.Store(t)
}

// nov is a day in November 2026, UTC, plus hours.
func nov(day int, hours ...int) time.Time {
	h := 0
	if len(hours) > 0 {
		h = hours[0]
	}
	return time.Date(2026, time.November, day, h, 0, 0, 0, time.UTC)
}

// reportFixtures inserts rows straight into the tables the reports read.
type reportFixtures struct {
	t     *testing.T
	store *db.Store
}

func (f reportFixtures) exec(sql string, args ...any) {
	f.t.Helper()
	_, err := f.store.Pool().Exec(context.Background(), sql, args...)
	require.NoError(f.t, err, sql)
}

func (f reportFixtures) lead(source, stage string, created time.Time) string {
	f.t.Helper()
	id := uuid.NewString()
	f.exec(`INSERT INTO leads (id, email, source, segment, stage, created_at) VALUES ($1, $2, $3, 'b2b', $4, $5)`,
		id, id+"@example.com", source, stage, created)
	return id
}

// move records one step of the lead's stage history.
func (f reportFixtures) move(lead, from, to string, at time.Time) {
	f.t.Helper()
	f.exec(`INSERT INTO stage_changes (lead_id, from_stage, to_stage, reason, changed_at) VALUES ($1, $2, $3, 'test', $4)`,
		lead, from, to, at)
}

func (f reportFixtures) opportunity(lead, outcome string, value float64, closed *time.Time) {
	f.t.Helper()
	f.exec(`INSERT INTO opportunities (lead_id, rep_id, opened_at, closed_at, outcome, value, currency)
		VALUES ($1, 'ana', $2, $3, $4, $5, 'EUR')`, lead, nov(1), closed, outcome, value)
}

type handoffFixture struct {
	rep, policy  string
	at           time.Time
	responseSecs *float64
	outcome      string
	lapses       int
	rejectReason string
	// due is the deadline; zero means an hour after at.
	due time.Time
}

func (f reportFixtures) handoff(h handoffFixture) {
	f.t.Helper()
	lead := f.lead("web", "sal", h.at)
	var responded *time.Time
	if h.responseSecs != nil {
		r := h.at.Add(time.Duration(*h.responseSecs * float64(time.Second)))
		responded = &r
	}
	if h.due.IsZero() {
		h.due = h.at.Add(time.Hour)
	}
	f.exec(`INSERT INTO handoffs (lead_id, seq, assignment, rep_id, policy, reason, handed_off_at, due_at,
			responded_at, response_seconds, outcome, lapses, reject_reason)
		VALUES ($1, 1, 1, $2, $3, 'score', $4, $5, $6, $7, $8, $9, $10)`,
		lead, h.rep, h.policy, h.at, h.due, responded, h.responseSecs, h.outcome, h.lapses, h.rejectReason)
}

func secs(s float64) *float64 { return &s }

func at(t time.Time) *time.Time { return &t }

// seedFunnel builds two sources' worth of November leads, plus leads outside November.
func seedFunnel(t *testing.T, store *db.Store) {
	f := reportFixtures{t: t, store: store}

	// ebook_download: a customer who walked the whole funnel in 10 days from SQL to won …
	a := f.lead("ebook_download", "customer", nov(2))
	f.move(a, "lead", "mql", nov(3))
	f.move(a, "mql", "sql", nov(5, 12))
	f.move(a, "sql", "opportunity", nov(6))
	f.move(a, "opportunity", "customer", nov(15, 12))
	f.opportunity(a, "won", 1000, at(nov(15, 12)))
	// … a customer imported as such (no history: SQL from creation), won 4 days later, with a
	// lost and an open opportunity that must not count …
	b := f.lead("ebook_download", "customer", nov(4))
	f.opportunity(b, "won", 500.50, at(nov(8)))
	f.opportunity(b, "lost", 7000, at(nov(9)))
	f.opportunity(b, "open", 8000, nil)
	// … a lead recycled after SAL, a plain lead and a subscriber, who reached no reported stage.
	c := f.lead("ebook_download", "recycled", nov(6))
	f.move(c, "lead", "mql", nov(7))
	f.move(c, "mql", "sal", nov(8))
	f.move(c, "sal", "recycled", nov(9))
	f.lead("ebook_download", "lead", nov(10))
	f.lead("ebook_download", "subscriber", nov(11))

	// webinar: an MQL disqualified, an SQL with a lost deal, an opportunity still open.
	d := f.lead("webinar", "disqualified", nov(12))
	f.move(d, "mql", "disqualified", nov(13))
	e := f.lead("webinar", "sql", nov(14))
	f.move(e, "lead", "sql", nov(15))
	f.opportunity(e, "lost", 999, at(nov(20)))
	g := f.lead("webinar", "opportunity", nov(16))
	f.move(g, "lead", "mql", nov(17))
	f.move(g, "mql", "sql", nov(18))
	f.opportunity(g, "open", 300, nil)

	// Outside November: a won customer in October, a partner lead at the exclusive end.
	old := f.lead("ebook_download", "customer", nov(1).AddDate(0, 0, -17))
	f.opportunity(old, "won", 5000, at(nov(1).AddDate(0, 0, -1)))
	f.lead("partner", "lead", nov(1).AddDate(0, 1, 0))
}

func stageCounts(fn db.Funnel) map[string]int {
	out := map[string]int{}
	for _, s := range fn.Stages {
		out[s.Stage] = s.Leads
	}
	return out
}

func rates(fn db.Funnel) []float64 {
	var out []float64
	for _, c := range fn.Conversions {
		out = append(out, c.Rate)
	}
	return out
}

func TestReportFunnel(t *testing.T) {
	t.Parallel()
	store := setupReportDB(t)
	seedFunnel(t, store)
	ctx := context.Background()
	november := db.FunnelFilter{From: nov(1), To: nov(1).AddDate(0, 1, 0)}

	t.Run("overall", func(t *testing.T) {
		fn, err := store.Funnel(ctx, november)
		require.NoError(t, err)
		assert.Equal(t, "", fn.Source)
		require.Len(t, fn.Stages, 5)
		assert.Equal(t, []db.FunnelStage{{Stage: "lead", Leads: 7}, {Stage: "mql", Leads: 6}, {Stage: "sal", Leads: 5}, {Stage: "sql", Leads: 4}, {Stage: "customer", Leads: 2}}, fn.Stages)
		assert.Equal(t, []db.Conversion{
			{From: "lead", To: "mql", Rate: 6.0 / 7}, {From: "mql", To: "sal", Rate: 5.0 / 6},
			{From: "sal", To: "sql", Rate: 4.0 / 5}, {From: "sql", To: "customer", Rate: 0.5},
		}, fn.Conversions)
		require.NotNil(t, fn.SQLToWonDays)
		assert.InDelta(t, 7.0, *fn.SQLToWonDays, 1e-9, "mean of 10 and 4 days")
		assert.InDelta(t, 1500.50, fn.RevenueFromSQLs, 1e-9)
	})

	t.Run("by source", func(t *testing.T) {
		fns, err := store.FunnelBySource(ctx, november)
		require.NoError(t, err)
		require.Len(t, fns, 2)

		ebook := fns[0]
		assert.Equal(t, "ebook_download", ebook.Source)
		assert.Equal(t, map[string]int{"lead": 4, "mql": 3, "sal": 3, "sql": 2, "customer": 2}, stageCounts(ebook))
		assert.Equal(t, []float64{0.75, 1, 2.0 / 3, 1}, rates(ebook))
		require.NotNil(t, ebook.SQLToWonDays)
		assert.InDelta(t, 7.0, *ebook.SQLToWonDays, 1e-9)
		assert.InDelta(t, 1500.50, ebook.RevenueFromSQLs, 1e-9)

		webinar := fns[1]
		assert.Equal(t, "webinar", webinar.Source)
		assert.Equal(t, map[string]int{"lead": 3, "mql": 3, "sal": 2, "sql": 2, "customer": 0}, stageCounts(webinar))
		assert.Equal(t, []float64{1, 2.0 / 3, 1, 0}, rates(webinar))
		assert.Nil(t, webinar.SQLToWonDays, "no webinar lead has won")
		assert.Zero(t, webinar.RevenueFromSQLs, "lost and open opportunities are not revenue")
	})

	t.Run("one source", func(t *testing.T) {
		f := november
		f.Source = "webinar"
		fn, err := store.Funnel(ctx, f)
		require.NoError(t, err)
		assert.Equal(t, "webinar", fn.Source)
		assert.Equal(t, map[string]int{"lead": 3, "mql": 3, "sal": 2, "sql": 2, "customer": 0}, stageCounts(fn))
		fns, err := store.FunnelBySource(ctx, f)
		require.NoError(t, err)
		require.Len(t, fns, 1)
		assert.Equal(t, "webinar", fns[0].Source)
	})

	t.Run("open period", func(t *testing.T) {
		fn, err := store.Funnel(ctx, db.FunnelFilter{})
		require.NoError(t, err)
		assert.Equal(t, map[string]int{"lead": 9, "mql": 7, "sal": 6, "sql": 5, "customer": 3}, stageCounts(fn))
		assert.InDelta(t, 6500.50, fn.RevenueFromSQLs, 1e-9)
		fns, err := store.FunnelBySource(ctx, db.FunnelFilter{})
		require.NoError(t, err)
		var sources []string
		for _, f := range fns {
			sources = append(sources, f.Source)
		}
		assert.Equal(t, []string{"ebook_download", "partner", "webinar"}, sources)
	})
}

func TestReportFunnelEmpty(t *testing.T) {
	t.Parallel()
	store := setupReportDB(t)
	fn, err := store.Funnel(context.Background(), db.FunnelFilter{Source: "nowhere"})
	require.NoError(t, err)
	assert.Equal(t, "nowhere", fn.Source)
	assert.Equal(t, map[string]int{"lead": 0, "mql": 0, "sal": 0, "sql": 0, "customer": 0}, stageCounts(fn))
	assert.Equal(t, []float64{0, 0, 0, 0}, rates(fn), "no leads means rate 0, not NaN")
	assert.Nil(t, fn.SQLToWonDays)
	assert.Zero(t, fn.RevenueFromSQLs)
	fns, err := store.FunnelBySource(context.Background(), db.FunnelFilter{})
	require.NoError(t, err)
	assert.Empty(t, fns)
	assert.NotNil(t, fns, "an empty list, not null, in JSON")
}

// seedSLA builds November handoffs for reps ana, bo and dee under policies hot-1h and warm-4h, plus
// handoffs outside November.
func seedSLA(t *testing.T, store *db.Store) {
	f := reportFixtures{t: t, store: store}
	for _, h := range []handoffFixture{
		{rep: "ana", policy: "hot-1h", at: nov(2), responseSecs: secs(60), outcome: "accepted"},
		{rep: "ana", policy: "hot-1h", at: nov(3), responseSecs: secs(120), outcome: "rejected", rejectReason: "not_a_fit"},
		{rep: "ana", policy: "hot-1h", at: nov(4), responseSecs: secs(300), outcome: "rejected", lapses: 1, rejectReason: "no_budget"},
		{rep: "ana", policy: "hot-1h", at: nov(5), responseSecs: secs(600), outcome: "rejected", lapses: 2, rejectReason: "not_a_fit"},
		{rep: "ana", policy: "hot-1h", at: nov(6), outcome: "reassigned", lapses: 1},
		{rep: "bo", policy: "warm-4h", at: nov(7), responseSecs: secs(1000), outcome: "rejected", rejectReason: "bad_timing"},
		{rep: "bo", policy: "warm-4h", at: nov(8), responseSecs: secs(2000), outcome: "accepted"},
		{rep: "bo", policy: "hot-1h", at: nov(9), outcome: "open", lapses: 1},
		{rep: "dee", policy: "warm-4h", at: nov(10), outcome: "open", due: time.Now().Add(time.Hour)},
		// Outside [Nov 1, Dec 1).
		{rep: "cy", policy: "hot-1h", at: nov(1).Add(-time.Second), responseSecs: secs(5), outcome: "rejected", rejectReason: "no_budget"},
		{rep: "cy", policy: "hot-1h", at: nov(1).AddDate(0, 1, 0), responseSecs: secs(5), outcome: "rejected", rejectReason: "no_budget"},
	} {
		f.handoff(h)
	}
}

// assertSLARows compares rows exactly, except the percentiles, which Postgres interpolates in
// floating point.
func assertSLARows(t *testing.T, want, got []db.SLARow) {
	t.Helper()
	require.Len(t, got, len(want))
	for i := range want {
		w, g := want[i], got[i]
		for _, p := range []struct {
			name      string
			want, got *float64
		}{{"median", w.MedianResponseSeconds, g.MedianResponseSeconds}, {"p90", w.P90ResponseSeconds, g.P90ResponseSeconds}} {
			if p.want == nil {
				assert.Nil(t, p.got, "%s %s", w.Key, p.name)
			} else if assert.NotNil(t, p.got, "%s %s", w.Key, p.name) {
				assert.InDelta(t, *p.want, *p.got, 1e-9, "%s %s", w.Key, p.name)
			}
		}
		w.MedianResponseSeconds, w.P90ResponseSeconds = nil, nil
		g.MedianResponseSeconds, g.P90ResponseSeconds = nil, nil
		assert.Equal(t, w, g)
	}
}

func TestReportSLA(t *testing.T) {
	t.Parallel()
	store := setupReportDB(t)
	seedSLA(t, store)
	ctx := context.Background()

	rep, err := store.SLAReport(ctx, nov(1), nov(1).AddDate(0, 1, 0), nil)
	require.NoError(t, err)
	assertSLARows(t, []db.SLARow{
		// Median of 60, 120, 300, 600 is 210; p90 is 300 + 0.7×(600−300) = 510.
		{Key: "ana", Handoffs: 5, Responded: 4, MedianResponseSeconds: secs(210), P90ResponseSeconds: secs(510), Breaches: 3, BreachRate: 0.6},
		{Key: "bo", Handoffs: 3, Responded: 2, MedianResponseSeconds: secs(1500), P90ResponseSeconds: secs(1900), Breaches: 1, BreachRate: 1.0 / 3},
		{Key: "dee", Handoffs: 1, Responded: 0, Breaches: 0, BreachRate: 0},
	}, rep.ByRep)
	assertSLARows(t, []db.SLARow{
		{Key: "hot-1h", Handoffs: 6, Responded: 4, MedianResponseSeconds: secs(210), P90ResponseSeconds: secs(510), Breaches: 4, BreachRate: 4.0 / 6},
		{Key: "warm-4h", Handoffs: 3, Responded: 2, MedianResponseSeconds: secs(1500), P90ResponseSeconds: secs(1900), Breaches: 0, BreachRate: 0},
	}, rep.ByPolicy)

	all, err := store.SLAReport(ctx, time.Time{}, time.Time{}, nil)
	require.NoError(t, err)
	require.Len(t, all.ByRep, 4, "open bounds include cy")
	assertSLARows(t, []db.SLARow{{Key: "cy", Handoffs: 2, Responded: 2, MedianResponseSeconds: secs(5), P90ResponseSeconds: secs(5)}}, all.ByRep[2:3])

	empty, err := store.SLAReport(ctx, nov(1).AddDate(1, 0, 0), time.Time{}, nil)
	require.NoError(t, err)
	assert.Equal(t, db.SLAReport{ByRep: []db.SLARow{}, ByPolicy: []db.SLARow{}}, empty)
}

func TestReportRejectionReasons(t *testing.T) {
	t.Parallel()
	store := setupReportDB(t)
	seedSLA(t, store)
	ctx := context.Background()

	got, err := store.RejectionReasons(ctx, nov(1), nov(1).AddDate(0, 1, 0))
	require.NoError(t, err)
	assert.Equal(t, []db.ReasonCount{{Reason: "not_a_fit", Count: 2}, {Reason: "bad_timing", Count: 1}, {Reason: "no_budget", Count: 1}}, got)

	got, err = store.RejectionReasons(ctx, time.Time{}, time.Time{})
	require.NoError(t, err)
	assert.Equal(t, []db.ReasonCount{{Reason: "no_budget", Count: 3}, {Reason: "not_a_fit", Count: 2}, {Reason: "bad_timing", Count: 1}}, got)

	got, err = store.RejectionReasons(ctx, nov(1).AddDate(1, 0, 0), time.Time{})
	require.NoError(t, err)
	assert.Equal(t, []db.ReasonCount{}, got)
}

// A breach is a response deadline that passed unanswered, whether or not the lapse was recorded
// yet (the worker may have been down when it fell due, and the answer handled before the timer).
func TestReportSLABreachIsAMissedDeadline(t *testing.T) {
	t.Parallel()
	store := setupReportDB(t)
	f := reportFixtures{t: t, store: store}
	for _, h := range []handoffFixture{
		{rep: "ana", policy: "p", at: nov(2, 9), responseSecs: secs(1800), outcome: "accepted"},
		{rep: "ana", policy: "p", at: nov(3, 9), responseSecs: secs(7200), outcome: "accepted"},            // late, no lapse recorded
		{rep: "ana", policy: "p", at: nov(4, 9), outcome: "open"},                                          // overdue, no lapse recorded
		{rep: "ana", policy: "p", at: nov(5, 9), outcome: "open", due: time.Now().Add(time.Hour)},          // not due yet
		{rep: "ana", policy: "p", at: nov(6, 9), responseSecs: secs(600), outcome: "accepted", lapses: 1},  // lapsed
		{rep: "ana", policy: "p", at: nov(7, 9), responseSecs: secs(3600), outcome: "rejected", lapses: 0}, // answered at the deadline
	} {
		f.handoff(h)
	}
	rep, err := store.SLAReport(context.Background(), time.Time{}, time.Time{}, nil)
	require.NoError(t, err)
	require.Len(t, rep.ByRep, 1)
	assert.Equal(t, 6, rep.ByRep[0].Handoffs)
	assert.Equal(t, 3, rep.ByRep[0].Breaches, "the late answer, the overdue handoff and the lapsed one")
	assert.Equal(t, 0.5, rep.ByRep[0].BreachRate)
}

// The report gives response times both in wall-clock time and in the business time of the rep's
// calendar, which is what deadlines count: a Friday 17:30 handoff answered on Monday at 09:30
// with 09:00–18:00 weekday hours took 64 hours, but one business hour.
func TestReportSLABusinessTime(t *testing.T) {
	t.Parallel()
	store := setupReportDB(t)
	f := reportFixtures{t: t, store: store}
	berlin, err := time.LoadLocation("Europe/Berlin")
	require.NoError(t, err)
	cal := sales.Calendar{ID: "office", TimeZone: "Europe/Berlin", Hours: []sales.Hours{{Days: "MON-FRI", From: "09:00", To: "18:00"}}}
	friday := time.Date(2026, time.November, 27, 17, 30, 0, 0, berlin)
	monday := time.Date(2026, time.November, 30, 9, 30, 0, 0, berlin)
	due := cal.Add(friday, 2*time.Hour, berlin)
	require.Equal(t, time.Date(2026, time.November, 30, 10, 30, 0, 0, berlin), due)
	f.handoff(handoffFixture{rep: "ana", policy: "hot-2h", at: friday, responseSecs: secs(monday.Sub(friday).Seconds()),
		outcome: "accepted", due: due})
	// And one on Monday at 10:00 answered at 13:00: three hours either way.
	mon10 := time.Date(2026, time.November, 30, 10, 0, 0, 0, berlin)
	f.handoff(handoffFixture{rep: "ana", policy: "hot-2h", at: mon10, responseSecs: secs(3 * 3600), outcome: "accepted",
		lapses: 1, due: cal.Add(mon10, 2*time.Hour, berlin)})
	// bo's calendar is not known (he left the team file): his business time is not reported.
	f.handoff(handoffFixture{rep: "bo", policy: "hot-2h", at: friday, responseSecs: secs(600), outcome: "accepted",
		due: cal.Add(friday, 2*time.Hour, berlin)})

	business := func(repID string, from, to time.Time) (time.Duration, bool) {
		if repID != "ana" {
			return 0, false
		}
		return cal.Between(from, to, berlin), true
	}
	rep, err := store.SLAReport(context.Background(), time.Time{}, time.Time{}, business)
	require.NoError(t, err)
	require.Len(t, rep.ByRep, 2)
	ana := rep.ByRep[0]
	// Wall clock: 64 h and 3 h, so the median is 33.5 h and p90 3 + 0.9×61 = 57.9 h.
	require.NotNil(t, ana.MedianResponseSeconds)
	assert.InDelta(t, 33.5*3600, *ana.MedianResponseSeconds, 1e-6, "wall-clock")
	assert.InDelta(t, 57.9*3600, *ana.P90ResponseSeconds, 1e-6, "wall-clock")
	// Business time: 1 h and 3 h, so the median is 2 h and p90 1 + 0.9×2 = 2.8 h.
	require.NotNil(t, ana.MedianBusinessSeconds)
	assert.InDelta(t, 2*3600, *ana.MedianBusinessSeconds, 1e-6, "business time")
	assert.InDelta(t, 2.8*3600, *ana.P90BusinessSeconds, 1e-6, "business time")
	assert.Equal(t, 2, ana.BusinessResponded)
	assert.Equal(t, 1, ana.Breaches, "the weekend handoff was answered within its 2 business hours; the Monday one lapsed")
	assert.Equal(t, 0.5, ana.BreachRate)

	bo := rep.ByRep[1]
	assert.Nil(t, bo.MedianBusinessSeconds)
	assert.Nil(t, bo.P90BusinessSeconds)
	assert.Equal(t, 0, bo.BusinessResponded)
	require.NotNil(t, bo.MedianResponseSeconds)

	require.Len(t, rep.ByPolicy, 1)
	pol := rep.ByPolicy[0]
	assert.Equal(t, 3, pol.Responded)
	assert.Equal(t, 2, pol.BusinessResponded, "business percentiles cover the answers whose calendar is known")
	assert.InDelta(t, 2*3600, *pol.MedianBusinessSeconds, 1e-6)

	// Without calendars, no business time is reported at all.
	rep, err = store.SLAReport(context.Background(), time.Time{}, time.Time{}, nil)
	require.NoError(t, err)
	assert.Nil(t, rep.ByRep[0].MedianBusinessSeconds)
}

// send inserts a send row of the lead, created at created and, when sent, sent an hour later;
// it returns the send's id.
func (f reportFixtures) send(lead, sequenceID, stepID, variant, status string, created time.Time) string {
	f.t.Helper()
	id := uuid.NewString()
	var sentAt *time.Time
	if status == "sent" {
		sentAt = at(created.Add(time.Hour))
	}
	f.exec(`INSERT INTO sends (id, lead_id, sequence_id, step_id, template, message_id, status, variant, created_at, sent_at)
		VALUES ($1, $2, $3, $4, 't', $5, $6, $7, $8, $9)`, id, lead, sequenceID, stepID, "<"+id+"@test>", status, variant, created, sentAt)
	return id
}

// event records a tracking event of a send; machine marks a proxy's or a scanner's hit.
func (f reportFixtures) event(lead, sendID, typ string, machine bool, when time.Time) {
	f.t.Helper()
	f.exec(`INSERT INTO events (lead_id, type, send_id, machine, occurred_at) VALUES ($1, $2, $3, $4, $5)`,
		lead, typ, sendID, machine, when)
}

func (f reportFixtures) conversion(lead, sequenceID string, heldOut bool, when time.Time) {
	f.t.Helper()
	f.exec(`INSERT INTO conversions (lead_id, sequence_id, goal, held_out, at) VALUES ($1, $2, 'demo_request', $3, $4)`,
		lead, sequenceID, heldOut, when)
}

// seedSequences builds November activity of the nurture sequence (an A/B test on intro, then
// followup, with a holdout) and of webinar-follow, plus October activity before the period.
func seedSequences(t *testing.T, store *db.Store) {
	f := reportFixtures{t: t, store: store}
	lead := func() string { return f.lead("web", "lead", nov(1)) }

	// Treated leads. l1 got intro a, opened it (and a privacy proxy fetched it), clicked twice,
	// got followup, opened it (a scanner clicked it), and converted after both.
	l1 := lead()
	s := f.send(l1, "nurture", "intro", "a", "sent", nov(2))
	f.event(l1, s, "open", true, nov(2, 1))
	f.event(l1, s, "open", false, nov(2, 3))
	f.event(l1, s, "click", false, nov(2, 4))
	f.event(l1, s, "click", false, nov(2, 5))
	s = f.send(l1, "nurture", "followup", "", "sent", nov(5))
	f.event(l1, s, "open", false, nov(5, 2))
	f.event(l1, s, "click", true, nov(5, 1))
	f.conversion(l1, "nurture", false, nov(6))
	// l2 got intro b, which only machines opened and clicked, and unsubscribed from it; followup
	// was then suppressed.
	l2 := lead()
	s = f.send(l2, "nurture", "intro", "b", "sent", nov(2, 6))
	f.event(l2, s, "open", true, nov(2, 7))
	f.event(l2, s, "click", true, nov(2, 7))
	f.event(l2, s, "unsubscribe", false, nov(2, 9))
	f.send(l2, "nurture", "followup", "", "suppressed", nov(5, 6))
	// l3 clicked intro a without loading images, but had reached the goal before it was sent:
	// a conversion for the sequence, not for the variant.
	l3 := lead()
	s = f.send(l3, "nurture", "intro", "a", "sent", nov(3, 10))
	f.event(l3, s, "click", false, nov(3, 12))
	f.conversion(l3, "nurture", false, nov(3))
	// l4's intro b failed; l8's intro a is still pending.
	l4 := lead()
	f.send(l4, "nurture", "intro", "b", "failed", nov(3))
	l8 := lead()
	f.send(l8, "nurture", "intro", "a", "pending", nov(20))

	// Held-out leads: l5 and l6 walked the steps with nothing mailed; l7 reached the goal before
	// its first step fell due, so only its conversion shows it was enrolled.
	l5 := lead()
	f.send(l5, "nurture", "intro", "b", "held_out", nov(2))
	f.send(l5, "nurture", "followup", "", "held_out", nov(5))
	l6 := lead()
	f.send(l6, "nurture", "intro", "a", "held_out", nov(3))
	l7 := lead()
	f.conversion(l7, "nurture", true, nov(4))

	// l1 also had the webinar invite, and clicked it.
	s = f.send(l1, "webinar-follow", "invite", "", "sent", nov(4))
	f.event(l1, s, "click", false, nov(4, 3))

	// October, before the period: a sent, opened intro a and a conversion.
	l9 := f.lead("web", "lead", nov(1).AddDate(0, -1, 0))
	s = f.send(l9, "nurture", "intro", "a", "sent", nov(20).AddDate(0, -1, 0))
	f.event(l9, s, "open", false, nov(20, 2).AddDate(0, -1, 0))
	f.conversion(l9, "nurture", false, nov(21).AddDate(0, -1, 0))
}

func TestReportSequences(t *testing.T) {
	t.Parallel()
	store := setupReportDB(t)
	seedSequences(t, store)
	ctx := context.Background()

	rep, err := store.SequenceReport(ctx, nov(1))
	require.NoError(t, err)
	assert.True(t, nov(1).Equal(rep.Since))
	require.Len(t, rep.Sequences, 2)

	nurture := rep.Sequences[0]
	assert.Equal(t, "nurture", nurture.SequenceID)
	assert.Equal(t, 8, nurture.Leads, "l1–l8: sends of any status, or a conversion")
	assert.Equal(t, 5, nurture.TreatedLeads)
	assert.Equal(t, 3, nurture.HeldOutLeads)
	assert.Equal(t, 2, nurture.TreatedConversions, "l1 and l3")
	assert.Equal(t, 1, nurture.HeldOutConversions, "l7")
	assert.InDelta(t, 0.4, nurture.TreatedRate, 1e-9)
	assert.InDelta(t, 1.0/3, nurture.HeldOutRate, 1e-9)
	require.NotNil(t, nurture.Lift)
	assert.InDelta(t, 0.4-1.0/3, *nurture.Lift, 1e-9)
	require.NotNil(t, nurture.RelativeLift)
	assert.InDelta(t, 0.2, *nurture.RelativeLift, 1e-9, "a fifth more conversions than without the emails")

	require.Len(t, nurture.Steps, 2)
	assert.Equal(t, "intro", nurture.Steps[0].StepID, "steps in the order they were first sent")
	assert.Equal(t, "followup", nurture.Steps[1].StepID)
	strip := func(vs []db.VariantStats) []db.VariantStats {
		out := make([]db.VariantStats, len(vs))
		for i, v := range vs {
			v.SequenceID, v.StepID, v.FirstAt = "", "", time.Time{}
			out[i] = v
		}
		return out
	}
	assert.Equal(t, []db.VariantStats{
		{Variant: "a", Sent: 2, HeldOut: 1, Pending: 1, Opens: 1, Clicks: 2, Conversions: 1,
			OpenRate: 0.5, ClickRate: 1, ConversionRate: 0.5},
		{Variant: "b", Sent: 1, Failed: 1, HeldOut: 1, Unsubscribes: 1, UnsubscribeRate: 1},
	}, strip(nurture.Steps[0].Variants), "intro: machine opens and clicks do not count; l3 converted before its intro")
	assert.Equal(t, []db.VariantStats{
		{Variant: "", Sent: 1, Suppressed: 1, HeldOut: 1, Opens: 1, Conversions: 1, OpenRate: 1, ConversionRate: 1},
	}, strip(nurture.Steps[1].Variants))

	webinar := rep.Sequences[1]
	assert.Equal(t, "webinar-follow", webinar.SequenceID)
	assert.Equal(t, 1, webinar.Leads)
	assert.Equal(t, 1, webinar.TreatedLeads)
	assert.Zero(t, webinar.HeldOutLeads)
	assert.Nil(t, webinar.Lift, "no holdout, no lift")
	assert.Nil(t, webinar.RelativeLift)
	require.Len(t, webinar.Steps, 1)
	assert.Equal(t, []db.VariantStats{{Variant: "", Sent: 1, Clicks: 1, ClickRate: 1}}, strip(webinar.Steps[0].Variants))

	// All time takes in October's lead, its send and its conversion.
	all, err := store.SequenceReport(ctx, time.Time{})
	require.NoError(t, err)
	require.Len(t, all.Sequences, 2)
	assert.Equal(t, 9, all.Sequences[0].Leads)
	assert.Equal(t, 3, all.Sequences[0].TreatedConversions)
	intro := all.Sequences[0].Steps[0]
	assert.Equal(t, "intro", intro.StepID)
	assert.Equal(t, 3, intro.Variants[0].Sent)
	assert.Equal(t, 2, intro.Variants[0].Opens)
	assert.Equal(t, 2, intro.Variants[0].Conversions)
}

// A held-out conversion never counts for a variant, a sequence with only held-out leads has no
// lift to report, and a period with nothing in it is an empty list.
func TestReportSequencesEdges(t *testing.T) {
	t.Parallel()
	store := setupReportDB(t)
	f := reportFixtures{t: t, store: store}
	l := f.lead("web", "lead", nov(1))
	f.send(l, "solo", "only", "x", "held_out", nov(2))
	f.conversion(l, "solo", true, nov(3))

	rep, err := store.SequenceReport(context.Background(), nov(1))
	require.NoError(t, err)
	require.Len(t, rep.Sequences, 1)
	solo := rep.Sequences[0]
	assert.Equal(t, 1, solo.HeldOutLeads)
	assert.Equal(t, 1, solo.HeldOutConversions)
	assert.Equal(t, 1.0, solo.HeldOutRate)
	assert.Nil(t, solo.Lift, "no treated leads to compare with")
	require.Len(t, solo.Steps, 1)
	assert.Zero(t, solo.Steps[0].Variants[0].Conversions, "nothing was mailed to a held-out lead")
	assert.Equal(t, 1, solo.Steps[0].Variants[0].HeldOut)

	empty, err := store.SequenceReport(context.Background(), nov(1).AddDate(1, 0, 0))
	require.NoError(t, err)
	assert.NotNil(t, empty.Sequences, "an empty list, not null, in JSON")
	assert.Empty(t, empty.Sequences)
}
