package db

import (
	"context"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tendhq/tend/internal/lifecycle"
)

// funnelOrder is the main funnel, earliest first: a lead has reached a stage when it has been at
// that stage or any later one. Other, recycled and disqualified are side exits, not positions.
var funnelOrder = []string{
	string(lifecycle.Subscriber), string(lifecycle.Lead), string(lifecycle.MQL), string(lifecycle.SAL),
	string(lifecycle.SQL), string(lifecycle.Opportunity), string(lifecycle.Customer), string(lifecycle.Evangelist),
}

// reportStages are the funnel stages a Funnel reports, in order; Conversions pair neighbours.
var reportStages = []string{
	string(lifecycle.Lead), string(lifecycle.MQL), string(lifecycle.SAL), string(lifecycle.SQL), string(lifecycle.Customer),
}

// FunnelFilter selects the cohort a funnel report covers.
type FunnelFilter struct {
	// From and To bound the leads' created_at, half-open: [From, To). A zero time leaves that
	// side open.
	From, To time.Time
	// Source keeps only leads with this leads.source; "" keeps every source.
	Source string
}

// FunnelStage is how many leads of the cohort reached one funnel stage.
type FunnelStage struct {
	Stage string `json:"stage"`
	Leads int    `json:"leads"`
}

// Conversion is the share of the leads that reached From which went on to reach To.
type Conversion struct {
	From string `json:"from"`
	To   string `json:"to"`
	// Rate is between 0 and 1; it is 0 when no lead reached From.
	Rate float64 `json:"rate"`
}

// Funnel is the lifecycle funnel of a cohort of leads: the leads created in the filter's period
// (and of its source), followed through everything that has happened to them up to now.
//
// A lead has reached a stage when it is at that stage or a later funnel stage now, or when its
// stage history shows it at that stage or a later one (as to_stage or from_stage), at any time.
// So a customer counts for lead, MQL, SAL, SQL and customer, an opportunity counts up to SQL, and
// a lead recycled or disqualified after SQL still counts up to SQL. Subscribers, and leads only
// ever at other, reached none of the reported stages.
type Funnel struct {
	// Source is the lead source the funnel covers; "" means every source.
	Source string `json:"source"`
	// Stages are lead, mql, sal, sql and customer, in that order.
	Stages []FunnelStage `json:"stages"`
	// Conversions are lead→mql, mql→sal, sal→sql and sql→customer.
	Conversions []Conversion `json:"conversions"`
	// SQLToWonDays is the mean number of days from a lead's first entry into SQL (or a later
	// stage; its creation if it started there) to the close of its first opportunity won after
	// that, over the leads that have one; nil when none has.
	SQLToWonDays *float64 `json:"sql_to_won_days"`
	// RevenueFromSQLs sums the values of every won opportunity of the leads that reached SQL.
	// Values are added as stored, whatever their currency.
	RevenueFromSQLs float64 `json:"revenue_from_sqls"`
}

// funnelSQL computes a funnel per lead source and, in the row where GROUPING(source) is 1, for
// all of them together. $1 is funnelOrder, so "reached >= array_position($1, 'sql')" reads as
// "reached SQL or later".
const funnelSQL = `
WITH cohort AS (
    SELECT l.id, l.source, l.created_at, array_position($1::text[], l.stage) AS current_pos
    FROM leads l
    WHERE ($2::timestamptz IS NULL OR l.created_at >= $2)
      AND ($3::timestamptz IS NULL OR l.created_at < $3)
      AND ($4::text = '' OR l.source = $4)
), reach AS (
    SELECT c.id, c.source,
           GREATEST(c.current_pos, h.max_pos) AS reached,
           COALESCE(h.first_sql_at,
                    CASE WHEN GREATEST(c.current_pos, h.max_pos) >= array_position($1, 'sql') THEN c.created_at END) AS sql_at
    FROM cohort c
    LEFT JOIN LATERAL (
        SELECT max(GREATEST(array_position($1, sc.from_stage), array_position($1, sc.to_stage))) AS max_pos,
               min(sc.changed_at) FILTER (WHERE array_position($1, sc.to_stage) >= array_position($1, 'sql')) AS first_sql_at
        FROM stage_changes sc
        WHERE sc.lead_id = c.id
    ) h ON true
), won AS (
    SELECT r.id, r.source, r.reached, r.sql_at, w.revenue, w.won_at
    FROM reach r
    LEFT JOIN LATERAL (
        SELECT sum(o.value) AS revenue,
               min(o.closed_at) FILTER (WHERE o.closed_at >= r.sql_at) AS won_at
        FROM opportunities o
        WHERE o.lead_id = r.id AND o.outcome = 'won'
    ) w ON true
)
SELECT GROUPING(source) = 1 AS total,
       COALESCE(source, ''),
       count(*) FILTER (WHERE reached >= array_position($1, 'lead')),
       count(*) FILTER (WHERE reached >= array_position($1, 'mql')),
       count(*) FILTER (WHERE reached >= array_position($1, 'sal')),
       count(*) FILTER (WHERE reached >= array_position($1, 'sql')),
       count(*) FILTER (WHERE reached >= array_position($1, 'customer')),
       avg(extract(epoch FROM won_at - sql_at) / 86400)::float8,
       COALESCE(sum(revenue) FILTER (WHERE reached >= array_position($1, 'sql')), 0)::float8
FROM won
GROUP BY GROUPING SETS ((source), ())
ORDER BY total, source`

