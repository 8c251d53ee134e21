package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/tendhq/tend/internal/capture"
	"github.com/tendhq/tend/internal/content"
	"github.com/tendhq/tend/internal/db"
	"github.com/tendhq/tend/internal/yamlcheck"
)

// MaxContentBytes bounds an apply's body: every file of the kinds it replaces.
const MaxContentBytes = 2 << 20

func (s *Server) contentRoutes(mux routeMux) {
	if s.Live == nil {
		return
	}
	mux.Handle("POST /api/content/apply", s.admin(s.applyContent))
	mux.Handle("GET /api/content/versions", s.admin(s.contentVersions))
	mux.Handle("POST /api/content/rollback", s.admin(s.rollbackContent))
	mux.Handle("GET /api/sequences/pauses", s.admin(s.pauses))
	mux.Handle("POST /api/sequences/{id}/pause", s.admin(s.pauseSequence))
	mux.Handle("POST /api/sequences/{id}/resume", s.admin(s.resumeSequence))
}

type applyRequest struct {
	// Files are the kinds to replace, each with all its files (name → text).
	Files  map[string]map[string]string `json:"files"`
	Pinned bool                         `json:"pinned"`
	DryRun bool                         `json:"dry_run"`
}

type rollbackRequest struct {
	Kind    string `json:"kind"`
	Version int    `json:"version"`
	// Versions rolls several kinds back together (a change that spanned them), instead of Kind
	// and Version.
	Versions map[string]int `json:"versions"`
	Pinned   bool           `json:"pinned"`
	DryRun   bool           `json:"dry_run"`
}

// applyResponse is what an apply or a rollback did, or, for a dry run, would do.
type applyResponse struct {
	// Published is false for a dry run and for a change that changes nothing.
	Published bool `json:"published"`
	// Versions are the versions published.
	Versions []db.ContentVersion `json:"versions"`
	// Current are the published versions the change was checked against.
	Current map[content.Kind]int `json:"current"`
	// Changed and Unchanged are the kinds given whose files differ, or not, from the published.
	Changed   []content.Kind `json:"changed"`
	Unchanged []content.Kind `json:"unchanged"`
	// Diffs are unified diffs of the changed kinds.
	Diffs map[content.Kind]string `json:"diffs"`
	// DryRun is what the change does to the leads in flight (when the server can tell).
	DryRun any `json:"dry_run,omitempty"`
	// Rollout says what happens to the leads in flight: "follow" (they follow the new version by
	// the documented rules), "pinned" (they keep the version they run) or "none" (nothing to move).
	Rollout string `json:"rollout"`
}

// diagnosticsBody is a refused change: every mistake, with its file and line.
type diagnosticsBody struct {
	Error       string                 `json:"error"`
	Diagnostics []yamlcheck.Diagnostic `json:"diagnostics"`
}

func (s *Server) applyContent(w http.ResponseWriter, r *http.Request) {
	var req applyRequest
	if !decodeLimit(w, r, &req, MaxContentBytes) {
		return
	}
	if len(req.Files) == 0 {
		writeError(w, http.StatusUnprocessableEntity, "nothing to apply", []capture.FieldError{{Field: "files",
			Message: "name at least one kind (sequences, scoring, sales, templates) with its files"}})
		return
	}
	src := content.Source{}
	var fields []capture.FieldError
	for k, files := range req.Files {
		kind, err := content.ParseKind(k)
		if err != nil {
			fields = append(fields, capture.FieldError{Field: "files." + k, Message: err.Error()})
			continue
		}
		if files == nil {
			files = map[string]string{}
		}
		src[kind] = files
	}
	if len(fields) > 0 {
		writeError(w, http.StatusUnprocessableEntity, "unknown kind of content", fields)
		return
	}
	plan, err := content.NewPlan(r.Context(), s.Store, src)
	s.finishApply(w, r, plan, err, req.Pinned, req.DryRun)
}

