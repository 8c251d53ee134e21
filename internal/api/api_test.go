package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tendhq/tend/internal/api"
	"github.com/tendhq/tend/internal/capture"
	"github.com/tendhq/tend/internal/db"
	"github.com/tendhq/tend/internal/dbtest"
	"github.com/tendhq/tend/internal/lifecycle"
	"github.com/tendhq/tend/internal/pgcluster"
	"github.com/tendhq/tend/internal/pgtest"
	"github.com/tendhq/tend/internal/sequence"
	"github.com/tendhq/tend/workflows"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

const apiKey = "test-key-0123456789"

// enrollCall is one call the fake enroller received.
type enrollCall struct {
	LeadID  string
	Capture workflows.Capture
}

// fakeEnroller records enrolments instead of signalling Temporal.
type fakeEnroller struct {
	mu    sync.Mutex
	calls []enrollCall
	err   error
}

func (f *fakeEnroller) Enroll(_ context.Context, leadID string, c workflows.Capture) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, enrollCall{LeadID: leadID, Capture: c})
	return f.err
}

func (f *fakeEnroller) Calls() []enrollCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]enrollCall(nil), f.calls...)
}

// bundle is the API under test and its collaborators.
type bundle struct {
	URL      string
	Store    *db.Store
	Enroller *fakeEnroller
}

func loadCatalog(t *testing.T) *sequence.Catalog {
	t.Helper()
	cat, err := sequence.Load("../../examples/sequences.yaml", sequence.Options{})
	require.NoError(t, err)
	return cat
}

// serve runs the API over store, behind a real HTTP server.
func serve(t *testing.T, store *db.Store) *bundle {
	t.Helper()
	enr := &fakeEnroller{}
	srv := &api.Server{
		Capture: &capture.Service{Store: store, Catalog: loadCatalog(t), Enroller: enr},
		Store:   store,
		APIKeys: []string{apiKey},
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	return &bundle{URL: hs.URL, Store: store, Enroller: enr}
}

// setup returns the API over a fresh, migrated database.
func setup(t *testing.T) *bundle {
	t.Helper()
	return serve(t, dbtest.Store(t))
}

// response is a decoded API answer.
type response struct {
	Code   int
	Header http.Header
	Body   map[string]any
	Raw    string
}

type errorBody struct {
	Error  string `json:"error"`
	Fields []struct {
		Field   string `json:"field"`
		Message string `json:"message"`
	} `json:"fields"`
}

func (r response) errorBody(t *testing.T) errorBody {
	t.Helper()
	var e errorBody
	require.NoError(t, json.Unmarshal([]byte(r.Raw), &e), "body: %s", r.Raw)
	require.NotEmpty(t, e.Error, "an error response says what went wrong: %s", r.Raw)
	return e
}

func (e errorBody) fieldNames() []string {
	var out []string
	for _, f := range e.Fields {
		out = append(out, f.Field)
	}
	return out
}

// do sends a request; header pairs override the defaults (JSON body, the valid API key).
func do(t *testing.T, method, url string, body io.Reader, header ...string) response {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	require.NoError(t, err)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+apiKey)
	for i := 0; i+1 < len(header); i += 2 {
		if header[i+1] == "" {
			req.Header.Del(header[i])
		} else {
			req.Header.Set(header[i], header[i+1])
		}
	}
	client := &http.Client{Timeout: 30 * time.Second}
	resp, err := client.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	out := response{Code: resp.StatusCode, Header: resp.Header, Raw: string(raw)}
	require.Contains(t, resp.Header.Get("Content-Type"), "application/json", "every answer is JSON: %s", raw)
	require.NoError(t, json.Unmarshal(raw, &out.Body), "body: %s", raw)
	return out
}

func (b *bundle) post(t *testing.T, body string, header ...string) response {
	t.Helper()
	return do(t, http.MethodPost, b.URL+"/api/v1/leads", strings.NewReader(body), header...)
}

func (b *bundle) postJSON(t *testing.T, v any) response {
	t.Helper()
	data, err := json.Marshal(v)
	require.NoError(t, err)
	return b.post(t, string(data))
}