// Funnel returns the funnel of the leads f selects, all sources together (or f.Source alone).
func (s *Store) Funnel(ctx context.Context, f FunnelFilter) (Funnel, error) {
	overall, _, err := s.funnels(ctx, f)
	return overall, err
}

// FunnelBySource returns one funnel per lead source among the leads f selects, sorted by source.
func (s *Store) FunnelBySource(ctx context.Context, f FunnelFilter) ([]Funnel, error) {
	_, bySource, err := s.funnels(ctx, f)
	return bySource, err
}

// funnels computes both views in one query: the rows per source and the grand total, which
// Postgres returns even when no lead matches.
func (s *Store) funnels(ctx context.Context, f FunnelFilter) (Funnel, []Funnel, error) {
	rows, err := s.pool.Query(ctx, funnelSQL, funnelOrder, openBound(f.From), openBound(f.To), f.Source)
	if err != nil {
		return Funnel{}, nil, fmt.Errorf("funnel report: %w", translate(err))
	}
	defer rows.Close()
	overall := Funnel{Source: f.Source}
	bySource := []Funnel{}
	for rows.Next() {
		var (
			total  bool
			fn     Funnel
			counts = make([]int, len(reportStages))
		)
		if err := rows.Scan(&total, &fn.Source, &counts[0], &counts[1], &counts[2], &counts[3], &counts[4],
			&fn.SQLToWonDays, &fn.RevenueFromSQLs); err != nil {
			return Funnel{}, nil, fmt.Errorf("funnel report: %w", translate(err))
		}
		fn.Stages, fn.Conversions = funnelSteps(counts)
		if total {
			fn.Source = f.Source
			overall = fn
			continue
		}
		bySource = append(bySource, fn)
	}
	if err := rows.Err(); err != nil {
		return Funnel{}, nil, fmt.Errorf("funnel report: %w", translate(err))
	}
	return overall, bySource, nil
}

// funnelSteps pairs the counts with reportStages and works out the conversions between neighbours.
func funnelSteps(counts []int) ([]FunnelStage, []Conversion) {
	stages := make([]FunnelStage, len(reportStages))
	for i, st := range reportStages {
		stages[i] = FunnelStage{Stage: st, Leads: counts[i]}
	}
	conv := make([]Conversion, 0, len(stages)-1)
	for i := 1; i < len(stages); i++ {
		c := Conversion{From: stages[i-1].Stage, To: stages[i].Stage}
		if stages[i-1].Leads > 0 {
			c.Rate = float64(stages[i].Leads) / float64(stages[i-1].Leads)
		}
		conv = append(conv, c)
	}
	return stages, conv
}

// SLARow is how quickly and reliably one rep, or under one policy, handoffs were answered.
type SLARow struct {
	// Key is the rep id (in ByRep) or the policy id (in ByPolicy).
	Key string `json:"key"`
	// Handoffs counts assignments: a reassigned handoff counts once for each rep it went to.
	Handoffs int `json:"handoffs"`
	// Responded counts the assignments the rep accepted or rejected.
	Responded int `json:"responded"`
	// MedianResponseSeconds and P90ResponseSeconds are wall-clock seconds from handoff to answer
	// over the responded assignments (continuous percentiles); nil when none was answered.
	MedianResponseSeconds *float64 `json:"median_response_seconds"`
	P90ResponseSeconds    *float64 `json:"p90_response_seconds"`
	// MedianBusinessSeconds and P90BusinessSeconds are the same in business time: only the hours
	// of the rep's calendar count, as they do for the deadline. They cover the BusinessResponded
	// answers whose rep's calendar is known; nil when there are none.
	MedianBusinessSeconds *float64 `json:"median_business_seconds"`
	P90BusinessSeconds    *float64 `json:"p90_business_seconds"`
	BusinessResponded     int      `json:"business_responded"`
	// Breaches counts the assignments whose response deadline (business time, as the SLA counts
	// it) passed unanswered: a lapse was recorded, the answer came after the deadline, or the
	// handoff is still open past it.
	Breaches int `json:"breaches"`
	// BreachRate is Breaches / Handoffs, 0 when there were none.
	BreachRate float64 `json:"breach_rate"`
}

