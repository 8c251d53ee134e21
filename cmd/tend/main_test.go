package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tendhq/tend/internal/pgtest"
)

// envRunAsTend makes the test binary be tend itself: run with it set, it runs main with its
// arguments, so a test can start `tend dev` as a process of its own and kill it.
const envRunAsTend = "TEND_TEST_RUN_AS_TEND"

func TestMain(m *testing.M) {
	if os.Getenv(envRunAsTend) == "1" {
		main()
		os.Exit(0)
	}
	pgtest.Main(m)
}

// result is what one `tend …` invocation left behind.
type result struct {
	err            error
	stdout, stderr string
}

// tend runs the CLI in-process with the given environment (and nothing from the real one).
func tend(t *testing.T, env map[string]string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	err := run(ctx, args, &stdout, &stderr, func(k string) string { return env[k] })
	return result{err: err, stdout: stdout.String(), stderr: stderr.String()}
}

// closedPort returns a local address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
	return p
}

func TestVersion(t *testing.T) {
	t.Parallel()
	r := tend(t, nil, "version")
	require.NoError(t, r.err)
	assert.Regexp(t, `^tend \S+\n$`, r.stdout)
}

func TestUnknownCommandIsAUsageError(t *testing.T) {
	t.Parallel()
	r := tend(t, nil, "frobnicate")
	require.ErrorIs(t, r.err, errUsage)
	assert.Contains(t, r.err.Error(), `unknown command "frobnicate"`)
	assert.Contains(t, r.stderr, "Usage:")
	assert.Contains(t, r.stderr, "tend leads import")

	r = tend(t, nil)
	require.ErrorIs(t, r.err, errUsage)
	assert.Contains(t, r.stderr, "Usage:")

	r = tend(t, nil, "sequences", "check", "x.yaml")
	require.ErrorIs(t, r.err, errUsage)
}

func TestServerAndWorkerNeedDatabaseURL(t *testing.T) {
	t.Parallel()
	for _, cmd := range []string{"worker", "server"} {
		t.Run(cmd, func(t *testing.T) {
			t.Parallel()
			r := tend(t, map[string]string{"TEMPORAL_ADDRESS": closedPort(t), "TEND_ALLOW_EXAMPLES": "1"}, cmd)
			require.Error(t, r.err)
			assert.Contains(t, r.err.Error(), "DATABASE_URL")
		})
	}
}

// tend server and worker will not run as the demo (its sender identity, its example team)
// unless told so, by TEND_ALLOW_EXAMPLES=1 or --allow-examples; the error names what to change.
func TestServerAndWorkerRefuseTheExamples(t *testing.T) {
	t.Parallel()
	for _, cmd := range []string{"worker", "server"} {
		t.Run(cmd, func(t *testing.T) {
			t.Parallel()
			env := map[string]string{"TEMPORAL_ADDRESS": closedPort(t)}
			r := tend(t, env, cmd)
			require.Error(t, r.err)
			assert.Contains(t, r.err.Error(), "tend "+cmd+" will not send as the demo")
			assert.Contains(t, r.err.Error(), "TEND_FROM_ADDRESS")
			assert.Contains(t, r.err.Error(), "TEND_SALES")
			assert.Contains(t, r.err.Error(), "TEND_ALLOW_EXAMPLES=1")

			r = tend(t, env, cmd, "--allow-examples")
			require.Error(t, r.err)
			assert.Contains(t, r.err.Error(), "DATABASE_URL", "allowed, it goes on to the next check")

			env["TEND_FROM_ADDRESS"], env["TEND_SALES"] = "news@northwind.io", "off"
			r = tend(t, env, cmd)
			require.Error(t, r.err)
			assert.Contains(t, r.err.Error(), "DATABASE_URL", "a production sender passes")
		})
	}
}

func TestLintExamples(t *testing.T) {
	t.Parallel()
	r := tend(t, nil, "sequences", "lint", "../../examples/sequences.yaml", "../../examples/sequences-production.yaml")
	require.NoError(t, r.err, r.stdout)
	assert.Equal(t, "2 file(s) OK\n", r.stdout)
}