// counts returns the number of rows in every table a capture writes.
func (b *bundle) counts(t *testing.T) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, table := range []string{"leads", "captures", "consents", "enrollments"} {
		var n int
		require.NoError(t, b.Store.Pool().QueryRow(context.Background(), "SELECT count(*) FROM "+table).Scan(&n))
		out[table] = n
	}
	return out
}

var nothing = map[string]int{"leads": 0, "captures": 0, "consents": 0, "enrollments": 0}

// requireNothingWritten asserts that a rejected request left no trace.
func (b *bundle) requireNothingWritten(t *testing.T) {
	t.Helper()
	require.Equal(t, nothing, b.counts(t), "a rejected request must not write anything")
	require.Empty(t, b.Enroller.Calls(), "a rejected request must not enrol anyone")
}

func TestCaptureRejectsBadInput(t *testing.T) {
	t.Parallel()
	b := setup(t)

	tooMany := make([]string, 21)
	for i := range tooMany {
		tooMany[i] = "topic" + string(rune('a'+i))
	}

	tests := []struct {
		name      string
		body      string
		header    []string
		wantCode  int
		wantField string // for 422: a field named in "fields"
		wantMsg   string // a substring of "error"
	}{
		// Validation: the request is JSON, but its values are not acceptable.
		{name: "email missing", body: `{"name":"Ana"}`, wantCode: 422, wantField: "email", wantMsg: "required"},
		{name: "email empty", body: `{"email":"  "}`, wantCode: 422, wantField: "email", wantMsg: "required"},
		{name: "email not an address", body: `{"email":"not-an-email"}`, wantCode: 422, wantField: "email", wantMsg: "not-an-email"},
		{name: "email without dot in domain", body: `{"email":"a@b"}`, wantCode: 422, wantField: "email", wantMsg: "dot"},
		{name: "email with empty label", body: `{"email":"x@y..com"}`, wantCode: 422, wantField: "email", wantMsg: "email"},
		{name: "email with CRLF", body: `{"email":"ana@example.com\r\nBcc: x@y.com"}`, wantCode: 422, wantField: "email", wantMsg: "control characters"},
		{name: "email with display name", body: `{"email":"Eve <e@x.com>"}`, wantCode: 422, wantField: "email", wantMsg: "email"},
		{name: "name with header injection", body: `{"email":"ana@example.com","name":"Ana\r\nBcc: x@y.com"}`, wantCode: 422, wantField: "name", wantMsg: "line breaks"},
		{name: "unknown source", body: `{"email":"ana@example.com","source":"carrier_pigeon"}`, wantCode: 422, wantField: "source", wantMsg: "carrier_pigeon"},
		{name: "bad time zone", body: `{"email":"ana@example.com","time_zone":"Mars/Olympus_Mons"}`, wantCode: 422, wantField: "time_zone", wantMsg: "Mars/Olympus_Mons"},
		{name: "too many interests", body: mustJSON(t, map[string]any{"email": "ana@example.com", "interests": tooMany}), wantCode: 422, wantField: "interests", wantMsg: "at most 20"},
		{name: "bad interest", body: `{"email":"ana@example.com","interests":["ok","<script>"]}`, wantCode: 422, wantField: "interests[1]", wantMsg: "<script>"},
		{name: "bad attribute key", body: `{"email":"ana@example.com","attributes":{"Bad Key":"x"}}`, wantCode: 422, wantField: "attributes", wantMsg: "Bad Key"},
		{name: "bad consent wording", body: `{"email":"ana@example.com","consent":{"granted":true,"wording_id":"a b"}}`, wantCode: 422, wantField: "consent.wording_id", wantMsg: "wording_id"},

		// Decoding: the body is not the JSON object the API expects.
		{name: "unknown field", body: `{"email":"ana@example.com","emial":"x"}`, wantCode: 400, wantMsg: "emial"},
		{name: "interests not an array", body: `{"email":"ana@example.com","interests":"analytics"}`, wantCode: 400, wantMsg: `"interests"`},
		{name: "email not a string", body: `{"email":5}`, wantCode: 400, wantMsg: `"email"`},
		{name: "consent not an object", body: `{"email":"ana@example.com","consent":true}`, wantCode: 400, wantMsg: `"consent"`},
		{name: "malformed JSON", body: `{"email" "ana@example.com"}`, wantCode: 400, wantMsg: "malformed JSON"},
		{name: "truncated JSON", body: `{"email":"ana@example.com"`, wantCode: 400, wantMsg: "malformed JSON"},
		{name: "two objects", body: `{"email":"ana@example.com"}{"email":"bob@example.com"}`, wantCode: 400, wantMsg: "exactly one JSON object"},
		{name: "trailing garbage", body: `{"email":"ana@example.com"} x`, wantCode: 400, wantMsg: "exactly one JSON object"},
		{name: "array instead of object", body: `[{"email":"ana@example.com"}]`, wantCode: 400, wantMsg: "body must be a JSON object, not array"},
		{name: "string instead of object", body: `"ana@example.com"`, wantCode: 400, wantMsg: "body must be a JSON object, not string"},
		{name: "attribute not a string", body: `{"email":"ana@example.com","attributes":{"plan":5}}`, wantCode: 400, wantMsg: `"attributes"`},
		{name: "empty body", body: ``, wantCode: 400, wantMsg: "empty"},
		{name: "form post", body: `email=ana%40example.com`, header: []string{"Content-Type", "application/x-www-form-urlencoded"}, wantCode: 415, wantMsg: "application/json"},
		{name: "plain text", body: `{"email":"ana@example.com"}`, header: []string{"Content-Type", "text/plain"}, wantCode: 415, wantMsg: "application/json"},
		{name: "body over 64 KiB", body: `{"email":"ana@example.com","name":"` + strings.Repeat("a", api.MaxBodyBytes) + `"}`, wantCode: 413, wantMsg: "larger than"},

		// Authentication.
		{name: "no API key", body: `{"email":"ana@example.com"}`, header: []string{"Authorization", ""}, wantCode: 401, wantMsg: "missing API key"},
		{name: "wrong API key", body: `{"email":"ana@example.com"}`, header: []string{"Authorization", "Bearer nope"}, wantCode: 401, wantMsg: "invalid API key"},
		{name: "wrong X-API-Key", body: `{"email":"ana@example.com"}`, header: []string{"Authorization", "", "X-API-Key", "nope"}, wantCode: 401, wantMsg: "invalid API key"},
		{name: "key without Bearer", body: `{"email":"ana@example.com"}`, header: []string{"Authorization", apiKey}, wantCode: 401, wantMsg: "missing API key"},
		{name: "key as prefix", body: `{"email":"ana@example.com"}`, header: []string{"Authorization", "Bearer " + apiKey[:5]}, wantCode: 401, wantMsg: "invalid API key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := b.post(t, tt.body, tt.header...)
			require.Equal(t, tt.wantCode, resp.Code, "body: %s", resp.Raw)
			e := resp.errorBody(t)
			assert.Contains(t, e.Error, tt.wantMsg)
			if tt.wantField != "" {
				assert.Contains(t, e.fieldNames(), tt.wantField)
				for _, f := range e.Fields {
					assert.NotEmpty(t, f.Message, "field %s needs a message", f.Field)
				}
			}
			if tt.wantCode == http.StatusUnauthorized {
				assert.Contains(t, resp.Header.Get("WWW-Authenticate"), "Bearer")
			}
			b.requireNothingWritten(t)
		})
	}
}