// SLAReport is the handoff response-time report, per rep and per policy, each sorted by key.
type SLAReport struct {
	ByRep    []SLARow `json:"by_rep"`
	ByPolicy []SLARow `json:"by_policy"`
}

// BusinessTime returns the business time from a handoff to its answer on the calendar of the rep
// it was assigned to; ok is false when that calendar is not known.
type BusinessTime func(repID string, from, to time.Time) (d time.Duration, ok bool)

// SLAReport reports the handoffs handed off in [from, to); a zero time leaves that side open.
// business, when set, adds the business-time percentiles; nil leaves them out.
func (s *Store) SLAReport(ctx context.Context, from, to time.Time, business BusinessTime) (SLAReport, error) {
	rows, err := s.pool.Query(ctx, `
SELECT GROUPING(rep_id) = 0 AS by_rep,
       CASE WHEN GROUPING(rep_id) = 0 THEN rep_id ELSE policy END AS key,
       count(*),
       count(responded_at),
       percentile_cont(0.5) WITHIN GROUP (ORDER BY response_seconds),
       percentile_cont(0.9) WITHIN GROUP (ORDER BY response_seconds),
       count(*) FILTER (WHERE lapses > 0 OR responded_at > due_at OR (responded_at IS NULL AND outcome = 'open' AND due_at < now()))
FROM handoffs
WHERE ($1::timestamptz IS NULL OR handed_off_at >= $1)
  AND ($2::timestamptz IS NULL OR handed_off_at < $2)
GROUP BY GROUPING SETS ((rep_id), (policy))
ORDER BY by_rep DESC, key`, openBound(from), openBound(to))
	if err != nil {
		return SLAReport{}, fmt.Errorf("SLA report: %w", translate(err))
	}
	defer rows.Close()
	out := SLAReport{ByRep: []SLARow{}, ByPolicy: []SLARow{}}
	for rows.Next() {
		var (
			byRep bool
			r     SLARow
		)
		if err := rows.Scan(&byRep, &r.Key, &r.Handoffs, &r.Responded, &r.MedianResponseSeconds, &r.P90ResponseSeconds, &r.Breaches); err != nil {
			return SLAReport{}, fmt.Errorf("SLA report: %w", translate(err))
		}
		if r.Handoffs > 0 {
			r.BreachRate = float64(r.Breaches) / float64(r.Handoffs)
		}
		if byRep {
			out.ByRep = append(out.ByRep, r)
		} else {
			out.ByPolicy = append(out.ByPolicy, r)
		}
	}
	if err := rows.Err(); err != nil {
		return SLAReport{}, fmt.Errorf("SLA report: %w", translate(err))
	}
	rows.Close()
	if business != nil {
		if err := s.addBusinessTimes(ctx, from, to, business, &out); err != nil {
			return SLAReport{}, err
		}
	}
	return out, nil
}

