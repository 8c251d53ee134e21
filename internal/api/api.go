// Package api is tend's HTTP API: lead capture and lead lookup under /api/v1, health checks. HTTP
// status codes are chosen here and only here.
package api

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/tendhq/tend/internal/capture"
	"github.com/tendhq/tend/internal/db"
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
	Log     *slog.Logger
}

// Handler returns the API's routes.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, map[string]string{"status": "ok"}) })
	mux.HandleFunc("GET /readyz", s.ready)
	mux.Handle("POST /api/v1/leads", s.admin(s.createLead))
	mux.Handle("GET /api/v1/leads/{id}", s.admin(s.getLead))
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
		ok := false
		for _, k := range s.APIKeys {
			if k != "" && subtle.ConstantTimeCompare([]byte(k), []byte(key)) == 1 {
				ok = true
			}
		}
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="tend", error="invalid_token"`)
			writeError(w, http.StatusUnauthorized, "invalid API key", nil)
			return
		}
		h(w, r)
	})
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
	res, err := s.Capture.Capture(r.Context(), req, capture.Meta{IP: clientIP(r)})
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
	Sends    []db.Send            `json:"sends"`
	Workflow *workflows.LeadState `json:"workflow,omitempty"`
}

func (s *Server) getLead(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	lead, err := s.Store.Lead(r.Context(), id)
	if err != nil {
		s.fail(w, "get lead", err)
		return
	}
	sends, err := s.Store.Sends(r.Context(), id)
	if err != nil {
		s.fail(w, "get lead sends", err)
		return
	}
	out := leadDetail{Lead: lead, Sends: sends}
	if s.States != nil {
		ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
		defer cancel()
		if st, err := s.States.LeadState(ctx, id); err == nil {
			out.Workflow = st
		} else {
			s.log().Debug("lead workflow state unavailable", "lead_id", id, "err", err)
		}
	}
	writeJSON(w, http.StatusOK, out)
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
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		writeError(w, http.StatusUnsupportedMediaType, "Content-Type must be application/json", nil)
		return false
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
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
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body is larger than %d bytes", MaxBodyBytes), nil)
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

func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
