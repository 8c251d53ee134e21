package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tendhq/tend/internal/db"
	"github.com/tendhq/tend/internal/pgtest"
)

// tend reports sequences reads Postgres and prints, per sequence, the leads and the holdout lift,
// then a row per step and variant; --output json gives the API's answer.
func TestReportsSequences(t *testing.T) {
	t.Parallel()
	env := map[string]string{"DATABASE_URL": pgtest.NewDB(t)}
	r := tend(t, env, "migrate")
	require.NoError(t, r.err, r.stderr)

	conn, err := pgx.Connect(t.Context(), env["DATABASE_URL"])
	require.NoError(t, err)
	defer conn.Close(t.Context())
	exec := func(sql string, args ...any) {
		t.Helper()
		_, err := conn.Exec(t.Context(), sql, args...)
		require.NoError(t, err, sql)
	}
	day := time.Now().UTC().AddDate(0, 0, -3)
	lead := func() string {
		id := uuid.NewString()
		exec(`INSERT INTO leads (id, email, source, segment) VALUES ($1, $2, 'web', 'b2b')`, id, id+"@example.com")
		return id
	}
	send := func(lead, step, variant, status string) string {
		id := uuid.NewString()
		created := day
		if step == "followup" {
			created = day.Add(time.Hour)
		}
		exec(`INSERT INTO sends (id, lead_id, sequence_id, step_id, template, message_id, status, variant, created_at, sent_at)
			VALUES ($1, $2, 'nurture', $3, 't', $4, $5, $6, $7, CASE WHEN $5 = 'sent' THEN $7::timestamptz END)`,
			id, lead, step, "<"+id+"@test>", status, variant, created)
		return id
	}
	// Four treated leads, two per intro variant: both a's opened (one also clicked) and one of them
	// converted; of the b's one bounced and one was opened only by a privacy proxy. Two held-out
	// leads, neither converted. followup has no variants.
	for i := range 2 {
		l := lead()
		s := send(l, "intro", "a", "sent")
		exec(`INSERT INTO events (lead_id, type, send_id, occurred_at) VALUES ($1, 'open', $2, $3)`, l, s, day.Add(time.Hour))
		if i == 0 {
			exec(`INSERT INTO events (lead_id, type, send_id, occurred_at) VALUES ($1, 'click', $2, $3)`, l, s, day.Add(time.Hour))
			exec(`INSERT INTO conversions (lead_id, sequence_id, goal, at) VALUES ($1, 'nurture', 'demo_request', $2)`, l, day.Add(2*time.Hour))
			send(l, "followup", "", "sent")
		}
	}
	send(lead(), "intro", "b", "failed")
	s := send(lead(), "intro", "b", "sent")
	exec(`INSERT INTO events (lead_id, type, send_id, machine, occurred_at) SELECT lead_id, 'open', id, true, $2 FROM sends WHERE id = $1`,
		s, day.Add(time.Hour))
	for range 2 {
		send(lead(), "intro", "a", "held_out")
	}

	r = tend(t, env, "reports", "sequences", "--since", "7d")
	require.NoError(t, r.err, r.stderr)
	out := r.stdout
	assert.Contains(t, out, "nurture: 6 lead(s), 4 treated, 2 held out\n")
	assert.Contains(t, out, "  conversions: treated 1/4 (25%), held out 0/2 (0%); lift +25.0 points\n",
		"no relative lift when the held-out leads did not convert")
	assert.Regexp(t, `(?m)^  step +variant +sent +failed +suppressed +held out +pending +opened +clicked +unsubscribed +converted$`, out)
	assert.Regexp(t, `(?m)^  intro +a +2 +0 +0 +2 +0 +2 100% +1 50% +0 0% +1 50%$`, out)
	assert.Regexp(t, `(?m)^ +b +1 +1 +0 +0 +0 +0 0% +0 0% +0 0% +0 0%$`, out, "the proxy's open is not a person's")
	assert.Regexp(t, `(?m)^  followup +- +1 +0 +0 +0 +0 +0 0% +0 0% +0 0% +1 100%$`, out)
	assert.Less(t, strings.Index(out, "  intro"), strings.Index(out, "  followup"), "steps in the order they were first sent")

	r = tend(t, env, "reports", "sequences", "--output", "json")
	require.NoError(t, r.err, r.stderr)
	var rep db.SequenceReport
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &rep), r.stdout)
	require.Len(t, rep.Sequences, 1)
	require.NotNil(t, rep.Sequences[0].Lift)
	assert.InDelta(t, 0.25, *rep.Sequences[0].Lift, 1e-9)
	assert.WithinDuration(t, time.Now().AddDate(0, 0, -30), rep.Since, time.Minute, "30 days by default")

	r = tend(t, env, "reports", "sequences", "--since", "1h")
	require.NoError(t, r.err, r.stderr)
	assert.Contains(t, r.stdout, "No sends or conversions in this period.")

	for _, c := range []struct {
		args []string
		msg  string
	}{
		{[]string{"--since", "lately"}, `--since must be a look-back such as 30d`},
		{[]string{"--output", "csv"}, `invalid argument "csv" for "-o, --output" flag: must be table or json`},
		{[]string{"extra"}, "takes no arguments"},
	} {
		r = tend(t, env, append([]string{"reports", "sequences"}, c.args...)...)
		require.ErrorIs(t, r.err, errUsage, "%v", c.args)
		assert.Contains(t, r.err.Error(), c.msg)
	}
	r = tend(t, nil, "reports", "sequences")
	require.Error(t, r.err)
	assert.Contains(t, r.err.Error(), "DATABASE_URL")
}
