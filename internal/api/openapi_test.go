package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tendhq/tend/internal/api"
	"github.com/tendhq/tend/internal/capture"
	"github.com/tendhq/tend/internal/content"
	"github.com/tendhq/tend/internal/dbtest"
	"github.com/tendhq/tend/internal/engage"
	"github.com/tendhq/tend/internal/track"
	"github.com/tendhq/tend/workflows"
)

// notDocumented are the patterns the router registers that are not operations: the catch-all
// that answers JSON 404s for unknown /api paths.
var notDocumented = []string{"/api/"}

// redirectOnly are the operations whose success is a redirect, not a 2xx.
var redirectOnly = []string{"GET /app", "POST /app/logout", "POST /app/login", "GET /t/c/{token}", "HEAD /t/c/{token}"}

// docURL is where the document is added to the schema compiler: its $refs
// (#/components/schemas/…) resolve inside it.
const docURL = "tend:openapi.json"

// acceptingDecider stands in for the lead workflow's update: every rep's answer is taken.
type acceptingDecider struct{}

func (acceptingDecider) Decide(_ context.Context, _ string, d workflows.Decision) (workflows.DecisionResult, error) {
	if d.Action == "reject" {
		return workflows.DecisionResult{Outcome: workflows.OutcomeRejected, RepID: d.RepID}, nil
	}
	return workflows.DecisionResult{Outcome: workflows.OutcomeAccepted, RepID: d.RepID}, nil
}

// nopNotifier stands in for the signal that tells a lead's workflow its stage changed.
type nopNotifier struct{}

func (nopNotifier) Notify(string) {}

// notRouting are the Server's interface fields that add no route when set.
var notRouting = []string{"States", "DryRun", "Rollout", "Resumer", "Canceller"}

// fullServer is a server with every optional part set, so that every route is registered: each
// pointer field gets a zero value, the Decider a fake. An interface field added later must be
// set here or listed in notRouting, so that no route can hide behind it.
func fullServer(t *testing.T) *api.Server {
	t.Helper()
	s := &api.Server{Decider: acceptingDecider{}}
	v := reflect.ValueOf(s).Elem()
	for i := range v.NumField() {
		f, name := v.Field(i), v.Type().Field(i).Name
		switch {
		case f.Kind() == reflect.Pointer && f.IsNil():
			f.Set(reflect.New(f.Type().Elem()))
		case f.Kind() == reflect.Interface && f.IsNil():
			require.Contains(t, notRouting, name, "Server.%s: set it in fullServer, or list it in notRouting", name)
		}
	}
	return s
}

type openAPIDoc struct {
	OpenAPI string                                `json:"openapi"`
	Paths   map[string]map[string]json.RawMessage `json:"paths"`
}

type operation struct {
	OperationID string                      `json:"operationId"`
	Parameters  []struct{ Name, In string } `json:"parameters"`
	Responses   map[string]json.RawMessage  `json:"responses"`
}

var httpMethods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

func readDoc(t *testing.T) openAPIDoc {
	t.Helper()
	var doc openAPIDoc
	require.NoError(t, json.Unmarshal(api.OpenAPI, &doc), "the document is JSON")
	return doc
}

// docOperations lists the document's operations as the router writes its patterns: "GET /path/{id}".
func docOperations(doc openAPIDoc) map[string]operation {
	out := map[string]operation{}
	for path, item := range doc.Paths {
		for m, raw := range item {
			if !slices.Contains(httpMethods, m) {
				continue // parameters, summary… of the path item
			}
			var op operation
			_ = json.Unmarshal(raw, &op)
			out[strings.ToUpper(m)+" "+path] = op
		}
	}
	return out
}

// routerPattern writes a ServeMux pattern as OpenAPI does: {name...} and {$} are ServeMux's own.
func routerPattern(p string) string {
	p = strings.ReplaceAll(p, "...}", "}")
	return strings.TrimSuffix(p, "{$}")
}