func (s *Server) rollbackContent(w http.ResponseWriter, r *http.Request) {
	var req rollbackRequest
	if !decode(w, r, &req) {
		return
	}
	to := map[content.Kind]int{}
	var fields []capture.FieldError
	add := func(field, k string, n int) {
		kind, err := content.ParseKind(k)
		switch {
		case err != nil:
			fields = append(fields, capture.FieldError{Field: field, Message: err.Error()})
		case n < 1:
			fields = append(fields, capture.FieldError{Field: field, Message: "the version to roll back to must be a number from 1"})
		default:
			to[kind] = n
		}
	}
	switch {
	case len(req.Versions) > 0 && req.Kind != "":
		fields = append(fields, capture.FieldError{Field: "versions", Message: "give kind and version, or versions, not both"})
	case len(req.Versions) > 0:
		for k, n := range req.Versions {
			add("versions."+k, k, n)
		}
	case req.Kind == "":
		fields = append(fields, capture.FieldError{Field: "kind", Message: "is required (sequences, scoring, sales, templates)"})
	default:
		add("kind", req.Kind, req.Version)
	}
	if len(fields) > 0 {
		writeError(w, http.StatusUnprocessableEntity, "invalid rollback", fields)
		return
	}
	plan, err := content.NewRollback(r.Context(), s.Store, to)
	if err != nil && strings.Contains(err.Error(), "does not exist") {
		writeError(w, http.StatusNotFound, err.Error(), nil)
		return
	}
	s.finishApply(w, r, plan, err, req.Pinned, req.DryRun)
}

// finishApply answers a planned change: its mistakes, or its diff and dry run and, unless it is a
// dry run, its publication and rollout.
func (s *Server) finishApply(w http.ResponseWriter, r *http.Request, plan *content.Plan, err error, pinned, dryRun bool) {
	var diags content.Diagnostics
	if errors.As(err, &diags) {
		writeJSON(w, http.StatusUnprocessableEntity, diagnosticsBody{Error: fmt.Sprintf("the content does not build: %d problem(s); nothing was published", len(diags)),
			Diagnostics: diags})
		return
	}
	if err != nil {
		s.failContent(w, "plan content change", err)
		return
	}
	ctx := r.Context()
	out := applyResponse{Versions: []db.ContentVersion{}, Current: plan.Current.Versions, Changed: plan.Changed, Unchanged: plan.Unchanged,
		Diffs: plan.Diffs, Rollout: "none"}
	if out.Changed == nil {
		out.Changed = []content.Kind{}
	}
	if out.Unchanged == nil {
		out.Unchanged = []content.Kind{}
	}
	// What runs now: the published content, or, when that does not build, what this server runs
	// instead (content.Open).
	current := plan.Current
	if current.Catalog == nil {
		current = s.Live.Current()
	}
	if s.DryRun != nil && len(plan.Changed) > 0 {
		res, err := s.DryRun.DryRun(ctx, current, plan.Proposed)
		if err != nil {
			// A change is never published blind: without its dry run it waits.
			s.log().Warn("dry run", "err", err)
			w.Header().Set("Retry-After", "10")
			writeError(w, http.StatusServiceUnavailable, "the dry run could not be computed ("+err.Error()+"); nothing was published, try again shortly", nil)
			return
		}
		out.DryRun = res
	}
	if dryRun || len(plan.Changed) == 0 {
		writeJSON(w, http.StatusOK, out)
		return
	}
	by := keyName(r)
	vs, err := plan.Publish(ctx, s.Store, by, pinned)
	if err != nil {
		s.failContent(w, "publish content", err)
		return
	}
	for i := range vs {
		vs[i].Files = nil
	}
	out.Published, out.Versions = true, vs
	s.log().Info("content published", "by", by, "versions", plan.Proposed.Versions, "pinned", pinned)
	// The server that published uses the new content at once (unless its watcher already holds
	// a newer one); the others within their poll at most.
	if cur := s.Live.Current(); !newer(cur, plan.Proposed) {
		s.Live.Swap(plan.Proposed)
	}
	switch {
	case pinned:
		out.Rollout = "pinned"
	case s.Rollout != nil:
		// The publish stands whatever happens here: leads that were not moved keep the version
		// they run and are moved by the next rollout, and the answer says so.
		if err := s.Rollout.Follow(context.WithoutCancel(ctx), plan.Proposed.Version(content.Sequences), current, plan.Proposed); err != nil {
			s.log().Error("content rollout", "err", err, "versions", plan.Proposed.Versions)
			out.Rollout = "failed: " + err.Error()
			break
		}
		out.Rollout = "follow"
	default:
		out.Rollout = "follow"
	}
	writeJSON(w, http.StatusOK, out)
}

// newer reports whether a holds a later version of some kind than b.
func newer(a, b *content.Set) bool {
	for _, k := range content.Kinds {
		if a.Version(k) > b.Version(k) {
			return true
		}
	}
	return false
}

// failContent maps an error of a content change onto a status code.
func (s *Server) failContent(w http.ResponseWriter, what string, err error) {
	if errors.Is(err, db.ErrContentChanged) {
		writeError(w, http.StatusConflict, err.Error()+"; apply again to check against the new versions", nil)
		return
	}
	if errors.Is(err, db.ErrNotFound) {
		writeError(w, http.StatusNotFound, err.Error(), nil)
		return
	}
	s.fail(w, what, err)
}