// addBusinessTimes works out each answered handoff's business time on its rep's calendar (which
// lives in the team file, not in Postgres) and adds the percentiles to the report's rows.
func (s *Store) addBusinessTimes(ctx context.Context, from, to time.Time, business BusinessTime, rep *SLAReport) error {
	rows, err := s.pool.Query(ctx, `
SELECT rep_id, policy, handed_off_at, responded_at
FROM handoffs
WHERE responded_at IS NOT NULL
  AND ($1::timestamptz IS NULL OR handed_off_at >= $1)
  AND ($2::timestamptz IS NULL OR handed_off_at < $2)`, openBound(from), openBound(to))
	if err != nil {
		return fmt.Errorf("SLA report business time: %w", translate(err))
	}
	defer rows.Close()
	byRep, byPolicy := map[string][]float64{}, map[string][]float64{}
	for rows.Next() {
		var (
			repID, policy        string
			handedOff, responded time.Time
		)
		if err := rows.Scan(&repID, &policy, &handedOff, &responded); err != nil {
			return fmt.Errorf("SLA report business time: %w", translate(err))
		}
		d, ok := business(repID, handedOff, responded)
		if !ok {
			continue
		}
		byRep[repID] = append(byRep[repID], d.Seconds())
		byPolicy[policy] = append(byPolicy[policy], d.Seconds())
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("SLA report business time: %w", translate(err))
	}
	for _, set := range []struct {
		rows []SLARow
		secs map[string][]float64
	}{{rep.ByRep, byRep}, {rep.ByPolicy, byPolicy}} {
		for i := range set.rows {
			r := &set.rows[i]
			v := set.secs[r.Key]
			r.BusinessResponded = len(v)
			r.MedianBusinessSeconds, r.P90BusinessSeconds = percentile(v, 0.5), percentile(v, 0.9)
		}
	}
	return nil
}

// percentile is the continuous percentile p of v, as Postgres's percentile_cont computes it
// (linear interpolation between the closest ranks); nil for no values. It sorts v.
func percentile(v []float64, p float64) *float64 {
	if len(v) == 0 {
		return nil
	}
	slices.Sort(v)
	pos := p * float64(len(v)-1)
	lo := int(math.Floor(pos))
	out := v[lo]
	if lo+1 < len(v) {
		out += (pos - float64(lo)) * (v[lo+1] - v[lo])
	}
	return &out
}

// ReasonCount is how many handoffs were rejected for one reason.
type ReasonCount struct {
	// Reason is the reject_reason as the rep gave it; "" when none was given.
	Reason string `json:"reason"`
	Count  int    `json:"count"`
}

// RejectionReasons counts the rejected handoffs handed off in [from, to) by reason, most frequent
// first (ties by reason); a zero time leaves that side open.
func (s *Store) RejectionReasons(ctx context.Context, from, to time.Time) ([]ReasonCount, error) {
	rows, err := s.pool.Query(ctx, `
SELECT reject_reason, count(*)
FROM handoffs
WHERE outcome = 'rejected'
  AND ($1::timestamptz IS NULL OR handed_off_at >= $1)
  AND ($2::timestamptz IS NULL OR handed_off_at < $2)
GROUP BY reject_reason
ORDER BY count(*) DESC, reject_reason`, openBound(from), openBound(to))
	if err != nil {
		return nil, fmt.Errorf("rejection reasons: %w", translate(err))
	}
	defer rows.Close()
	out := []ReasonCount{}
	for rows.Next() {
		var rc ReasonCount
		if err := rows.Scan(&rc.Reason, &rc.Count); err != nil {
			return nil, fmt.Errorf("rejection reasons: %w", translate(err))
		}
		out = append(out, rc)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("rejection reasons: %w", translate(err))
	}
	return out, nil
}

