package api

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"
	"go.temporal.io/sdk/temporal"

	"github.com/tendhq/tend/internal/capture"
	"github.com/tendhq/tend/internal/db"
	"github.com/tendhq/tend/internal/lifecycle"
	"github.com/tendhq/tend/internal/sales"
	"github.com/tendhq/tend/internal/track"
	"github.com/tendhq/tend/workflows"
)

// Decider sends a rep's answer to the lead's workflow (a Temporal update) and returns its outcome.
type Decider interface {
	Decide(ctx context.Context, leadID string, d workflows.Decision) (workflows.DecisionResult, error)
}

type decisionRequest struct {
	RepID  string `json:"rep_id"`
	Reason string `json:"reason,omitempty"`
	Note   string `json:"note,omitempty"`
	// HandoffID, when given, is the handoff the answer is for: an answer to an earlier one is
	// refused (stale_link) instead of acting on the current one.
	HandoffID int64 `json:"handoff_id,omitempty"`
}

// sendDecision stores the rep's note (the lead's workflow gets only its id: free text never
// enters Temporal's history) and sends the answer to the workflow. A note of an answer that was
// not taken is dropped.
func (s *Server) sendDecision(ctx context.Context, leadID string, d workflows.Decision, note string) (workflows.DecisionResult, error) {
	if strings.TrimSpace(note) != "" {
		id, err := s.Store.SaveAnswerNote(ctx, leadID, note)
		if err != nil {
			return workflows.DecisionResult{}, fmt.Errorf("store the note: %w", err)
		}
		d.NoteID = id
	}
	out, err := s.Decider.Decide(ctx, leadID, d)
	if d.NoteID != "" && (err != nil || (out.Outcome != workflows.OutcomeAccepted && out.Outcome != workflows.OutcomeRejected)) {
		if derr := s.Store.DeleteAnswerNote(context.WithoutCancel(ctx), d.NoteID); derr != nil {
			s.log().Warn("drop the note of an answer not taken", "lead_id", leadID, "err", derr)
		}
	}
	return out, err
}

func (s *Server) decisionCode(out workflows.DecisionResult) int {
	switch out.Outcome {
	case workflows.OutcomeAccepted, workflows.OutcomeAlreadyAccepted, workflows.OutcomeRejected:
		return http.StatusOK
	case workflows.OutcomeNotYourLead:
		return http.StatusForbidden
	default:
		return http.StatusConflict
	}
}

func (s *Server) decide(action string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req decisionRequest
		if !decode(w, r, &req) {
			return
		}
		id := r.PathValue("id")
		if _, err := uuid.Parse(id); err != nil {
			writeError(w, http.StatusNotFound, "lead not found", nil)
			return
		}
		var fields []capture.FieldError
		if strings.TrimSpace(req.RepID) == "" {
			fields = append(fields, capture.FieldError{Field: "rep_id", Message: "is required"})
		}
		if action == "reject" && !contains(workflows.RejectReasons, req.Reason) {
			fields = append(fields, capture.FieldError{Field: "reason", Message: "must be one of " + strings.Join(workflows.RejectReasons, ", ")})
		}
		if len(req.Note) > 1000 {
			fields = append(fields, capture.FieldError{Field: "note", Message: "is longer than 1000 characters"})
		}
		if len(fields) > 0 {
			writeError(w, http.StatusUnprocessableEntity, "invalid answer", fields)
			return
		}
		if req.HandoffID < 0 {
			writeError(w, http.StatusUnprocessableEntity, "invalid answer", []capture.FieldError{{Field: "handoff_id", Message: "must be a handoff id"}})
			return
		}
		out, err := s.sendDecision(r.Context(), id, workflows.Decision{Action: action, RepID: req.RepID, Reason: req.Reason, HandoffID: req.HandoffID}, req.Note)
		if err != nil {
			s.log().Warn("decide", "lead_id", id, "err", err)
			if answerNotStored(err) {
				writeError(w, http.StatusServiceUnavailable, "the answer could not be recorded; nothing changed, try again", nil)
				return
			}
			writeError(w, http.StatusConflict, "the lead is not waiting for a sales answer", nil)
			return
		}
		writeJSON(w, s.decisionCode(out), out)
	}
}

