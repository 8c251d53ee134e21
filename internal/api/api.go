// Package api is tend's HTTP API: lead capture and lead lookup under /api/v1, health checks. HTTP
// status codes are chosen here and only here.
package api

import (
	"context"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/tendhq/tend/internal/capture"
	"github.com/tendhq/tend/internal/content"
	"github.com/tendhq/tend/internal/db"
	"github.com/tendhq/tend/internal/engage"
	"github.com/tendhq/tend/internal/lifecycle"
	"github.com/tendhq/tend/internal/metrics"
	"github.com/tendhq/tend/internal/sales"
	"github.com/tendhq/tend/internal/track"
	"github.com/tendhq/tend/workflows"
)

// MaxBodyBytes bounds every request body.
const MaxBodyBytes = 64 << 10

// StateQuerier reads a lead workflow's state.
type StateQuerier interface {
	LeadState(ctx context.Context, leadID string) (*workflows.LeadState, error)
}

// Server serves the API.
type Server struct {
	Capture *capture.Service
	Store   *db.Store
	// States, when set, adds the workflow's state to GET /api/v1/leads/{id}.
	States StateQuerier
	// APIKeys are the accepted admin keys; an empty list rejects every admin call.
	APIKeys []string
	// KeyNames names each key (config.ParseAPIKeys): who applied a version or paused a sequence.
	// A key without a name is "admin".
	KeyNames map[string]string
	// Engage records tracking hits, unsubscribes and site events; nil leaves those routes out.
	Engage *engage.Service
	// Limiter bounds the public tracking endpoints per client address; nil means no limit.
	Limiter *Limiter
	// Decider and Keys enable the sales routes (accept/reject through the API and signed links).
	Decider Decider
	Keys    *track.Keys
	// Team is the sales team, served read-only at /api/v1/team.
	Team *sales.Team
	// Live, when set, is the published content: its team replaces Team, and the content routes
	// (apply, versions, rollback, pause, resume) are served.
	Live *content.Live
	// DryRun, when set, adds what a change would do to the leads in flight to every apply.
	DryRun content.DryRunner
	// Rollout, when set, moves the leads in flight onto a published, unpinned version.
	Rollout content.Rollout
	// Resumer, when set, releases the sends held by a pause when it is lifted.
	Resumer content.Resumer
	// Canceller stops a lead's workflow before its erasure.
	Canceller Canceller
	// WebhookSecret signs bounce and complaint webhooks; empty refuses them all.
	WebhookSecret string
	// TrustedProxies are the load balancers whose X-Forwarded-For is believed (see ClientAddr).
	TrustedProxies []netip.Prefix
	// Metrics, when set, counts the stage changes the sales routes make themselves (qualify,
	// opportunity, won, lost); accept and reject are counted by the workflow's activity.
	Metrics *metrics.Set
	Log     *slog.Logger
}

// Handler returns the API's routes.
func (s *Server) Handler() http.Handler { return s.router() }

// Routes lists the patterns Handler serves ("GET /api/v1/leads/{id}", …), as registered for this
// configuration: routes whose collaborators are nil are left out, as they are from Handler.
func (s *Server) Routes() []string { return s.router().patterns }

func (s *Server) router() *router {
	mux := &router{ServeMux: http.NewServeMux()}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, map[string]string{"status": "ok"}) })
	mux.HandleFunc("GET /readyz", s.ready)
	mux.HandleFunc("GET /api/openapi.json", serveOpenAPI)
	mux.Handle("POST /api/v1/leads", s.admin(s.createLead))
	mux.Handle("GET /api/v1/leads/{id}", s.admin(s.getLead))
	mux.Handle("GET /api/v1/leads", s.admin(s.listLeads))
	if s.Engage != nil {
		mux.Handle("POST /api/v1/events", s.admin(s.postEvents))
		mux.Handle("GET /t/o/{token}", s.limitPublic(s.open))
		mux.Handle("HEAD /t/o/{token}", s.limitPublic(s.open))
		mux.Handle("GET /t/c/{token}", s.limitPublic(s.click))
		mux.Handle("HEAD /t/c/{token}", s.limitPublic(s.click))
		mux.Handle("GET /u/{token}", s.limitPublic(s.unsubscribeForm))
		mux.Handle("POST /u/{token}", s.limitPublic(s.unsubscribe))
		mux.Handle("POST /u/{token}/preferences", s.limitPublic(s.preferences))
	}
	s.salesRoutes(mux)
	s.reportRoutes(mux)
	s.privacyRoutes(mux)
	s.dashboardRoutes(mux)
	s.contentRoutes(mux)
	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no such endpoint: "+r.Method+" "+r.URL.Path, nil)
	})
	return mux
}