func TestCaptureReportsEveryBadField(t *testing.T) {
	t.Parallel()
	b := setup(t)

	resp := b.post(t, `{"email":"nope","name":"A\nB","source":"fax","time_zone":"Nowhere/Land"}`)
	require.Equal(t, http.StatusUnprocessableEntity, resp.Code, resp.Raw)
	assert.ElementsMatch(t, []string{"email", "name", "source", "time_zone"}, resp.errorBody(t).fieldNames())
	b.requireNothingWritten(t)
}

func TestCaptureAcceptsAPIKeyHeaders(t *testing.T) {
	t.Parallel()
	b := setup(t)

	resp := b.post(t, `{"email":"ana@example.com"}`, "Authorization", "", "X-API-Key", apiKey)
	assert.Equal(t, http.StatusCreated, resp.Code, resp.Raw)
	resp = b.post(t, `{"email":"bob@example.com"}`, "Authorization", "Bearer "+apiKey)
	assert.Equal(t, http.StatusCreated, resp.Code, resp.Raw)
	resp = b.post(t, `{"email":"cy@example.com"}`, "Content-Type", "application/json; charset=utf-8")
	assert.Equal(t, http.StatusCreated, resp.Code, resp.Raw)
	assert.Equal(t, 3, b.counts(t)["leads"])
}

