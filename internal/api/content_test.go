package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tendhq/tend/internal/api"
	"github.com/tendhq/tend/internal/capture"
	"github.com/tendhq/tend/internal/content"
	"github.com/tendhq/tend/internal/db"
	"github.com/tendhq/tend/internal/dbtest"
)

// recorder stands in for the lead's dry run, rollout and resume, which this file does not test:
// it records what the API handed them.
type recorder struct {
	mu       sync.Mutex
	dryRuns  int
	follows  []int
	resumes  []string
	rollout  error
	dryErr   error
	released int
}

// fail makes the dry run and the rollout fail with these errors (nil: succeed).
func (r *recorder) fail(dryRun, rollout error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.dryErr, r.rollout = dryRun, rollout
}

func (r *recorder) DryRun(_ context.Context, cur, next *content.Set) (any, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.dryRuns++
	if r.dryErr != nil {
		return nil, r.dryErr
	}
	return map[string]any{"from": cur.Version(content.Sequences), "waiting": 3}, nil
}

func (r *recorder) Follow(_ context.Context, version int, cur, next *content.Set) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.follows = append(r.follows, version)
	return r.rollout
}

func (r *recorder) Resume(_ context.Context, seq, step string, ramp time.Duration) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.resumes = append(r.resumes, seq+"/"+step+"/"+ramp.String())
	return r.released, nil
}

type contentBundle struct {
	URL   string
	Store *db.Store
	Live  *content.Live
	Rec   *recorder
}

func readExample(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile("../../examples/" + name)
	require.NoError(t, err)
	return string(b)
}