func (s *Server) log() *slog.Logger {
	if s.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Log
}

// admin requires a valid API key, given as "Authorization: Bearer KEY" or "X-API-Key: KEY".
func (s *Server) admin(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := r.Header.Get("X-API-Key")
		if auth := r.Header.Get("Authorization"); key == "" && auth != "" {
			if k, ok := strings.CutPrefix(auth, "Bearer "); ok {
				key = strings.TrimSpace(k)
			}
		}
		if key == "" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="tend"`)
			writeError(w, http.StatusUnauthorized, "missing API key: send Authorization: Bearer <key>", nil)
			return
		}
		ok, name := false, ""
		for _, k := range s.APIKeys {
			if k != "" && subtle.ConstantTimeCompare([]byte(k), []byte(key)) == 1 {
				ok, name = true, s.KeyNames[k]
			}
		}
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="tend", error="invalid_token"`)
			writeError(w, http.StatusUnauthorized, "invalid API key", nil)
			return
		}
		if name == "" {
			name = "admin"
		}
		h(w, r.WithContext(context.WithValue(r.Context(), keyNameKey{}, name)))
	})
}

// keyNameKey is the context key of the name of the API key a request came with.
type keyNameKey struct{}

// keyName is the name of the API key the admin request came with.
func keyName(r *http.Request) string {
	if n, ok := r.Context().Value(keyNameKey{}).(string); ok {
		return n
	}
	return "admin"
}

func (s *Server) ready(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.Store.Pool().Ping(ctx); err != nil {
		writeError(w, http.StatusServiceUnavailable, "database unavailable", nil)
		return
	}
	writeJSON(w, 200, map[string]string{"status": "ready"})
}

type leadResponse struct {
	ID       string   `json:"id"`
	Created  bool     `json:"created"`
	Segment  string   `json:"segment"`
	Stage    string   `json:"stage"`
	Enrolled bool     `json:"enrolled"`
	Status   string   `json:"enrollment"`
	Interest []string `json:"interests"`
}

func (s *Server) createLead(w http.ResponseWriter, r *http.Request) {
	var req capture.Request
	if !decode(w, r, &req) {
		return
	}
	res, err := s.Capture.Capture(r.Context(), req, capture.Meta{IP: s.clientAddr(r)})
	if err != nil {
		s.fail(w, "capture lead", err)
		return
	}
	out := leadResponse{ID: res.Lead.ID, Created: res.Created, Segment: res.Lead.Segment, Stage: res.Lead.Stage,
		Enrolled: res.Enrolled, Status: "started", Interest: res.Lead.Interests}
	if !res.Enrolled {
		out.Status = "pending: the lead is saved and will be enrolled as soon as Temporal is reachable"
	}
	code := http.StatusOK
	if res.Created {
		code = http.StatusCreated
		w.Header().Set("Location", "/api/v1/leads/"+res.Lead.ID)
	}
	writeJSON(w, code, out)
}

type leadDetail struct {
	db.Lead
	Sends        []db.Send            `json:"sends"`
	StageChanges []db.StageChange     `json:"stage_changes"`
	Handoffs     []db.Handoff         `json:"handoffs"`
	Timeline     []timelineEntry      `json:"timeline"`
	Workflow     *workflows.LeadState `json:"workflow,omitempty"`
}

// timelineEntry is one thing that happened to a lead, for the "why" view: captures are in the
// lead, events, sends and stage changes are merged here in time order.
type timelineEntry struct {
	At     time.Time `json:"at"`
	Kind   string    `json:"kind"` // event, send, stage
	What   string    `json:"what"`
	Detail string    `json:"detail,omitempty"`
	// Scored is false for machine and duplicate events, which are stored but not scored.
	Scored *bool `json:"scored,omitempty"`
}