func (s *Server) contentVersions(w http.ResponseWriter, r *http.Request) {
	kind := r.URL.Query().Get("kind")
	if kind != "" {
		if _, err := content.ParseKind(kind); err != nil {
			writeError(w, http.StatusUnprocessableEntity, "invalid filter", []capture.FieldError{{Field: "kind", Message: err.Error()}})
			return
		}
	}
	vs, err := s.Store.ContentVersions(r.Context(), kind)
	if err != nil {
		s.fail(w, "list content versions", err)
		return
	}
	if vs == nil {
		vs = []db.ContentVersion{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"versions": vs, "in_use": s.Live.Current().Versions})
}

type pauseRequest struct {
	// Step, when set, pauses (or resumes) that step alone.
	Step string `json:"step"`
	// Ramp spreads the sends that fell due over this long on resume ("1h", "30m"); 0: at once.
	Ramp string `json:"ramp"`
}

// sequenceStep checks that the sequence (and step, when given) is in the published content.
func (s *Server) sequenceStep(w http.ResponseWriter, seqID, step string) bool {
	seq, ok := s.Live.Current().Catalog.Sequence(seqID)
	if !ok {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no sequence %q in the published sequences", seqID), nil)
		return false
	}
	if step == "" {
		return true
	}
	var ids []string
	for _, st := range seq.Steps {
		if st.ID == step {
			return true
		}
		ids = append(ids, st.ID)
	}
	writeError(w, http.StatusNotFound, fmt.Sprintf("sequence %q has no step %q (steps: %s)", seqID, step, strings.Join(ids, ", ")), nil)
	return false
}

func (s *Server) pauseSequence(w http.ResponseWriter, r *http.Request) {
	var req pauseRequest
	if r.ContentLength != 0 && !decode(w, r, &req) {
		return
	}
	if req.Ramp != "" {
		writeError(w, http.StatusUnprocessableEntity, "invalid pause", []capture.FieldError{{Field: "ramp", Message: "is for resume"}})
		return
	}
	seq := r.PathValue("id")
	if !s.sequenceStep(w, seq, req.Step) {
		return
	}
	by := keyName(r)
	fresh, err := s.Store.PauseSequence(r.Context(), seq, req.Step, by)
	if err != nil {
		s.fail(w, "pause sequence", err)
		return
	}
	s.log().Info("sequence paused", "sequence_id", seq, "step_id", req.Step, "by", by)
	writeJSON(w, http.StatusOK, map[string]any{"sequence_id": seq, "step_id": req.Step, "paused": true, "already_paused": !fresh})
}

func (s *Server) resumeSequence(w http.ResponseWriter, r *http.Request) {
	var req pauseRequest
	if r.ContentLength != 0 && !decode(w, r, &req) {
		return
	}
	var ramp time.Duration
	if req.Ramp != "" {
		d, err := yamlcheck.ParseDuration(req.Ramp)
		if err != nil || d < 0 {
			writeError(w, http.StatusUnprocessableEntity, "invalid resume", []capture.FieldError{{Field: "ramp", Message: "must be a duration like 30m, 1h or 1d"}})
			return
		}
		ramp = d
	}
	seq := r.PathValue("id")
	// A step removed since it was paused can still be resumed: only the sequence must exist.
	if _, ok := s.Live.Current().Catalog.Sequence(seq); !ok {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no sequence %q in the published sequences", seq), nil)
		return
	}
	was, err := s.Store.ResumeSequence(r.Context(), seq, req.Step)
	if err != nil {
		s.fail(w, "resume sequence", err)
		return
	}
	released := 0
	if s.Resumer != nil {
		// The held sends are released even when nothing was paused: a resume that failed halfway
		// is finished by the next one.
		if released, err = s.Resumer.Resume(r.Context(), seq, req.Step, ramp); err != nil {
			s.fail(w, "release held sends", err)
			return
		}
	}
	s.log().Info("sequence resumed", "sequence_id", seq, "step_id", req.Step, "by", keyName(r), "ramp", ramp, "released", released)
	writeJSON(w, http.StatusOK, map[string]any{"sequence_id": seq, "step_id": req.Step, "was_paused": was, "released": released,
		"ramp": ramp.String()})
}

func (s *Server) pauses(w http.ResponseWriter, r *http.Request) {
	ps, err := s.Store.Pauses(r.Context())
	if err != nil {
		s.fail(w, "list pauses", err)
		return
	}
	if ps == nil {
		ps = []db.Pause{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"pauses": ps})
}