func TestLintReportsEveryProblemWithItsLine(t *testing.T) {
	t.Parallel()
	file := writeFile(t, "broken.yaml", `version: 1
default_segment: general
send_window:
  cron: "* 25 * * *"
segments:
  - id: general
    colour: blue
    sequence:
      id: general-series
      steps:
        - id: welcome
          template: no-such-template
          subject: Hello
          wait: -1h
        - id: welcome
          template: general-2
          subject: Again
`)
	r := tend(t, nil, "sequences", "lint", file)
	require.Error(t, r.err)
	assert.Contains(t, r.err.Error(), "5 problem(s)")

	lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	wantLines := []struct {
		line int
		msg  string
	}{
		{4, `invalid cron spec "* 25 * * *"`},
		{7, `unknown field "colour"`},
		{12, `unknown template "no-such-template"`},
		{14, `wait: must not be negative, got -1h`},
		{15, `duplicate step id "welcome" (first on line 11)`},
	}
	require.Len(t, lines, len(wantLines), r.stdout)
	for i, w := range wantLines {
		prefix := file + ":" + strconv.Itoa(w.line) + ": "
		assert.True(t, strings.HasPrefix(lines[i], prefix), "line %d: %q should start with %q", i, lines[i], prefix)
		assert.Contains(t, lines[i], w.msg)
	}
	assert.NotContains(t, r.stdout, "OK")
}

func TestLintMissingFile(t *testing.T) {
	t.Parallel()
	r := tend(t, nil, "sequences", "lint", filepath.Join(t.TempDir(), "missing.yaml"))
	require.Error(t, r.err)
	assert.Contains(t, r.stdout, "missing.yaml")

	r = tend(t, nil, "sequences", "lint")
	require.ErrorIs(t, r.err, errUsage)
}

func TestMigrateTwice(t *testing.T) {
	t.Parallel()
	env := map[string]string{"DATABASE_URL": pgtest.NewDB(t)}
	r := tend(t, env, "migrate")
	require.NoError(t, r.err, r.stderr)
	assert.Contains(t, r.stdout, "applied")
	assert.NotContains(t, r.stdout, "up to date")

	r = tend(t, env, "migrate")
	require.NoError(t, r.err, r.stderr)
	assert.Equal(t, "database schema is up to date\n", r.stdout)
}

func TestMigrateWithoutDatabaseURL(t *testing.T) {
	t.Parallel()
	r := tend(t, nil, "migrate")
	require.Error(t, r.err)
	assert.Contains(t, r.err.Error(), "DATABASE_URL")
}

// importCSV has, by physical line: a header (1); good rows (2, 3); the first row again with the
// address in other case (4); a blank line (5); a bad address (6); a bad consent value (7); a row
// with one field too many (8); another good row (9).
const importCSV = `email,name,company,interests,consent,consent_wording
ada@example.com,Ada Lovelace,Analytical Engines,analytics,yes,signup-v1
grace@example.com,Grace Hopper,US Navy,automation,yes,signup-v1
ADA@Example.COM,Ada King,Analytical Engines,analytics,yes,signup-v1

not-an-email,Bob,Bobco,,yes,signup-v1
carol@example.com,Carol,Carolco,,maybe,signup-v1
dave@example.com,Dave,Daveco,security,yes,signup-v1,surplus
erin@example.com,Erin,Erinco,,yes,signup-v1
`