func TestAPIRejectsEveryKeyWhenNoneConfigured(t *testing.T) {
	t.Parallel()
	b := setup(t)
	srv := &api.Server{
		Capture: &capture.Service{Store: b.Store, Catalog: loadCatalog(t), Enroller: b.Enroller},
		Store:   b.Store,
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)

	for _, key := range []string{"Bearer ", "Bearer x", "Bearer " + apiKey} {
		resp := do(t, http.MethodPost, hs.URL+"/api/v1/leads", strings.NewReader(`{"email":"ana@example.com"}`), "Authorization", key)
		assert.Equal(t, http.StatusUnauthorized, resp.Code, "key %q: %s", key, resp.Raw)
	}
	b.requireNothingWritten(t)
}

func TestCaptureCreatesLeadOnce(t *testing.T) {
	t.Parallel()
	b := setup(t)

	resp := b.postJSON(t, map[string]any{
		"email":     "Ana.Lima@Example.com",
		"name":      "  Ana Lima ",
		"company":   "Acme",
		"interests": []string{"Analytics", "sso"},
		"source":    "ebook_download",
		"time_zone": "Europe/Berlin",
		"consent":   map[string]any{"granted": true, "wording_id": "ebook-form-v3"},
	})
	require.Equal(t, http.StatusCreated, resp.Code, resp.Raw)
	id, _ := resp.Body["id"].(string)
	_, err := uuid.Parse(id)
	require.NoError(t, err, "id %q", id)
	assert.Equal(t, "/api/v1/leads/"+id, resp.Header.Get("Location"))
	assert.Equal(t, "analytics", resp.Body["segment"], "analytics is listed before security in the catalog")
	assert.Equal(t, "lead", resp.Body["stage"])
	assert.Equal(t, true, resp.Body["created"])
	assert.Equal(t, true, resp.Body["enrolled"])
	assert.Equal(t, []any{"analytics", "sso"}, resp.Body["interests"])

	calls := b.Enroller.Calls()
	require.Len(t, calls, 1)
	assert.Positive(t, calls[0].Capture.EnrollmentID, "the signal names its outbox row, so a redelivery counts once")
	calls[0].Capture.EnrollmentID = 0
	require.Equal(t, []enrollCall{{LeadID: id, Capture: workflows.Capture{Segment: "analytics", Stage: lifecycle.Lead, TimeZone: "Europe/Berlin"}}},
		calls)

	var granted bool
	var wording, ip, source string
	require.NoError(t, b.Store.Pool().QueryRow(context.Background(),
		`SELECT granted, wording_id, ip, source FROM consents WHERE lead_id = $1`, id).Scan(&granted, &wording, &ip, &source))
	assert.True(t, granted)
	assert.Equal(t, "ebook-form-v3", wording)
	assert.Equal(t, "127.0.0.1", ip, "the consent records where it came from")
	assert.Equal(t, "ebook_download", source)

	var delivered bool
	require.NoError(t, b.Store.Pool().QueryRow(context.Background(),
		`SELECT delivered_at IS NOT NULL FROM enrollments WHERE lead_id = $1`, id).Scan(&delivered))
	assert.True(t, delivered, "the outbox row is marked delivered once the enroller took it")

	// The same person again, typed differently.
	resp = b.postJSON(t, map[string]any{"email": "  ANA.LIMA@example.COM ", "source": "webinar_registration"})
	require.Equal(t, http.StatusOK, resp.Code, resp.Raw)
	assert.Equal(t, id, resp.Body["id"])
	assert.Equal(t, false, resp.Body["created"])
	assert.Empty(t, resp.Header.Get("Location"))

	got := b.counts(t)
	assert.Equal(t, 1, got["leads"], "one person, one lead")
	assert.Equal(t, 2, got["captures"], "every capture is kept as lead-source history")
	assert.Equal(t, 1, got["consents"], "the second capture gave no consent")
	assert.Equal(t, 2, got["enrollments"])
	assert.Len(t, b.Enroller.Calls(), 2)

	lead := do(t, http.MethodGet, b.URL+"/api/v1/leads/"+id, nil)
	require.Equal(t, http.StatusOK, lead.Code, lead.Raw)
	assert.Equal(t, "ana.lima@example.com", lead.Body["email"])
	assert.Equal(t, "Ana Lima", lead.Body["name"], "a later capture without a name keeps the name")
	assert.Equal(t, "Acme", lead.Body["company"])
	assert.Equal(t, "Europe/Berlin", lead.Body["time_zone"])
	assert.Equal(t, "ebook_download", lead.Body["source"], "the first source is the lead's source")
}