// answerNotStored reports whether the workflow refused an answer because it could not store it.
func answerNotStored(err error) bool {
	var appErr *temporal.ApplicationError
	return errors.As(err, &appErr) && appErr.Type() == workflows.ErrTypeAnswerNotStored
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

type qualifyRequest struct {
	RepID     string  `json:"rep_id"`
	Budget    string  `json:"budget"`
	Authority string  `json:"authority"`
	Need      string  `json:"need"`
	Timeframe string  `json:"timeframe"`
	Value     float64 `json:"value"`
	Currency  string  `json:"currency"`
	Reason    string  `json:"reason"`
}

// salesStage handles the steps after acceptance: qualify (SQL with BANT), opportunity, won, lost.
func (s *Server) salesStage(step string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req qualifyRequest
		if !decode(w, r, &req) {
			return
		}
		id := r.PathValue("id")
		var fields []capture.FieldError
		if strings.TrimSpace(req.RepID) == "" {
			fields = append(fields, capture.FieldError{Field: "rep_id", Message: "is required"})
		}
		switch step {
		case "qualify":
			for name, v := range map[string]string{"budget": req.Budget, "authority": req.Authority, "need": req.Need, "timeframe": req.Timeframe} {
				if strings.TrimSpace(v) == "" || len(v) > 500 {
					fields = append(fields, capture.FieldError{Field: name, Message: "is required (at most 500 characters)"})
				}
			}
		case "won":
			if req.Value <= 0 {
				fields = append(fields, capture.FieldError{Field: "value", Message: "must be a positive amount"})
			}
			if len(req.Currency) != 3 {
				fields = append(fields, capture.FieldError{Field: "currency", Message: "must be a 3-letter currency code"})
			}
		case "lost":
			if strings.TrimSpace(req.Reason) == "" || len(req.Reason) > 500 {
				fields = append(fields, capture.FieldError{Field: "reason", Message: "is required"})
			}
		}
		if len(fields) > 0 {
			writeError(w, http.StatusUnprocessableEntity, "invalid request", fields)
			return
		}
		// The store calls check under the lead's row lock, and only when the stage is about to
		// change: what it saw is the transition to count once the change commits. A step on a
		// lead already at its stage never calls it, so a repeat counts nothing.
		var moved struct{ from, to string }
		check := func(from, to string) error {
			if err := lifecycle.CheckTransition(lifecycle.Stage(from), lifecycle.Stage(to)); err != nil {
				return err
			}
			moved.from, moved.to = from, to
			return nil
		}
		var err error
		switch step {
		case "qualify":
			err = s.Store.Qualify(r.Context(), id, req.RepID, [4]string{req.Budget, req.Authority, req.Need, req.Timeframe}, check)
		case "opportunity":
			err = s.Store.OpenOpportunity(r.Context(), id, req.RepID, check)
		case "won":
			err = s.Store.CloseOpportunity(r.Context(), id, req.RepID, true, req.Value, strings.ToUpper(req.Currency), "", check)
		case "lost":
			err = s.Store.CloseOpportunity(r.Context(), id, req.RepID, false, 0, "", req.Reason, check)
		}
		if errors.Is(err, db.ErrTransition) {
			writeError(w, http.StatusConflict, err.Error(), nil)
			return
		}
		if err != nil {
			s.fail(w, step, err)
			return
		}
		if moved.from != "" {
			s.Metrics.StageChanged(moved.from, moved.to)
		}
		lead, err := s.Store.Lead(r.Context(), id)
		if err != nil {
			s.fail(w, step, err)
			return
		}
		if s.Engage != nil {
			s.Engage.Notifier.Notify(id) // the workflow picks up the new stage (a lost deal resumes nurture)
		}
		writeJSON(w, http.StatusOK, map[string]string{"id": id, "stage": lead.Stage})
	}
}