func setupContent(t *testing.T) *contentBundle {
	t.Helper()
	store := dbtest.Store(t)
	seed := content.FileSeed{Sequences: "../../examples/sequences.yaml", Scoring: "../../examples/scoring.yaml", Sales: "../../examples/sales.yaml"}
	live, err := content.Open(context.Background(), store, seed.Read, nil)
	require.NoError(t, err)
	rec := &recorder{released: 2}
	srv := &api.Server{
		Capture: &capture.Service{Store: store, Live: live, Enroller: &fakeEnroller{}},
		Store:   store, APIKeys: []string{apiKey, "other-key-987654"}, KeyNames: map[string]string{apiKey: "ci"},
		Live: live, DryRun: rec, Rollout: rec, Resumer: rec,
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	return &contentBundle{URL: hs.URL, Store: store, Live: live, Rec: rec}
}

func (b *contentBundle) call(t *testing.T, method, path string, v any, header ...string) response {
	t.Helper()
	var body *strings.Reader
	if v != nil {
		data, err := json.Marshal(v)
		require.NoError(t, err)
		body = strings.NewReader(string(data))
	}
	if body == nil {
		return do(t, method, b.URL+path, nil, header...)
	}
	return do(t, method, b.URL+path, body, header...)
}

// A marketer's change: the dry run shows the diff and the dry run and publishes nothing; the
// apply publishes it under the key's name, the leads in flight are told to follow, and the next
// capture already lands in the new segment, without a restart.
func TestApplyShowsTheChangeThenPublishesIt(t *testing.T) {
	t.Parallel()
	b := setupContent(t)
	seqs := strings.Replace(readExample(t, "sequences.yaml"), "interests: [analytics, reporting, dashboards]", "interests: [analytics, reporting, dashboards, bi]", 1)
	req := map[string]any{"files": map[string]any{"sequences": map[string]string{"sequences.yaml": seqs}}, "dry_run": true}

	r := b.call(t, http.MethodPost, "/api/content/apply", req)
	require.Equal(t, http.StatusOK, r.Code, r.Raw)
	assert.Equal(t, false, r.Body["published"])
	diffs := r.Body["diffs"].(map[string]any)
	assert.Contains(t, diffs["sequences"], "+    interests: [analytics, reporting, dashboards, bi]")
	assert.Contains(t, diffs["sequences"], "--- sequences/sequences.yaml (version 1)")
	assert.Equal(t, map[string]any{"from": 1.0, "waiting": 3.0}, r.Body["dry_run"])
	latest, err := b.Store.LatestContentVersions(context.Background())
	require.NoError(t, err)
	assert.Equal(t, 1, latest["sequences"], "a dry run publishes nothing")
	assert.Empty(t, b.Rec.follows)

	req["dry_run"] = false
	r = b.call(t, http.MethodPost, "/api/content/apply", req)
	require.Equal(t, http.StatusOK, r.Code, r.Raw)
	assert.Equal(t, true, r.Body["published"])
	assert.Equal(t, "follow", r.Body["rollout"])
	vs := r.Body["versions"].([]any)
	require.Len(t, vs, 1)
	v := vs[0].(map[string]any)
	assert.Equal(t, "sequences", v["kind"])
	assert.Equal(t, 2.0, v["version"])
	assert.Equal(t, "ci", v["applied_by"], "the API key's name")
	assert.Nil(t, v["files"])
	assert.Equal(t, []int{2}, b.Rec.follows)
	assert.Equal(t, 2, b.Live.Current().Version(content.Sequences))

	res, err := (&capture.Service{Store: b.Store, Live: b.Live, Enroller: &fakeEnroller{}}).Capture(context.Background(),
		capture.Request{Email: "bi@example.com", Interests: []string{"bi"}, Source: "ebook_download"}, capture.Meta{})
	require.NoError(t, err)
	assert.Equal(t, "analytics", res.Lead.Segment, "the published segments take the next capture")

	// The same text again changes nothing and publishes nothing.
	r = b.call(t, http.MethodPost, "/api/content/apply", req)
	require.Equal(t, http.StatusOK, r.Code, r.Raw)
	assert.Equal(t, false, r.Body["published"])
	assert.Equal(t, []any{"sequences"}, r.Body["unchanged"])

	// Another key, bare, is "admin"; pinned keeps leads where they are: no rollout.
	req["files"] = map[string]any{"sequences": map[string]string{"sequences.yaml": seqs + "\n# pinned\n"}}
	req["pinned"] = true
	r = b.call(t, http.MethodPost, "/api/content/apply", req, "Authorization", "Bearer other-key-987654")
	require.Equal(t, http.StatusOK, r.Code, r.Raw)
	assert.Equal(t, "pinned", r.Body["rollout"])
	v = r.Body["versions"].([]any)[0].(map[string]any)
	assert.Equal(t, "admin", v["applied_by"])
	assert.Equal(t, true, v["pinned"])
	assert.Equal(t, []int{2}, b.Rec.follows, "a pinned version moves nobody")

	r = b.call(t, http.MethodGet, "/api/content/versions?kind=sequences", nil)
	require.Equal(t, http.StatusOK, r.Code, r.Raw)
	require.Len(t, r.Body["versions"], 3)
	assert.Equal(t, 3.0, r.Body["in_use"].(map[string]any)["sequences"])
	r = b.call(t, http.MethodGet, "/api/content/versions", nil)
	require.Len(t, r.Body["versions"], 6, "three sequences versions and the first of each other kind")
	r = b.call(t, http.MethodGet, "/api/content/versions?kind=segments", nil)
	require.Equal(t, http.StatusUnprocessableEntity, r.Code)
	assert.Contains(t, r.Raw, `unknown kind \"segments\"`)

	// A rollback republishes version 1's text as version 4, and the leads follow it.
	r = b.call(t, http.MethodPost, "/api/content/rollback", map[string]any{"kind": "sequences", "version": 1})
	require.Equal(t, http.StatusOK, r.Code, r.Raw)
	v = r.Body["versions"].([]any)[0].(map[string]any)
	assert.Equal(t, 4.0, v["version"])
	assert.Equal(t, 1.0, v["rollback_of"])
	assert.Equal(t, []int{2, 4}, b.Rec.follows)
	_, ok := b.Live.Current().Catalog.Segment("analytics")
	require.True(t, ok)
	r = b.call(t, http.MethodPost, "/api/content/rollback", map[string]any{"kind": "sequences", "version": 40})
	require.Equal(t, http.StatusNotFound, r.Code, r.Raw)
	assert.Contains(t, r.Raw, "sequences version 40 does not exist")
}

// A change that does not build is refused with every mistake, file and line; nothing is
// published and nothing moves.
func TestApplyRefusesContentThatDoesNotBuild(t *testing.T) {
	t.Parallel()
	b := setupContent(t)
	seqs := strings.Replace(readExample(t, "sequences.yaml"), "template: analytics-1", "template: analytics-9", 1)
	r := b.call(t, http.MethodPost, "/api/content/apply", map[string]any{"files": map[string]any{
		"sequences": map[string]string{"sequences.yaml": seqs},
		"scoring":   map[string]string{"scoring.yaml": "version: 1\n"},
	}})
	require.Equal(t, http.StatusUnprocessableEntity, r.Code, r.Raw)
	assert.Contains(t, r.Body["error"], "nothing was published")
	var body struct {
		Diagnostics []struct {
			File    string `json:"file"`
			Line    int    `json:"line"`
			Message string `json:"message"`
		} `json:"diagnostics"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.Raw), &body))
	files := map[string]bool{}
	for _, d := range body.Diagnostics {
		files[d.File] = true
		if strings.Contains(d.Message, "analytics-9") {
			assert.Equal(t, 43, d.Line)
		}
	}
	assert.Equal(t, map[string]bool{"sequences.yaml": true, "scoring.yaml": true}, files)

	r = b.call(t, http.MethodPost, "/api/content/apply", map[string]any{"files": map[string]any{"segments": map[string]string{"x": "y"}}})
	require.Equal(t, http.StatusUnprocessableEntity, r.Code, r.Raw)
	assert.Contains(t, r.Raw, `unknown kind \"segments\"`)
	r = b.call(t, http.MethodPost, "/api/content/apply", map[string]any{"files": map[string]any{}})
	require.Equal(t, http.StatusUnprocessableEntity, r.Code, r.Raw)

	big := strings.Repeat("# padding\n", 250_000)
	r = b.call(t, http.MethodPost, "/api/content/apply", map[string]any{"files": map[string]any{"sequences": map[string]string{"s.yaml": big}}})
	require.Equal(t, http.StatusRequestEntityTooLarge, r.Code)

	r = b.call(t, http.MethodPost, "/api/content/apply", map[string]any{"files": map[string]any{"sequences": map[string]string{"s.yaml": seqs}}}, "Authorization", "")
	require.Equal(t, http.StatusUnauthorized, r.Code)

	list, err := b.Store.ContentVersions(context.Background(), "")
	require.NoError(t, err)
	assert.Len(t, list, 4, "only the seeded versions")
	assert.Empty(t, b.Rec.follows)
	assert.Zero(t, b.Rec.dryRuns, "nothing to dry-run for content that does not build")
}

// A change whose dry run cannot be computed is not published blind; a rollout that fails leaves
// the version published and says so.
func TestApplyWithoutItsDryRunWaits(t *testing.T) {
	t.Parallel()
	b := setupContent(t)
	b.Rec.fail(errors.New("temporal unreachable"), nil)
	seqs := readExample(t, "sequences.yaml") + "\n# edited\n"
	req := map[string]any{"files": map[string]any{"sequences": map[string]string{"sequences.yaml": seqs}}}
	r := b.call(t, http.MethodPost, "/api/content/apply", req)
	require.Equal(t, http.StatusServiceUnavailable, r.Code, r.Raw)
	assert.Contains(t, r.Body["error"], "nothing was published")
	assert.Equal(t, 1, b.Live.Current().Version(content.Sequences))

	b.Rec.fail(nil, errors.New("3 leads not moved"))
	r = b.call(t, http.MethodPost, "/api/content/apply", req)
	require.Equal(t, http.StatusOK, r.Code, r.Raw)
	assert.Equal(t, true, r.Body["published"])
	assert.Equal(t, "failed: 3 leads not moved", r.Body["rollout"])
	assert.Equal(t, 2, b.Live.Current().Version(content.Sequences))
}

// Pausing names a sequence and step of the published content; the pause is recorded under the
// key's name and a resume hands the held sends to the resumer with its ramp.
func TestPauseAndResume(t *testing.T) {
	t.Parallel()
	b := setupContent(t)
	ctx := context.Background()

	r := b.call(t, http.MethodPost, "/api/sequences/nope/pause", map[string]any{})
	require.Equal(t, http.StatusNotFound, r.Code)
	assert.Contains(t, r.Raw, `no sequence \"nope\"`)
	r = b.call(t, http.MethodPost, "/api/sequences/analytics-series/pause", map[string]any{"step": "nope"})
	require.Equal(t, http.StatusNotFound, r.Code)
	assert.Contains(t, r.Raw, "intro, deep-dive, case-study")

	r = b.call(t, http.MethodPost, "/api/sequences/analytics-series/pause", map[string]any{"step": "deep-dive"})
	require.Equal(t, http.StatusOK, r.Code, r.Raw)
	assert.Equal(t, false, r.Body["already_paused"])
	paused, err := b.Store.Paused(ctx, "analytics-series", "deep-dive")
	require.NoError(t, err)
	assert.True(t, paused)
	paused, err = b.Store.Paused(ctx, "analytics-series", "intro")
	require.NoError(t, err)
	assert.False(t, paused, "only that step")
	r = b.call(t, http.MethodPost, "/api/sequences/reengagement/pause", nil)
	require.Equal(t, http.StatusOK, r.Code, r.Raw)

	r = b.call(t, http.MethodGet, "/api/sequences/pauses", nil)
	require.Equal(t, http.StatusOK, r.Code, r.Raw)
	ps := r.Body["pauses"].([]any)
	require.Len(t, ps, 2)
	assert.Equal(t, "ci", ps[0].(map[string]any)["paused_by"])

	r = b.call(t, http.MethodPost, "/api/sequences/analytics-series/resume", map[string]any{"step": "deep-dive", "ramp": "soon"})
	require.Equal(t, http.StatusUnprocessableEntity, r.Code, r.Raw)
	r = b.call(t, http.MethodPost, "/api/sequences/analytics-series/resume", map[string]any{"step": "deep-dive", "ramp": "1h"})
	require.Equal(t, http.StatusOK, r.Code, r.Raw)
	assert.Equal(t, true, r.Body["was_paused"])
	assert.Equal(t, 2.0, r.Body["released"])
	assert.Equal(t, []string{"analytics-series/deep-dive/1h0m0s"}, b.Rec.resumes)
	paused, err = b.Store.Paused(ctx, "analytics-series", "deep-dive")
	require.NoError(t, err)
	assert.False(t, paused)
}