func TestImportLeads(t *testing.T) {
	t.Parallel()
	dbURL := pgtest.NewDB(t)
	env := map[string]string{
		"DATABASE_URL":     dbURL,
		"TEMPORAL_ADDRESS": closedPort(t),
		"TEND_SEQUENCES":   "../../examples/sequences.yaml",
		"TEND_SCORING":     "../../examples/scoring.yaml",
		"TEND_SALES":       "../../examples/sales.yaml",
	}
	require.NoError(t, tend(t, env, "migrate").err)
	file := writeFile(t, "leads.csv", importCSV)

	r := tend(t, env, "leads", "import", "--batch", "spring-fair", file)
	require.NoError(t, r.err, "stdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)

	out := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	require.Len(t, out, 4, r.stdout)
	assert.Regexp(t, `^line 6: email: `, out[0])
	assert.Regexp(t, `^line 7: consent: "maybe" is not yes or no`, out[1])
	assert.Regexp(t, `^line 8: has 7 fields but the header has 6`, out[2])
	assert.Equal(t, "imported 4 lead(s): 3 new, 1 updated; skipped 3 bad row(s); 4 waiting for enrolment", out[3])
	// The Temporal warning is for the person watching, not for stdout; a progress bar is only
	// for a terminal, and stderr here is not one.
	assert.NotContains(t, r.stdout, "\r")
	assert.NotContains(t, r.stderr, "\r")
	assert.Contains(t, r.stderr, "will be enrolled by `tend server`")

	ctx := t.Context()
	conn, err := pgx.Connect(ctx, dbURL)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close(context.Background()) })

	emails := func() []string {
		rows, err := conn.Query(ctx, `SELECT email FROM leads ORDER BY email`)
		require.NoError(t, err)
		got, err := pgx.CollectRows(rows, pgx.RowTo[string])
		require.NoError(t, err)
		return got
	}
	assert.Equal(t, []string{"ada@example.com", "erin@example.com", "grace@example.com"}, emails())

	var name, segment string
	require.NoError(t, conn.QueryRow(ctx, `SELECT name, segment FROM leads WHERE email = 'ada@example.com'`).Scan(&name, &segment))
	assert.Equal(t, "analytics", segment)
	assert.NotEmpty(t, name)

	// Every lead waits in the outbox for the reconciler, since Temporal was unreachable.
	var withoutPending int
	require.NoError(t, conn.QueryRow(ctx, `SELECT count(*) FROM leads l WHERE NOT EXISTS (
		SELECT 1 FROM enrollments e WHERE e.lead_id = l.id AND e.delivered_at IS NULL)`).Scan(&withoutPending))
	assert.Zero(t, withoutPending, "leads without an undelivered enrolment")
	var delivered int
	require.NoError(t, conn.QueryRow(ctx, `SELECT count(*) FROM enrollments WHERE delivered_at IS NOT NULL`).Scan(&delivered))
	assert.Zero(t, delivered)

	// Consents record which import they came from.
	rows, err := conn.Query(ctx, `SELECT l.email, c.granted, c.import_batch, c.wording_id FROM consents c
		JOIN leads l ON l.id = c.lead_id ORDER BY l.email, c.id`)
	require.NoError(t, err)
	type consent struct {
		Email   string
		Granted bool
		Batch   string
		Wording string
	}
	consents, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (consent, error) {
		var c consent
		err := row.Scan(&c.Email, &c.Granted, &c.Batch, &c.Wording)
		return c, err
	})
	require.NoError(t, err)
	assert.Equal(t, []consent{
		{"ada@example.com", true, "spring-fair", "signup-v1"},
		{"ada@example.com", true, "spring-fair", "signup-v1"},
		{"erin@example.com", true, "spring-fair", "signup-v1"},
		{"grace@example.com", true, "spring-fair", "signup-v1"},
	}, consents)

	// Importing the same file again is safe: nothing new, the same rows rejected.
	r = tend(t, env, "leads", "import", "--quiet", file)
	require.NoError(t, r.err, r.stderr)
	assert.Contains(t, r.stdout, "line 6: email: ")
	assert.Contains(t, r.stdout, "imported 4 lead(s): 0 new, 4 updated; skipped 3 bad row(s); 4 waiting for enrolment\n")
	assert.Equal(t, []string{"ada@example.com", "erin@example.com", "grace@example.com"}, emails())

	// Without --batch the batch names the file.
	var batches []string
	rows, err = conn.Query(ctx, `SELECT DISTINCT import_batch FROM consents ORDER BY import_batch`)
	require.NoError(t, err)
	batches, err = pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	require.Len(t, batches, 2)
	assert.Regexp(t, regexp.MustCompile(`^leads\.csv@\d{4}-\d\d-\d\dT`), batches[0])
	assert.Equal(t, "spring-fair", batches[1])
}