func TestCaptureStagePromotesButNeverDemotes(t *testing.T) {
	t.Parallel()
	b := setup(t)

	resp := b.postJSON(t, map[string]any{"email": "sub@example.com", "source": "newsletter_signup"})
	require.Equal(t, http.StatusCreated, resp.Code, resp.Raw)
	id := resp.Body["id"]
	assert.Equal(t, "subscriber", resp.Body["stage"])
	assert.Equal(t, "general", resp.Body["segment"], "no interest means the default segment")

	resp = b.postJSON(t, map[string]any{"email": "sub@example.com", "source": "ebook_download", "interests": []string{"analytics"}})
	require.Equal(t, http.StatusOK, resp.Code, resp.Raw)
	assert.Equal(t, id, resp.Body["id"])
	assert.Equal(t, "lead", resp.Body["stage"], "giving details for an ebook promotes a subscriber to lead")
	assert.Equal(t, "analytics", resp.Body["segment"])

	resp = b.postJSON(t, map[string]any{"email": "sub@example.com", "source": "newsletter_signup"})
	require.Equal(t, http.StatusOK, resp.Code, resp.Raw)
	assert.Equal(t, "lead", resp.Body["stage"], "a later newsletter signup never demotes a lead")
	assert.Equal(t, []any{"analytics"}, resp.Body["interests"], "interests accumulate")

	calls := b.Enroller.Calls()
	require.Len(t, calls, 3)
	assert.Equal(t, lifecycle.Subscriber, calls[0].Capture.Stage)
	assert.Equal(t, lifecycle.Lead, calls[1].Capture.Stage)
	assert.Equal(t, lifecycle.Lead, calls[2].Capture.Stage, "the workflow is never told to demote")
}

func TestCaptureSavesLeadWhenTemporalIsDown(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.Enroller.err = errors.New("temporal: connection refused")

	resp := b.postJSON(t, map[string]any{"email": "ana@example.com"})
	require.Equal(t, http.StatusCreated, resp.Code, resp.Raw)
	assert.Equal(t, false, resp.Body["enrolled"])
	assert.Contains(t, resp.Body["enrollment"], "pending")

	var delivered bool
	var attempts int
	var lastErr string
	require.NoError(t, b.Store.Pool().QueryRow(context.Background(),
		`SELECT delivered_at IS NOT NULL, attempts, last_error FROM enrollments`).Scan(&delivered, &attempts, &lastErr))
	assert.False(t, delivered, "the outbox row stays for the reconciler")
	assert.Equal(t, 1, attempts)
	assert.Contains(t, lastErr, "connection refused")
}

func TestCaptureWhenDatabaseIsDown(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cluster, err := pgcluster.Start(ctx, pgcluster.Config{Ephemeral: true})
	require.NoError(t, err)
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			_ = cluster.Stop()
		}
	})
	require.NoError(t, cluster.CreateDatabase(ctx, "tend"))
	store, err := db.Open(ctx, cluster.URL("tend"))
	require.NoError(t, err)
	t.Cleanup(store.Close)
	_, err = store.Migrate(ctx)
	require.NoError(t, err)
	b := serve(t, store)

	resp := b.postJSON(t, map[string]any{"email": "before@example.com"})
	require.Equal(t, http.StatusCreated, resp.Code, "the database works before it is stopped: %s", resp.Raw)

	require.NoError(t, cluster.Stop())
	stopped = true

	start := time.Now()
	resp = b.postJSON(t, map[string]any{"email": "ana@example.com"})
	require.Equal(t, http.StatusServiceUnavailable, resp.Code, resp.Raw)
	assert.NotEmpty(t, resp.Header.Get("Retry-After"))
	e := resp.errorBody(t)
	assert.Contains(t, e.Error, "database is unavailable")
	assert.Contains(t, e.Error, "nothing was saved")
	assert.Less(t, time.Since(start), 15*time.Second, "the API answers promptly when the database is down")
	assert.Len(t, b.Enroller.Calls(), 1, "only the capture made before the outage was enrolled")

	resp = do(t, http.MethodGet, b.URL+"/api/v1/leads/"+uuid.NewString(), nil)
	assert.Equal(t, http.StatusServiceUnavailable, resp.Code, resp.Raw)

	resp = do(t, http.MethodGet, b.URL+"/readyz", nil)
	assert.Equal(t, http.StatusServiceUnavailable, resp.Code, resp.Raw)
}