func timeline(sends []db.Send, events []db.Event, stages []db.StageChange) []timelineEntry {
	out := []timelineEntry{}
	for _, s := range sends {
		at := s.CreatedAt
		if s.SentAt != nil {
			at = *s.SentAt
		}
		out = append(out, timelineEntry{At: at, Kind: "send", What: s.Status, Detail: s.SequenceID + "/" + s.StepID + ": " + s.Subject})
	}
	for _, e := range events {
		scored := !e.Machine && !e.Duplicate
		d := strings.Join(e.Tags, ",")
		if e.URL != "" {
			d = strings.TrimPrefix(d+" "+e.URL, " ")
		}
		if e.Machine {
			d = strings.TrimSpace(d + " (machine: " + e.MachineReason + ")")
		} else if e.Duplicate {
			d = strings.TrimSpace(d + " (duplicate)")
		}
		out = append(out, timelineEntry{At: e.OccurredAt, Kind: "event", What: e.Type, Detail: d, Scored: &scored})
	}
	for _, c := range stages {
		out = append(out, timelineEntry{At: c.ChangedAt, Kind: "stage", What: c.From + " → " + c.To, Detail: c.Reason})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].At.Before(out[j].At) })
	return out
}

func (s *Server) getLead(w http.ResponseWriter, r *http.Request) {
	out, err := s.leadDetail(r.Context(), r.PathValue("id"))
	if err != nil {
		s.fail(w, "get lead", err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// leadDetail gathers everything the "why" view of a lead shows: the lead, its sends, stage
// changes, handoffs, the merged timeline and, when reachable, its workflow's state.
func (s *Server) leadDetail(ctx context.Context, id string) (leadDetail, error) {
	lead, err := s.Store.Lead(ctx, id)
	if err != nil {
		return leadDetail{}, err
	}
	sends, err := s.Store.Sends(ctx, id)
	if err != nil {
		return leadDetail{}, fmt.Errorf("sends: %w", err)
	}
	events, err := s.Store.LeadEvents(ctx, id)
	if err != nil {
		return leadDetail{}, fmt.Errorf("events: %w", err)
	}
	stages, err := s.Store.StageChanges(ctx, id)
	if err != nil {
		return leadDetail{}, fmt.Errorf("stage changes: %w", err)
	}
	handoffs, err := s.Store.Handoffs(ctx, id)
	if err != nil {
		return leadDetail{}, fmt.Errorf("handoffs: %w", err)
	}
	out := leadDetail{Lead: lead, Sends: sends, StageChanges: stages, Handoffs: handoffs, Timeline: timeline(sends, events, stages)}
	if s.States != nil {
		ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		if st, err := s.States.LeadState(ctx, id); err == nil {
			out.Workflow = st
		} else {
			s.log().Debug("lead workflow state unavailable", "lead_id", id, "err", err)
		}
	}
	return out, nil
}

type eventsRequest struct {
	Events []engage.EventInput `json:"events"`
}

func (s *Server) postEvents(w http.ResponseWriter, r *http.Request) {
	var req eventsRequest
	if !decodeLimit(w, r, &req, 512<<10) {
		return
	}
	res, err := s.Engage.RecordEvents(r.Context(), req.Events, time.Now())
	if err != nil {
		s.fail(w, "record events", err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"results": res})
}

type leadPage struct {
	Leads []db.Lead `json:"leads"`
	// Next is the cursor of the next page; empty on the last page.
	Next string `json:"next,omitempty"`
}

func (s *Server) listLeads(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := db.LeadFilter{Stage: q.Get("stage"), Band: q.Get("band"), Segment: q.Get("segment"), Limit: 50}
	var fields []capture.FieldError
	bad := func(field, msg string) { fields = append(fields, capture.FieldError{Field: field, Message: msg}) }
	if f.Stage != "" {
		if _, err := lifecycle.Parse(f.Stage); err != nil {
			bad("stage", err.Error())
		}
	}
	if f.Band != "" && f.Band != "cold" && f.Band != "warm" && f.Band != "hot" {
		bad("band", "must be cold, warm or hot")
	}
	for _, p := range []struct {
		name string
		dst  **float64
	}{{"min_score", &f.MinScore}, {"max_score", &f.MaxScore}} {
		if v := q.Get(p.name); v != "" {
			n, err := strconv.ParseFloat(v, 64)
			if err != nil {
				bad(p.name, "must be a number")
				continue
			}
			*p.dst = &n
		}
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 500 {
			bad("limit", "must be between 1 and 500")
		} else {
			f.Limit = n
		}
	}
	if c := q.Get("cursor"); c != "" {
		at, id, ok := decodeCursor(c)
		if !ok {
			bad("cursor", "is not a cursor from a previous page")
		}
		f.AfterCreated, f.AfterID = at, id
	}
	if len(fields) > 0 {
		writeError(w, http.StatusUnprocessableEntity, "invalid filter", fields)
		return
	}
	leads, err := s.Store.ListLeads(r.Context(), f)
	if err != nil {
		s.fail(w, "list leads", err)
		return
	}
	out := leadPage{Leads: leads}
	if len(leads) == f.Limit {
		last := leads[len(leads)-1]
		out.Next = encodeCursor(last.CreatedAt, last.ID)
	}
	writeJSON(w, http.StatusOK, out)
}

func encodeCursor(at time.Time, id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(at.UTC().Format(time.RFC3339Nano) + "|" + id))
}

func decodeCursor(c string) (time.Time, string, bool) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return time.Time{}, "", false
	}
	ts, id, ok := strings.Cut(string(b), "|")
	at, err := time.Parse(time.RFC3339Nano, ts)
	if !ok || err != nil || len(id) != 36 {
		return time.Time{}, "", false
	}
	return at, id, true
}