var actionPage = template.Must(template.New("a").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex"><title>{{.Title}}</title>
<style>body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;max-width:34rem;margin:3rem auto;padding:0 1rem;color:#1f2933;line-height:1.5}
button{font:inherit;padding:.6rem 1.2rem;border-radius:6px;border:1px solid #1f2933;background:#1f2933;color:#fff;cursor:pointer}
select,textarea{font:inherit;width:100%;margin:.3rem 0 1rem}</style></head><body>
<h1>{{.Title}}</h1><p>{{.Message}}</p>
{{if .Accept}}<form method="post"><button type="submit">Accept this lead</button></form>{{end}}
{{if .Reject}}<form method="post"><label>Why?<select name="reason">
<option value="not_ready">Not ready yet (back to nurture)</option><option value="not_a_fit">Wrong industry / not a fit</option>
<option value="no_budget">No budget</option><option value="bad_data">Bad data</option><option value="other">Other</option></select></label>
<label>Note<textarea name="note" rows="3" maxlength="1000"></textarea></label><button type="submit">Reject this lead</button></form>{{end}}
</body></html>`))

type actionView struct {
	Title, Message string
	Accept, Reject bool
}

func renderAction(w http.ResponseWriter, code int, v actionView) {
	htmlHeaders(w)
	w.WriteHeader(code)
	_ = actionPage.Execute(w, v)
}

// verifyDecision verifies an accept or reject link; any other kind of action token (a desk link)
// is as invalid here as a forged one.
func (s *Server) verifyDecision(token string) (track.Action, error) {
	a, err := s.Keys.VerifyAction(token, time.Now())
	if err == nil && a.Kind != track.ActionAccept && a.Kind != track.ActionReject {
		return track.Action{}, track.ErrInvalidToken
	}
	return a, err
}

// actionForm shows the confirmation page of an accept or reject link. A GET never acts: link
// scanners fetch every link in an email.
func (s *Server) actionForm(w http.ResponseWriter, r *http.Request) {
	a, err := s.verifyDecision(r.PathValue("token"))
	if err != nil {
		renderAction(w, http.StatusNotFound, actionView{Title: "Link not valid", Message: "This link is not valid or has expired. Use the API or ask your manager."})
		return
	}
	if a.Kind == track.ActionAccept {
		renderAction(w, http.StatusOK, actionView{Title: "Accept lead", Message: "Accepting stops the response clock and moves the lead to SAL.", Accept: true})
		return
	}
	renderAction(w, http.StatusOK, actionView{Title: "Reject lead", Message: "Tell marketing why, so the scoring can improve.", Reject: true})
}

// action performs what the link says, through the same Temporal update as the API.
func (s *Server) action(w http.ResponseWriter, r *http.Request) {
	a, err := s.verifyDecision(r.PathValue("token"))
	if err != nil {
		renderAction(w, http.StatusNotFound, actionView{Title: "Link not valid", Message: "This link is not valid or has expired."})
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 4<<10)
	if err := r.ParseForm(); err != nil {
		renderAction(w, http.StatusBadRequest, actionView{Title: "Try again", Message: "The request could not be read."})
		return
	}
	d := workflows.Decision{Action: "accept", RepID: a.Rep, HandoffID: a.Handoff}
	note := ""
	if a.Kind == track.ActionReject {
		d = workflows.Decision{Action: "reject", RepID: a.Rep, Reason: r.PostForm.Get("reason"), HandoffID: a.Handoff}
		note = r.PostForm.Get("note")
		if !contains(workflows.RejectReasons, d.Reason) {
			renderAction(w, http.StatusUnprocessableEntity, actionView{Title: "Reject lead", Message: "Choose a reason.", Reject: true})
			return
		}
		if len(note) > 1000 {
			renderAction(w, http.StatusUnprocessableEntity, actionView{Title: "Reject lead", Message: "The note is longer than 1000 characters.", Reject: true})
			return
		}
	}
	out, err := s.sendDecision(r.Context(), uuid.UUID(a.LeadID).String(), d, note)
	if err != nil && answerNotStored(err) {
		renderAction(w, http.StatusServiceUnavailable, actionView{Title: "Try again", Message: "Your answer could not be recorded just now; nothing changed. Please try again in a minute."})
		return
	}
	if err != nil {
		renderAction(w, http.StatusConflict, actionView{Title: "Not possible", Message: "This lead is not waiting for your answer any more."})
		return
	}
	msg := map[string]string{
		workflows.OutcomeAccepted:        "Accepted. The lead is yours; the response clock has stopped.",
		workflows.OutcomeAlreadyAccepted: "You have already accepted this lead.",
		workflows.OutcomeRejected:        "Rejected. Thank you for the feedback.",
		workflows.OutcomeNotYourLead:     "This lead is assigned to someone else.",
		workflows.OutcomeTooLate:         "Too late: the lead was escalated and reassigned.",
		workflows.OutcomeNotInSales:      "This lead is not waiting for a sales answer.",
		workflows.OutcomeStaleLink:       "This link is for an earlier handoff of this lead. Use the newest email about it, or your desk.",
	}[out.Outcome]
	renderAction(w, s.decisionCode(out), actionView{Title: strings.ReplaceAll(out.Outcome, "_", " "), Message: msg})
}

// team returns the sales team as published (reps, managers, policies, calendars, escalation).
func (s *Server) team(w http.ResponseWriter, r *http.Request) {
	t := s.salesTeam()
	if t == nil {
		writeError(w, http.StatusNotFound, "sales handoff is off: no sales team is published", nil)
		return
	}
	writeJSON(w, http.StatusOK, t)
}

// salesTeam is the team in use: the published one when the content is live.
func (s *Server) salesTeam() *sales.Team {
	if s.Live != nil {
		if t := s.Live.Current().Team; t != nil {
			return t
		}
	}
	return s.Team
}

func (s *Server) salesRoutes(mux routeMux) {
	if s.Team != nil || s.Live != nil {
		mux.Handle("GET /api/v1/team", s.admin(s.team))
	}
	if s.Decider == nil {
		return
	}
	mux.Handle("POST /api/v1/leads/{id}/accept", s.admin(s.decide("accept")))
	mux.Handle("POST /api/v1/leads/{id}/reject", s.admin(s.decide("reject")))
	mux.Handle("POST /api/v1/leads/{id}/qualify", s.admin(s.salesStage("qualify")))
	mux.Handle("POST /api/v1/leads/{id}/opportunity", s.admin(s.salesStage("opportunity")))
	mux.Handle("POST /api/v1/leads/{id}/won", s.admin(s.salesStage("won")))
	mux.Handle("POST /api/v1/leads/{id}/lost", s.admin(s.salesStage("lost")))
	if s.Keys != nil {
		mux.Handle("GET /s/{token}", s.limitPublic(s.actionForm))
		mux.Handle("POST /s/{token}", s.limitPublic(s.action))
		mux.Handle("GET /desk/{token}", s.limitPublic(s.desk))
	}
}