func TestGetLead(t *testing.T) {
	t.Parallel()
	b := setup(t)

	created := b.postJSON(t, map[string]any{"email": "ana@example.com", "name": "Ana", "interests": []string{"analytics"},
		"attributes": map[string]string{"plan": "pro"}})
	require.Equal(t, http.StatusCreated, created.Code, created.Raw)
	id := created.Body["id"].(string)

	resp := do(t, http.MethodGet, b.URL+"/api/v1/leads/"+id, nil)
	require.Equal(t, http.StatusOK, resp.Code, resp.Raw)
	assert.Equal(t, id, resp.Body["id"])
	assert.Equal(t, "ana@example.com", resp.Body["email"])
	assert.Equal(t, "Ana", resp.Body["name"])
	assert.Equal(t, "analytics", resp.Body["segment"])
	assert.Equal(t, "lead", resp.Body["stage"])
	assert.Equal(t, "api", resp.Body["source"], "captures through the API without a source are source api")
	assert.Equal(t, map[string]any{"plan": "pro"}, resp.Body["attributes"])
	assert.Equal(t, []any{}, resp.Body["sends"], "no sends yet, as an empty list")

	for name, path := range map[string]string{
		"unknown id":    "/api/v1/leads/" + uuid.NewString(),
		"not a uuid":    "/api/v1/leads/not-a-uuid",
		"sql in the id": "/api/v1/leads/1'%20OR%20'1'='1",
	} {
		resp := do(t, http.MethodGet, b.URL+path, nil)
		assert.Equal(t, http.StatusNotFound, resp.Code, "%s: %s", name, resp.Raw)
		assert.Equal(t, "lead not found", resp.errorBody(t).Error, name)
	}

	resp = do(t, http.MethodGet, b.URL+"/api/v1/leads/"+id, nil, "Authorization", "")
	assert.Equal(t, http.StatusUnauthorized, resp.Code, "reading a lead needs the API key too")
	assert.NotContains(t, resp.Raw, "ana@example.com")
}

func TestUnknownAPIPath(t *testing.T) {
	t.Parallel()
	b := setup(t)

	for _, tc := range []struct{ method, path string }{
		{http.MethodGet, "/api/v1/nope"},
		{http.MethodPost, "/api/v2/leads"},
		{http.MethodPut, "/api/v1/leads/" + uuid.NewString()},
	} {
		var body io.Reader
		if tc.method == http.MethodPost {
			body = bytes.NewReader([]byte(`{"email":"ana@example.com"}`))
		}
		resp := do(t, tc.method, b.URL+tc.path, body)
		assert.Equal(t, http.StatusNotFound, resp.Code, "%s %s: %s", tc.method, tc.path, resp.Raw)
		assert.Contains(t, resp.errorBody(t).Error, tc.path)
	}
	b.requireNothingWritten(t)
}

func TestHealth(t *testing.T) {
	t.Parallel()
	b := setup(t)

	resp := do(t, http.MethodGet, b.URL+"/healthz", nil, "Authorization", "")
	assert.Equal(t, http.StatusOK, resp.Code)
	resp = do(t, http.MethodGet, b.URL+"/readyz", nil, "Authorization", "")
	assert.Equal(t, http.StatusOK, resp.Code)
	assert.Equal(t, "ready", resp.Body["status"])
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	data, err := json.Marshal(v)
	require.NoError(t, err)
	return string(data)
}