func TestOpenAPIDocumentsEveryRouteAndNoOther(t *testing.T) {
	t.Parallel()
	doc := readDoc(t)
	assert.Equal(t, "3.1.0", doc.OpenAPI)

	var served []string
	for _, p := range fullServer(t).Routes() {
		method, path, ok := strings.Cut(p, " ")
		if !ok {
			require.Contains(t, notDocumented, p, "a route without a method must be listed as not documented")
			continue
		}
		served = append(served, method+" "+routerPattern(path))
	}
	ops := docOperations(doc)
	documented := slices.Collect(func(yield func(string) bool) {
		for k := range ops {
			if !yield(k) {
				return
			}
		}
	})
	sort.Strings(served)
	sort.Strings(documented)
	assert.Equal(t, served, documented, "the routes served and the operations documented")

	for name, op := range ops {
		ok := false
		for code := range op.Responses {
			n, _ := strconv.Atoi(code)
			ok = ok || (n >= 200 && n < 300) || (slices.Contains(redirectOnly, name) && n >= 300 && n < 400)
		}
		assert.True(t, ok, "%s documents no success response", name)
	}

	ids := map[string]string{}
	for name, op := range ops {
		if assert.NotEmpty(t, op.OperationID, name) {
			assert.NotContains(t, ids, op.OperationID, "%s: operationId already used by %s", name, ids[op.OperationID])
			ids[op.OperationID] = name
		}
		// Each {param} of the path is a documented path parameter.
		_, path, _ := strings.Cut(name, " ")
		for _, seg := range strings.Split(path, "/") {
			if param, ok := strings.CutPrefix(seg, "{"); ok {
				param = strings.TrimSuffix(param, "}")
				assert.True(t, slices.ContainsFunc(op.Parameters, func(p struct{ Name, In string }) bool { return p.Name == param && p.In == "path" }),
					"%s does not document its path parameter %s", name, param)
			}
		}
	}
}

// A server without the optional parts serves fewer routes, and all of them are documented.
func TestOpenAPIDocumentsTheMinimalServer(t *testing.T) {
	t.Parallel()
	ops := docOperations(readDoc(t))
	for _, p := range (&api.Server{}).Routes() {
		if slices.Contains(notDocumented, p) {
			continue
		}
		method, path, _ := strings.Cut(p, " ")
		assert.Contains(t, ops, method+" "+routerPattern(path))
	}
}

func TestOpenAPIIsServedAsInTheRepository(t *testing.T) {
	t.Parallel()
	file, err := os.ReadFile("openapi.json")
	require.NoError(t, err)
	rec := httptest.NewRecorder()
	(&api.Server{}).Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/openapi.json", nil))
	require.Equal(t, http.StatusOK, rec.Code)
	assert.Contains(t, rec.Header().Get("Content-Type"), "application/json")
	assert.True(t, bytes.Equal(file, rec.Body.Bytes()), "GET /api/openapi.json serves internal/api/openapi.json as it is")
}

// compiler holds the document, with formats (date-time, uuid, email) asserted.
func compiler(t *testing.T) *jsonschema.Compiler {
	t.Helper()
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(api.OpenAPI))
	require.NoError(t, err)
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	require.NoError(t, c.AddResource(docURL, v))
	return c
}