func TestImportNeedsAFile(t *testing.T) {
	t.Parallel()
	r := tend(t, nil, "leads", "import")
	require.ErrorIs(t, r.err, errUsage)
}

func TestScoringLint(t *testing.T) {
	var out bytes.Buffer
	require.NoError(t, run(context.Background(), []string{"scoring", "lint", "../../examples/scoring.yaml"}, &out, &bytes.Buffer{}, func(string) string { return "" }))
	assert.Contains(t, out.String(), "1 file(s) OK")
	out.Reset()
	err := run(context.Background(), []string{"scoring", "lint", "../../internal/score/testdata/bad.yaml"}, &out, &bytes.Buffer{}, func(string) string { return "" })
	require.Error(t, err)
	assert.Regexp(t, `(?m)^\.\./\.\./internal/score/testdata/bad\.yaml:\d+: `, out.String())
}

// tend sequences simulate prints the calendar of one lead: the production example for a lead
// captured on a Friday evening.
func TestSequencesSimulate(t *testing.T) {
	r := tend(t, nil, "sequences", "simulate", "../../examples/sequences-production.yaml", "--segment", "analytics",
		"--at", "2026-11-27T18:00", "--days", "60")
	require.NoError(t, r.err, r.stderr)
	lines := strings.Split(r.stdout, "\n")
	assert.Contains(t, lines[0], "segment analytics (analytics-series), captured Fri 27 Nov 2026 18:00 Europe/Berlin")
	assert.Contains(t, r.stdout, "  Mon 30 Nov 2026 10:04  +2d16h4m   analytics-series/intro")
	assert.Contains(t, r.stdout, "  Thu 03 Dec 2026 10:04  +3d        analytics-series/deep-dive")
	assert.Contains(t, r.stdout, "  Thu 10 Dec 2026 10:04  +7d        analytics-series/case-study")
	assert.Contains(t, r.stdout, "  Mon 28 Dec 2026 10:41  +18d37m    reengagement/still-interested")
	assert.Contains(t, r.stdout, "5 email(s) sent. Then: sunset")
}

func TestSequencesSimulateBadInput(t *testing.T) {
	file := "../../examples/sequences-production.yaml"
	for _, c := range []struct {
		args []string
		msg  string
	}{
		{[]string{file, "--segment", "nope"}, `--segment: "nope" is not a segment`},
		{[]string{file, "--at", "27.11.2026 18:00"}, `--at: "27.11.2026 18:00" is not a time like 2026-11-27T18:00`},
		{[]string{file, "--tz", "Mars/Olympus"}, `--tz: "Mars/Olympus" is not a time zone`},
		{[]string{file, "--days", "0"}, "--days must be between 1 and 3650"},
		{[]string{file, "--click-after", "soon"}, `--click-after: "soon" is not a duration`},
		{[]string{}, "tend sequences simulate FILE"},
	} {
		r := tend(t, nil, append([]string{"sequences", "simulate"}, c.args...)...)
		require.ErrorIs(t, r.err, errUsage, "%v", c.args)
		assert.Contains(t, r.err.Error(), c.msg)
	}
	bad := writeFile(t, "bad.yaml", "version: 1\nsegments: []\n")
	r := tend(t, nil, "sequences", "simulate", bad)
	require.Error(t, r.err)
	assert.Contains(t, r.err.Error(), "tend sequences lint lists them")
	r = tend(t, nil, "sequences", "simulate", "missing.yaml")
	require.Error(t, r.err)
	assert.Contains(t, r.err.Error(), "missing.yaml")
}