// fail maps an error from the layers below onto a status code.
func (s *Server) fail(w http.ResponseWriter, what string, err error) {
	var ve *capture.ValidationError
	switch {
	case errors.As(err, &ve):
		writeError(w, http.StatusUnprocessableEntity, ve.Error(), ve.Fields)
	case errors.Is(err, db.ErrNotFound):
		writeError(w, http.StatusNotFound, "lead not found", nil)
	case errors.Is(err, db.ErrUnavailable), errors.Is(err, context.DeadlineExceeded):
		w.Header().Set("Retry-After", "5")
		writeError(w, http.StatusServiceUnavailable, "the database is unavailable; nothing was saved, try again shortly", nil)
	default:
		s.log().Error(what, "err", err)
		writeError(w, http.StatusInternalServerError, "internal error", nil)
	}
}

// decode reads a JSON body strictly: bounded size, no unknown fields, right types, one value.
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	return decodeLimit(w, r, v, MaxBodyBytes)
}

func decodeLimit(w http.ResponseWriter, r *http.Request, v any, limit int64) bool {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		writeError(w, http.StatusUnsupportedMediaType, "Content-Type must be application/json", nil)
		return false
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, limit))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil && dec.More() {
		err = errors.New("body must hold exactly one JSON object")
	} else if err == nil {
		if _, e := dec.Token(); e != io.EOF {
			err = errors.New("body must hold exactly one JSON object")
		}
	}
	if err == nil {
		return true
	}
	var maxErr *http.MaxBytesError
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	switch {
	case errors.As(err, &maxErr):
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body is larger than %d bytes", limit), nil)
	case errors.As(err, &typeErr) && typeErr.Field == "":
		writeError(w, http.StatusBadRequest, "body must be a JSON object, not "+typeErr.Value, nil)
	case errors.As(err, &typeErr):
		writeError(w, http.StatusBadRequest, fmt.Sprintf("field %q must be %s, not %s", typeErr.Field, jsonType(typeErr.Type.Kind().String()), typeErr.Value), nil)
	case errors.As(err, &syntaxErr):
		writeError(w, http.StatusBadRequest, fmt.Sprintf("malformed JSON at byte %d: %v", syntaxErr.Offset, syntaxErr), nil)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		writeError(w, http.StatusBadRequest, "unknown field "+strings.TrimPrefix(err.Error(), "json: unknown field "), nil)
	case errors.Is(err, io.EOF):
		writeError(w, http.StatusBadRequest, "body is empty; expected a JSON object", nil)
	default:
		writeError(w, http.StatusBadRequest, "malformed JSON: "+err.Error(), nil)
	}
	return false
}

func jsonType(kind string) string {
	switch kind {
	case "string":
		return "a string"
	case "slice":
		return "an array"
	case "map", "struct", "ptr":
		return "an object"
	case "bool":
		return "true or false"
	default:
		return "a " + kind
	}
}

type errorBody struct {
	Error  string               `json:"error"`
	Fields []capture.FieldError `json:"fields,omitempty"`
}

func writeError(w http.ResponseWriter, code int, msg string, fields []capture.FieldError) {
	writeJSON(w, code, errorBody{Error: msg, Fields: fields})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