// escape writes a JSON pointer token.
func escape(s string) string { return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1") }

// example is a value the document gives next to a schema, and where.
type example struct {
	At     string // JSON pointer of the example
	Schema string // JSON pointer of its schema
	Value  any
}

// examples walks the document for every example and examples next to a schema: media types
// and parameters.
func examples(v any, at string, out *[]example) {
	switch x := v.(type) {
	case map[string]any:
		if _, ok := x["schema"]; ok {
			if e, ok := x["example"]; ok {
				*out = append(*out, example{At: at + "/example", Schema: at + "/schema", Value: e})
			}
			if es, ok := x["examples"].(map[string]any); ok {
				for name, e := range es {
					if ev, ok := e.(map[string]any)["value"]; ok {
						*out = append(*out, example{At: at + "/examples/" + escape(name), Schema: at + "/schema", Value: ev})
					}
				}
			}
		}
		for k, c := range x {
			examples(c, at+"/"+escape(k), out)
		}
	case []any:
		for i, c := range x {
			examples(c, at+"/"+strconv.Itoa(i), out)
		}
	}
}

func TestOpenAPIExamplesValidate(t *testing.T) {
	t.Parallel()
	var doc any
	require.NoError(t, json.Unmarshal(api.OpenAPI, &doc))
	var all []example
	examples(doc, "", &all)
	require.Greater(t, len(all), 40, "the operations carry examples")
	c := compiler(t)
	for _, e := range all {
		sch, err := c.Compile(docURL + "#" + e.Schema)
		require.NoError(t, err, "schema of %s", e.At)
		// Examples are decoded as the validator decodes JSON (numbers as json.Number).
		raw, err := json.Marshal(e.Value)
		require.NoError(t, err)
		v, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
		require.NoError(t, err)
		assert.NoError(t, sch.Validate(v), "example %s", e.At)
	}
}

// The schema compiler must catch a wrong example, or the test above proves nothing.
func TestOpenAPISchemasRejectWhatTheyShould(t *testing.T) {
	t.Parallel()
	c := compiler(t)
	lead, err := c.Compile(docURL + "#/components/schemas/LeadCaptured")
	require.NoError(t, err)
	for name, body := range map[string]string{
		"stage not a stage": `{"id":"0b7f6c7e-2d4a-4c1e-9a53-6f1e2c3d4b5a","created":true,"segment":"a","stage":"hot","enrolled":true,"enrollment":"started","interests":[]}`,
		"id not a uuid":     `{"id":"7","created":true,"segment":"a","stage":"lead","enrolled":true,"enrollment":"started","interests":[]}`,
		"field missing":     `{"id":"0b7f6c7e-2d4a-4c1e-9a53-6f1e2c3d4b5a","created":true,"segment":"a","stage":"lead","enrolled":true,"interests":[]}`,
		"field undocumented": `{"id":"0b7f6c7e-2d4a-4c1e-9a53-6f1e2c3d4b5a","created":true,"segment":"a","stage":"lead","enrolled":true,"enrollment":"started",` +
			`"interests":[],"extra":1}`,
	} {
		v, err := jsonschema.UnmarshalJSON(strings.NewReader(body))
		require.NoError(t, err)
		assert.Error(t, lead.Validate(v), name)
	}
}

// responseSchema compiles the schema the document gives for a JSON answer of an operation,
// following a $ref to components/responses.
func responseSchema(t *testing.T, c *jsonschema.Compiler, method, path string, code int) *jsonschema.Schema {
	t.Helper()
	var doc struct {
		Paths      map[string]map[string]operation `json:"paths"`
		Components struct {
			Responses map[string]json.RawMessage `json:"responses"`
		} `json:"components"`
	}
	require.NoError(t, json.Unmarshal(api.OpenAPI, &doc))
	op, ok := doc.Paths[path][strings.ToLower(method)]
	require.True(t, ok, "%s %s is documented", method, path)
	raw, ok := op.Responses[strconv.Itoa(code)]
	require.True(t, ok, "%s %s documents a %d answer", method, path, code)
	at := "/paths/" + escape(path) + "/" + strings.ToLower(method) + "/responses/" + strconv.Itoa(code)
	var ref struct {
		Ref string `json:"$ref"`
	}
	_ = json.Unmarshal(raw, &ref)
	if ref.Ref != "" {
		at = strings.TrimPrefix(ref.Ref, "#")
	}
	sch, err := c.Compile(docURL + "#" + at + "/content/application~1json/schema")
	require.NoError(t, err, "the %d answer of %s %s has a JSON schema", code, method, path)
	return sch
}

// conforms asserts that a real answer of the API is what the document says it is.
func conforms(t *testing.T, c *jsonschema.Compiler, method, path string, r response) {
	t.Helper()
	v, err := jsonschema.UnmarshalJSON(strings.NewReader(r.Raw))
	require.NoError(t, err)
	assert.NoError(t, responseSchema(t, c, method, path, r.Code).Validate(v), "%s %s answered %d: %s", method, path, r.Code, r.Raw)
}

// The answers of real handlers, over a real Postgres, match the documented schemas: the
// document cannot drift from the code unnoticed.
func TestOpenAPIMatchesRealAnswers(t *testing.T) {
	t.Parallel()
	store := dbtest.Store(t)
	seed := content.FileSeed{Sequences: "../../examples/sequences.yaml", Scoring: "../../examples/scoring.yaml", Sales: "../../examples/sales.yaml"}
	live, err := content.Open(context.Background(), store, seed.Read, nil)
	require.NoError(t, err)
	rec := &recorder{released: 2}
	keys, err := track.ParseKeys(track.GenerateKey("k1"))
	require.NoError(t, err)
	srv := &api.Server{
		Capture: &capture.Service{Store: store, Live: live, Enroller: &fakeEnroller{}},
		Engage:  &engage.Service{Store: store, Live: live, Notifier: nopNotifier{}, Keys: keys, Heuristics: track.DefaultHeuristics()},
		Store:   store, APIKeys: []string{apiKey}, KeyNames: map[string]string{apiKey: "ci"},
		Live: live, DryRun: rec, Rollout: rec, Resumer: rec, WebhookSecret: webhookSecret, Decider: acceptingDecider{}, Keys: keys,
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	c := compiler(t)
	call := func(method, path, route, body string, header ...string) response {
		t.Helper()
		var rd io.Reader
		if body != "" {
			rd = strings.NewReader(body)
		}
		r := do(t, method, hs.URL+path, rd, header...)
		conforms(t, c, method, route, r)
		return r
	}

	created := call("POST", "/api/v1/leads", "/api/v1/leads", `{"email":"Ana.Lima@Example.com","name":"Ana Lima","company":"Acme",`+
		`"interests":["analytics"],"source":"ebook_download","time_zone":"Europe/Berlin","attributes":{"industry":"software"},`+
		`"consent":{"granted":true,"wording_id":"ebook-form-v3"}}`)
	require.Equal(t, http.StatusCreated, created.Code, created.Raw)
	id := created.Body["id"].(string)
	again := call("POST", "/api/v1/leads", "/api/v1/leads", `{"email":"ana.lima@example.com","source":"webinar_registration"}`)
	require.Equal(t, http.StatusOK, again.Code, again.Raw)
	bare := call("POST", "/api/v1/leads", "/api/v1/leads", `{"email":"bo@example.com"}`)
	require.Equal(t, http.StatusCreated, bare.Code, bare.Raw)
	assert.Equal(t, http.StatusUnprocessableEntity, call("POST", "/api/v1/leads", "/api/v1/leads", `{"email":"not-an-address"}`).Code)
	assert.Equal(t, http.StatusBadRequest, call("POST", "/api/v1/leads", "/api/v1/leads", `{"emial":"ana@example.com"}`).Code)
	assert.Equal(t, http.StatusUnauthorized, call("POST", "/api/v1/leads", "/api/v1/leads", `{"email":"ana@example.com"}`, "Authorization", "").Code)

	ev := call("POST", "/api/v1/events", "/api/v1/events", `{"events":[{"id":"web-1","email":"ana.lima@example.com","type":"page_view",`+
		`"url":"https://example.com/pricing"},{"id":"web-2","email":"nobody@example.com","type":"page_view"}]}`)
	require.Equal(t, http.StatusOK, ev.Code, ev.Raw)

	for _, lead := range []string{id, bare.Body["id"].(string)} {
		r := call("GET", "/api/v1/leads/"+lead, "/api/v1/leads/{id}", "")
		require.Equal(t, http.StatusOK, r.Code, r.Raw)
		r = call("GET", "/api/v1/leads/"+lead+"/export", "/api/v1/leads/{id}/export", "")
		require.Equal(t, http.StatusOK, r.Code, r.Raw)
	}
	assert.Equal(t, http.StatusNotFound, call("GET", "/api/v1/leads/0b7f6c7e-2d4a-4c1e-9a53-6f1e2c3d4b5a", "/api/v1/leads/{id}", "").Code)
	page := call("GET", "/api/v1/leads?limit=1", "/api/v1/leads", "")
	require.Equal(t, http.StatusOK, page.Code, page.Raw)
	require.NotEmpty(t, page.Body["next"])
	assert.Equal(t, http.StatusUnprocessableEntity, call("GET", "/api/v1/leads?band=lukewarm", "/api/v1/leads", "").Code)

	for _, p := range []string{"/api/v1/reports/funnel", "/api/v1/reports/sla", "/api/v1/reports/sequences"} {
		r := call("GET", p, p, "")
		require.Equal(t, http.StatusOK, r.Code, r.Raw)
	}
	r := call("GET", "/api/v1/team", "/api/v1/team", "")
	require.Equal(t, http.StatusOK, r.Code, r.Raw)

	seqs := strings.Replace(readExample(t, "sequences.yaml"), "interests: [analytics, reporting, dashboards]", "interests: [analytics, reporting, dashboards, bi]", 1)
	apply := mustJSON(t, map[string]any{"files": map[string]any{"sequences": map[string]string{"sequences.yaml": seqs}}, "dry_run": true})
	r = call("POST", "/api/content/apply", "/api/content/apply", apply)
	require.Equal(t, http.StatusOK, r.Code, r.Raw)
	r = call("POST", "/api/content/apply", "/api/content/apply", strings.Replace(apply, `"dry_run":true`, `"dry_run":false`, 1))
	require.Equal(t, http.StatusOK, r.Code, r.Raw)
	require.Equal(t, true, r.Body["published"])
	broken := mustJSON(t, map[string]any{"files": map[string]any{"sequences": map[string]string{"sequences.yaml": "sequences: [{id: x, steps: 3}]\n"}}})
	assert.Equal(t, http.StatusUnprocessableEntity, call("POST", "/api/content/apply", "/api/content/apply", broken).Code)
	r = call("GET", "/api/content/versions", "/api/content/versions", "")
	require.Equal(t, http.StatusOK, r.Code, r.Raw)

	seq := "analytics-series" // in examples/sequences.yaml
	r = call("POST", "/api/sequences/"+seq+"/pause", "/api/sequences/{id}/pause", "")
	require.Equal(t, http.StatusOK, r.Code, r.Raw)
	r = call("GET", "/api/sequences/pauses", "/api/sequences/pauses", "")
	require.Equal(t, http.StatusOK, r.Code, r.Raw)
	r = call("POST", "/api/sequences/"+seq+"/resume", "/api/sequences/{id}/resume", `{"ramp":"1h"}`)
	require.Equal(t, http.StatusOK, r.Code, r.Raw)
	assert.Equal(t, http.StatusNotFound, call("POST", "/api/sequences/no-such/pause", "/api/sequences/{id}/pause", "").Code)

	r = call("POST", "/api/v1/leads/"+id+"/accept", "/api/v1/leads/{id}/accept", `{"rep_id":"rep-1"}`)
	require.Equal(t, http.StatusOK, r.Code, r.Raw)
	r = call("POST", "/api/v1/leads/"+id+"/reject", "/api/v1/leads/{id}/reject", `{"rep_id":"rep-1","reason":"not_ready","note":"next quarter"}`)
	require.Equal(t, http.StatusOK, r.Code, r.Raw)
	assert.Equal(t, http.StatusUnprocessableEntity, call("POST", "/api/v1/leads/"+id+"/reject", "/api/v1/leads/{id}/reject", `{"rep_id":"rep-1"}`).Code)
	assert.Equal(t, http.StatusConflict, call("POST", "/api/v1/leads/"+id+"/won", "/api/v1/leads/{id}/won", `{"rep_id":"rep-1","value":100,"currency":"EUR"}`).Code,
		"a lead is not won before it is an opportunity")

	assert.Equal(t, http.StatusUnauthorized, call("POST", "/api/v1/webhooks/bounces", "/api/v1/webhooks/bounces", `{}`, "Authorization", "").Code)
	bounce := `{"events":[{"type":"bounce","recipient":"ana.lima@example.com","bounce_type":"hard","status":"5.1.1"}]}`
	ts, sig := api.SignWebhook(webhookSecret, time.Now(), []byte(bounce))
	r = call("POST", "/api/v1/webhooks/bounces", "/api/v1/webhooks/bounces", bounce, "X-Tend-Timestamp", ts, "X-Tend-Signature", sig)
	require.Equal(t, http.StatusOK, r.Code, r.Raw)
	assert.Equal(t, "tend", r.Body["source"])
	r = call("DELETE", "/api/v1/leads/"+bare.Body["id"].(string), "/api/v1/leads/{id}", "")
	require.Equal(t, http.StatusOK, r.Code, r.Raw)

	for _, p := range []string{"/healthz", "/readyz"} {
		r := call("GET", p, p, "", "Authorization", "")
		require.Equal(t, http.StatusOK, r.Code, r.Raw)
	}

	// The pages and the pixel answer a documented status with a documented media type.
	for _, tc := range []struct{ method, path, route, form string }{
		{"GET", "/t/o/not-a-token", "/t/o/{token}", ""},
		{"HEAD", "/t/o/not-a-token", "/t/o/{token}", ""},
		{"GET", "/t/c/not-a-token", "/t/c/{token}", ""},
		{"GET", "/u/not-a-token", "/u/{token}", ""},
		{"POST", "/u/not-a-token", "/u/{token}", "List-Unsubscribe=One-Click"},
		{"POST", "/u/not-a-token/preferences", "/u/{token}/preferences", "opt_out=analytics"},
		{"GET", "/s/not-a-token", "/s/{token}", ""},
		{"POST", "/s/not-a-token", "/s/{token}", "reason=not_ready"},
		{"GET", "/desk/not-a-token", "/desk/{token}", ""},
		{"GET", "/app", "/app", ""},
		{"GET", "/app/login", "/app/login", ""},
		{"POST", "/app/login", "/app/login", "key=wrong"},
		{"POST", "/app/login", "/app/login", "key=" + apiKey},
		{"POST", "/app/logout", "/app/logout", ""},
		{"GET", "/app/leads", "/app/leads", ""},
		{"GET", "/app/leads/" + id, "/app/leads/{id}", ""},
	} {
		code, ct := pageCall(t, tc.method, hs.URL+tc.path, tc.form)
		types, ok := documentedTypes(t, tc.method, tc.route, code)
		if assert.True(t, ok, "%s %s answered %d, which is not documented", tc.method, tc.path, code) && len(types) > 0 {
			mt, _, _ := strings.Cut(ct, ";")
			assert.Contains(t, types, mt, "%s %s answered %d as %s", tc.method, tc.path, code, ct)
		}
	}
}

// pageCall sends a request as a browser or a mail client would (a form, no key, redirects not
// followed) and returns the status and Content-Type of the answer.
func pageCall(t *testing.T, method, url, form string) (int, string) {
	t.Helper()
	var body io.Reader
	if form != "" {
		body = strings.NewReader(form)
	}
	req, err := http.NewRequest(method, url, body)
	require.NoError(t, err)
	if form != "" {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, resp.Header.Get("Content-Type")
}

// documentedTypes returns the media types the document gives for an answer, and whether the
// answer is documented at all.
func documentedTypes(t *testing.T, method, path string, code int) ([]string, bool) {
	t.Helper()
	var doc struct {
		Paths      map[string]map[string]operation `json:"paths"`
		Components struct {
			Responses map[string]json.RawMessage `json:"responses"`
		} `json:"components"`
	}
	require.NoError(t, json.Unmarshal(api.OpenAPI, &doc))
	raw, ok := doc.Paths[path][strings.ToLower(method)].Responses[strconv.Itoa(code)]
	if !ok {
		return nil, false
	}
	var r struct {
		Ref     string                     `json:"$ref"`
		Content map[string]json.RawMessage `json:"content"`
	}
	require.NoError(t, json.Unmarshal(raw, &r))
	if name, ok := strings.CutPrefix(r.Ref, "#/components/responses/"); ok {
		require.NoError(t, json.Unmarshal(doc.Components.Responses[name], &r))
	}
	var out []string
	for mt := range r.Content {
		out = append(out, mt)
	}
	return out, true
}