// openBound turns a zero time into NULL, which the report queries read as "no bound".
func openBound(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// SequenceReport is how each sequence, each of its steps and each A/B variant of a step performed
// over a period, with the sequence's conversions for treated and held-out leads.
//
// The period is activity-based: a send counts when its row was created at or after Since (its
// opens, clicks and unsubscribes whenever they came), a conversion when it was made at or after
// Since, and a lead belongs to a sequence's figures when it has either in the sequence.
type SequenceReport struct {
	Since     time.Time       `json:"since"`
	Sequences []SequenceStats `json:"sequences"`
}

// SequenceStats is one sequence's figures; its steps are in the order they were first sent.
type SequenceStats struct {
	SequenceID string `json:"sequence_id" db:"sequence_id"`
	// Leads is the number of distinct leads with a send row (of any status, held_out included) or a
	// conversion in the sequence in the period: the leads enrolled that reached a step or the goal.
	Leads int `json:"leads" db:"leads"`
	// TreatedLeads and HeldOutLeads split Leads by the sequence's holdout: a lead with any
	// held-out row (a held_out send, or a conversion marked held_out) is held out.
	TreatedLeads int `json:"treated_leads" db:"treated_leads"`
	HeldOutLeads int `json:"held_out_leads" db:"held_out_leads"`
	// TreatedConversions and HeldOutConversions count the leads of each group that reached the
	// sequence's goal in the period.
	TreatedConversions int `json:"treated_conversions" db:"treated_conversions"`
	HeldOutConversions int `json:"held_out_conversions" db:"held_out_conversions"`
	// TreatedRate and HeldOutRate are conversions / leads of each group, 0 for an empty group.
	TreatedRate float64 `json:"treated_rate" db:"-"`
	HeldOutRate float64 `json:"held_out_rate" db:"-"`
	// Lift is TreatedRate − HeldOutRate (in rate points, 0.05 is five points); nil when either
	// group is empty, since there is then nothing to compare.
	Lift *float64 `json:"lift" db:"-"`
	// RelativeLift is Lift / HeldOutRate (0.5 means half again as many conversions as without the
	// emails); nil when Lift is nil or the held-out leads did not convert at all.
	RelativeLift *float64    `json:"relative_lift" db:"-"`
	Steps        []StepStats `json:"steps" db:"-"`
}

// StepStats is one step of a sequence, one row per variant ("" for a step without variants).
type StepStats struct {
	StepID   string         `json:"step_id"`
	Variants []VariantStats `json:"variants"`
}

// VariantStats is what one variant of a step (or the step itself, Variant "") did.
type VariantStats struct {
	// SequenceID, StepID and FirstAt (when its first send row was made) place the row in the
	// report; the JSON leaves them out, since the nesting says the same.
	SequenceID string `json:"-" db:"sequence_id"`
	StepID     string `json:"-" db:"step_id"`
	Variant    string `json:"variant" db:"variant"`
	// Sent, Failed, Suppressed, HeldOut and Pending count the send rows by status. A held-out row is
	// a holdout lead's step: nothing was mailed.
	Sent       int `json:"sent" db:"sent"`
	Failed     int `json:"failed" db:"failed"`
	Suppressed int `json:"suppressed" db:"suppressed"`
	HeldOut    int `json:"held_out" db:"held_out"`
	Pending    int `json:"pending" db:"pending"`
	// Opens and Clicks count the sent emails opened or clicked at least once by a person: events
	// marked machine (privacy proxies, link scanners) do not count, and a second open of the
	// same email does not count again.
	Opens  int `json:"opens" db:"opens"`
	Clicks int `json:"clicks" db:"clicks"`
	// Unsubscribes counts the sent emails whose unsubscribe link (or a complaint about which)
	// unsubscribed the lead: the unsubscribe event names the send.
	Unsubscribes int `json:"unsubscribes" db:"unsubscribes"`
	// Conversions counts the treated leads that were sent this variant and reached the
	// sequence's goal after it was sent; one conversion counts for each variant the lead had
	// received by then.
	Conversions int `json:"conversions" db:"conversions"`
	// OpenRate, ClickRate, UnsubscribeRate and ConversionRate are per email sent, 0 when none was.
	OpenRate        float64   `json:"open_rate" db:"-"`
	ClickRate       float64   `json:"click_rate" db:"-"`
	UnsubscribeRate float64   `json:"unsubscribe_rate" db:"-"`
	ConversionRate  float64   `json:"conversion_rate" db:"-"`
	FirstAt         time.Time `json:"-" db:"first_at"`
}

// sequenceVariantsSQL is one row per sequence, step and variant with sends in the period. The
// EXISTS tests make every engagement figure "sends with at least one", so repeats never count
// twice; ordering by the step's first send puts steps in their sequence's order.
const sequenceVariantsSQL = `
SELECT s.sequence_id, s.step_id, s.variant,
       count(*) FILTER (WHERE s.status = 'sent') AS sent,
       count(*) FILTER (WHERE s.status = 'failed') AS failed,
       count(*) FILTER (WHERE s.status = 'suppressed') AS suppressed,
       count(*) FILTER (WHERE s.status = 'held_out') AS held_out,
       count(*) FILTER (WHERE s.status = 'pending') AS pending,
       count(*) FILTER (WHERE s.status = 'sent' AND EXISTS (
           SELECT 1 FROM events e WHERE e.send_id = s.id AND e.type = 'open' AND NOT e.machine)) AS opens,
       count(*) FILTER (WHERE s.status = 'sent' AND EXISTS (
           SELECT 1 FROM events e WHERE e.send_id = s.id AND e.type = 'click' AND NOT e.machine)) AS clicks,
       count(*) FILTER (WHERE s.status = 'sent' AND EXISTS (
           SELECT 1 FROM events e WHERE e.send_id = s.id AND e.type = 'unsubscribe')) AS unsubscribes,
       count(*) FILTER (WHERE s.status = 'sent' AND EXISTS (
           SELECT 1 FROM conversions c
           WHERE c.lead_id = s.lead_id AND c.sequence_id = s.sequence_id AND NOT c.held_out
             AND c.at >= COALESCE(s.sent_at, s.created_at))) AS conversions,
       min(s.created_at) AS first_at
FROM sends s
WHERE s.created_at >= $1
GROUP BY s.sequence_id, s.step_id, s.variant
ORDER BY s.sequence_id, min(min(s.created_at)) OVER (PARTITION BY s.sequence_id, s.step_id), s.step_id, s.variant`

// sequenceTotalsSQL is one row per sequence with sends or conversions in the period: its leads,
// split by holdout, and their conversions.
const sequenceTotalsSQL = `
WITH member AS (
    SELECT lead_id, sequence_id, status = 'held_out' AS held_out FROM sends WHERE created_at >= $1
    UNION ALL
    SELECT lead_id, sequence_id, held_out FROM conversions WHERE at >= $1
), side AS (
    SELECT lead_id, sequence_id, bool_or(held_out) AS held_out FROM member GROUP BY lead_id, sequence_id
)
SELECT m.sequence_id,
       count(*) AS leads,
       count(*) FILTER (WHERE NOT m.held_out) AS treated_leads,
       count(*) FILTER (WHERE m.held_out) AS held_out_leads,
       count(c.lead_id) FILTER (WHERE NOT m.held_out) AS treated_conversions,
       count(c.lead_id) FILTER (WHERE m.held_out) AS held_out_conversions
FROM side m
LEFT JOIN conversions c ON c.lead_id = m.lead_id AND c.sequence_id = m.sequence_id AND c.at >= $1
GROUP BY m.sequence_id
ORDER BY m.sequence_id`

// SequenceReport reports every sequence with sends or conversions since since (see
// SequenceReport, the type, for what counts); a zero since covers all time.
func (s *Store) SequenceReport(ctx context.Context, since time.Time) (SequenceReport, error) {
	from := since
	if from.IsZero() {
		from = time.Unix(0, 0) // before any row
	}
	totals, err := collectReport[SequenceStats](ctx, s, sequenceTotalsSQL, from)
	if err != nil {
		return SequenceReport{}, fmt.Errorf("sequence report: %w", err)
	}
	variants, err := collectReport[VariantStats](ctx, s, sequenceVariantsSQL, from)
	if err != nil {
		return SequenceReport{}, fmt.Errorf("sequence report by variant: %w", err)
	}
	byID := make(map[string]*SequenceStats, len(totals))
	for i := range totals {
		q := &totals[i]
		q.Steps = []StepStats{}
		q.TreatedRate, q.HeldOutRate = share(q.TreatedConversions, q.TreatedLeads), share(q.HeldOutConversions, q.HeldOutLeads)
		if q.TreatedLeads > 0 && q.HeldOutLeads > 0 {
			lift := q.TreatedRate - q.HeldOutRate
			q.Lift = &lift
			if q.HeldOutRate > 0 {
				rel := lift / q.HeldOutRate
				q.RelativeLift = &rel
			}
		}
		byID[q.SequenceID] = q
	}
	for _, v := range variants {
		q := byID[v.SequenceID] // every sequence with a send in the period has a totals row
		if q == nil {
			return SequenceReport{}, fmt.Errorf("sequence report: sends of %s but no totals", v.SequenceID)
		}
		v.OpenRate, v.ClickRate = share(v.Opens, v.Sent), share(v.Clicks, v.Sent)
		v.UnsubscribeRate, v.ConversionRate = share(v.Unsubscribes, v.Sent), share(v.Conversions, v.Sent)
		if n := len(q.Steps); n == 0 || q.Steps[n-1].StepID != v.StepID {
			q.Steps = append(q.Steps, StepStats{StepID: v.StepID, Variants: []VariantStats{}})
		}
		last := &q.Steps[len(q.Steps)-1]
		last.Variants = append(last.Variants, v)
	}
	return SequenceReport{Since: since, Sequences: totals}, nil
}

// collectReport runs a report query and scans its rows by column name into T.
func collectReport[T any](ctx context.Context, s *Store, sql string, args ...any) ([]T, error) {
	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, translate(err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowToStructByName[T])
	if err != nil {
		return nil, translate(err)
	}
	return out, nil
}

// share is n/of, 0 when of is 0.
func share(n, of int) float64 {
	if of == 0 {
		return 0
	}
	return float64(n) / float64(of)
}