// Asking any command for help prints its usage and does nothing else: no data directory, no
// Postgres, no benchmark, no configuration needed. It runs in an empty working directory with an
// empty TMPDIR and checks both are still empty afterwards.
func TestHelpOfEveryCommandDoesNothingElse(t *testing.T) {
	work, tmp := t.TempDir(), t.TempDir()
	t.Chdir(work)
	t.Setenv("TMPDIR", tmp)
	type helpCase struct {
		args []string
		want string // in the usage
	}
	cases := []helpCase{
		{[]string{"help"}, "tend dev"},
		{[]string{"--help"}, "tend leads import"},
		{[]string{"-h"}, "tend bench"},
		{[]string{"dev", "--help"}, "tend dev"},
		{[]string{"dev", "-h"}, "tend dev"},
		{[]string{"dev", "help"}, "tend dev"},
		{[]string{"dev", "--pg-port", "5999", "--help"}, "tend dev"},
		{[]string{"server", "--help"}, "tend server"},
		{[]string{"worker", "--help"}, "tend worker"},
		{[]string{"migrate", "--help"}, "tend migrate"},
		{[]string{"migrate", "help"}, "tend migrate"},
		{[]string{"sequences", "--help"}, "tend sequences simulate"},
		{[]string{"sequences", "help"}, "tend sequences lint"},
		{[]string{"sequences", "lint", "--help"}, "tend sequences lint"},
		{[]string{"sequences", "simulate", "--help"}, "tend sequences simulate"},
		{[]string{"sequences", "simulate", "x.yaml", "--help"}, "tend sequences simulate"},
		{[]string{"sequences", "pause", "--help"}, "tend sequences pause"},
		{[]string{"sequences", "pause", "welcome", "--help"}, "tend sequences pause"},
		{[]string{"sequences", "resume", "--help"}, "tend sequences resume"},
		{[]string{"apply", "--help"}, "tend apply"},
		{[]string{"apply", "examples/sequences.yaml", "--dry-run", "--help"}, "tend apply"},
		{[]string{"apply", "--rollback", "2", "-h"}, "tend apply"},
		{[]string{"versions", "--help"}, "tend versions"},
		{[]string{"scoring", "--help"}, "tend scoring lint"},
		{[]string{"scoring", "lint", "--help"}, "tend scoring lint"},
		{[]string{"sales", "-h"}, "tend sales lint"},
		{[]string{"sales", "lint", "--help"}, "tend sales lint"},
		{[]string{"leads", "--help"}, "tend leads import"},
		{[]string{"leads", "import", "--help"}, "tend leads import"},
		{[]string{"reports", "--help"}, "tend reports sequences"},
		{[]string{"reports", "sequences", "--help"}, "tend reports sequences"},
		{[]string{"bench", "--help"}, "tend bench"},
		{[]string{"bench", "-h"}, "tend bench"},
		{[]string{"temporal", "--help"}, "tend temporal --db FILE"},
		{[]string{"temporal", "--port", "7999", "-h"}, "tend temporal"},
		{[]string{"version", "--help"}, "tend version"},
		{[]string{"help", "dev"}, "tend dev"},
		{[]string{"help", "leads", "import"}, "tend leads import"},
	}
	// Every command of the tree, as tend builds it, is asked in the three ways.
	for _, cmd := range allCommands(newRootCommand(&cli{stdout: io.Discard, stderr: io.Discard, getenv: os.Getenv})) {
		path := strings.Fields(cmd.CommandPath())[1:]
		want := cmd.CommandPath()
		cases = append(cases, helpCase{append(slices.Clone(path), "--help"), want}, helpCase{append(slices.Clone(path), "-h"), want},
			helpCase{append([]string{"help"}, path...), want})
	}
	for _, c := range cases {
		t.Run(strings.Join(c.args, "_"), func(t *testing.T) {
			// Long enough for help, far too short for a stack or a benchmark to finish.
			ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
			defer cancel()
			var stdout, stderr bytes.Buffer
			err := run(ctx, c.args, &stdout, &stderr, func(string) string { return "" })
			require.NoError(t, err, "stdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
			assert.Contains(t, stdout.String(), "Usage:")
			assert.Contains(t, stdout.String(), c.want)
			assert.Empty(t, stderr.String())
			for _, dir := range []string{work, tmp} {
				entries, err := os.ReadDir(dir)
				require.NoError(t, err)
				var names []string
				for _, e := range entries {
					names = append(names, e.Name())
					require.NoError(t, os.RemoveAll(filepath.Join(dir, e.Name())))
				}
				assert.Empty(t, names, "%v left files in %s", c.args, dir)
			}
		})
	}
}
