package activities

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"log/slog"
	"strings"
	texttemplate "text/template"
	"time"

	"github.com/google/uuid"
	"go.temporal.io/sdk/temporal"

	"github.com/tendhq/tend/internal/content"
	"github.com/tendhq/tend/internal/db"
	"github.com/tendhq/tend/internal/lifecycle"
	"github.com/tendhq/tend/internal/mail"
	"github.com/tendhq/tend/internal/metrics"
	"github.com/tendhq/tend/internal/sales"
	"github.com/tendhq/tend/internal/track"
)

// Sales hands leads to reps: assignment, handoff notices, SLA lapses and escalations, and the
// rep's answer. Notices to sales are not marketing email: no tracking, no unsubscribe, no cap.
type Sales struct {
	Store *db.Store
	Team  *sales.Team
	// Live, when set, is the published content: its team replaces Team.
	Live   *content.Live
	Mailer Mailer
	Keys   *track.Keys
	// BaseURL is where reps reach the accept and reject pages.
	BaseURL string
	From    From
	// LinkTTL is how long accept and reject links stay valid; default 7 days.
	LinkTTL time.Duration
	Log     *slog.Logger
	// Metrics, when set, counts handoffs, SLA breaches and stage changes.
	Metrics *metrics.Set
}

// AssignInput asks for a rep for a lead's handoff.
type AssignInput struct {
	LeadID string
	// Seq is the lead's nth handoff; Assignment the nth rep of that handoff (1, then 2 after a
	// reassignment).
	Seq, Assignment int
	Reason          string
	HandRaiseEvent  string
	At              time.Time
	// Current is the rep being replaced on a reassignment.
	Current string
}

// Assignment is a lead handed to a rep, with the SLA clock.
type Assignment struct {
	HandoffID     int64
	RepID         string
	ManagerID     string
	Policy        string
	DueAt         time.Time
	RemindAt      time.Time `json:",omitzero"`
	ReassignAfter int
	// RecycleSegment is the segment whose series a recycled lead gets.
	RecycleSegment string
}

// Assign picks the rep (round-robin among the active reps of the lead's segment, fallback owner
// otherwise), stores the handoff with its deadline in the rep's business hours, and sends the rep
// the handoff notice. A retry returns the same assignment and never sends the notice twice.
func (a *Sales) Assign(ctx context.Context, in AssignInput) (Assignment, error) {
	lead, err := a.Store.Lead(ctx, in.LeadID)
	if errors.Is(err, db.ErrNotFound) {
		return Assignment{}, unknownLead(in.LeadID, err)
	}
	if err != nil {
		return Assignment{}, fmt.Errorf("assign lead %s: %w", in.LeadID, err)
	}
	h, err := a.Store.FindHandoff(ctx, in.LeadID, in.Seq, in.Assignment)
	if errors.Is(err, db.ErrNotFound) {
		if h, err = a.open(ctx, lead.Segment, in); err == nil {
			a.Metrics.HandedOff(in.Assignment > 1)
		}
	}
	if err != nil {
		return Assignment{}, fmt.Errorf("assign lead %s: %w", in.LeadID, err)
	}
	rep, ok := a.team().Rep(h.RepID)
	if !ok {
		return Assignment{}, temporal.NewNonRetryableApplicationError("rep "+h.RepID+" is no longer in the team file", "UnknownRep", nil)
	}
	out := Assignment{HandoffID: h.ID, RepID: h.RepID, ManagerID: h.ManagerID, Policy: h.Policy, DueAt: h.DueAt,
		ReassignAfter: max(a.team().Escalation.ReassignAfter, 1), RecycleSegment: a.team().Recycle.NotReadySegment}
	if rb := a.team().Escalation.RemindBefore; rb > 0 {
		pol := a.policy(h.Policy)
		cal, loc, err := a.team().CalendarOf(rep)
		if err == nil && pol.Response > rb {
			out.RemindAt = cal.Add(h.HandedOffAt, pol.Response-rb, loc)
		}
	}
	if err := a.notice(ctx, fmt.Sprintf("handoff:%d", h.ID), lead, "handoff", rep.ID, rep.Name, rep.Email, h, 0); err != nil {
		return Assignment{}, err
	}
	return out, nil
}

func (a *Sales) policy(id string) sales.Policy {
	for _, p := range a.team().Policies {
		if p.ID == id {
			return p
		}
	}
	return a.team().Policy("")
}

func (a *Sales) open(ctx context.Context, segment string, in AssignInput) (db.Handoff, error) {
	counter, err := a.Store.NextCounter(ctx, a.team().TerritoryKey(segment))
	if err != nil {
		return db.Handoff{}, err
	}
	var rep sales.Rep
	if in.Current == "" {
		rep, _ = a.team().Pick(segment, counter)
	} else {
		var ok bool
		if rep, ok = a.team().Next(segment, in.Current, counter); !ok {
			cur, _ := a.team().Rep(in.Current)
			rep = cur // nobody else can take it: the same rep gets a new clock
		}
	}
	pol := a.team().Policy(in.HandRaiseEvent)
	cal, loc, err := a.team().CalendarOf(rep)
	if err != nil {
		return db.Handoff{}, err
	}
	due := cal.Add(in.At, pol.Response, loc)
	return a.Store.OpenHandoff(ctx, db.Handoff{LeadID: in.LeadID, Seq: in.Seq, Assignment: in.Assignment, RepID: rep.ID,
		ManagerID: rep.Manager, Policy: pol.ID, Reason: in.Reason, HandedOffAt: in.At, DueAt: due})
}

// LapseInput reports a handoff whose deadline passed without an answer.
type LapseInput struct {
	HandoffID int64
	Lapse     int
	At        time.Time
	// Answered: the rep's answer came after the deadline but before the lapse was handled; the
	// manager is told, the rep gets no copy.
	Answered bool `json:",omitempty"`
}

// LapseResult is the rep's next deadline (a new clock for the same rep).
type LapseResult struct {
	NextDueAt time.Time
}

// Lapse records the lapse and sends the escalation notice to the manager and a copy to the rep:
// exactly one of each per lapse, however often the activity runs.
func (a *Sales) Lapse(ctx context.Context, in LapseInput) (LapseResult, error) {
	h, err := a.Store.HandoffByID(ctx, in.HandoffID)
	if err != nil {
		return LapseResult{}, fmt.Errorf("lapse of handoff %d: %w", in.HandoffID, err)
	}
	lead, err := a.Store.Lead(ctx, h.LeadID)
	if err != nil {
		return LapseResult{}, fmt.Errorf("lapse of handoff %d: %w", in.HandoffID, err)
	}
	rep, _ := a.team().Rep(h.RepID)
	mgr, _ := a.team().Manager(h.ManagerID)
	cal, loc, err := a.team().CalendarOf(rep)
	if err != nil {
		return LapseResult{}, err
	}
	next := cal.Add(in.At, a.policy(h.Policy).Response, loc)
	if err := a.Store.RecordLapse(ctx, h.ID, in.Lapse, mgr.ID, in.At.Sub(h.DueAt), next); err != nil {
		return LapseResult{}, fmt.Errorf("record lapse of handoff %d: %w", h.ID, err)
	}
	h.Lapses = max(h.Lapses, in.Lapse)
	// The breach is counted when its escalation is sent — exactly once per lapse, however often
	// the activity runs — with how late after the deadline that was: the manager's notice, or
	// the rep's copy when the manager has no address.
	if mgr.Email != "" {
		sent, err := a.sendNotice(ctx, fmt.Sprintf("escalation:%d:%d:manager", h.ID, in.Lapse), lead, "escalation", mgr.ID, mgr.Name, mgr.Email, h, in.At.Sub(h.DueAt))
		if err != nil {
			return LapseResult{}, err
		}
		if sent {
			a.Metrics.SLABreached(time.Since(h.DueAt))
		}
	}
	if !in.Answered {
		sent, err := a.sendNotice(ctx, fmt.Sprintf("escalation:%d:%d:rep", h.ID, in.Lapse), lead, "escalation-copy", rep.ID, rep.Name, rep.Email, h, in.At.Sub(h.DueAt))
		if err != nil {
			return LapseResult{}, err
		}
		if sent && mgr.Email == "" {
			a.Metrics.SLABreached(time.Since(h.DueAt))
		}
	}
	return LapseResult{NextDueAt: next}, nil
}

// Remind sends the rep a reminder before the deadline, once.
func (a *Sales) Remind(ctx context.Context, handoffID int64) error {
	h, err := a.Store.HandoffByID(ctx, handoffID)
	if err != nil {
		return fmt.Errorf("remind handoff %d: %w", handoffID, err)
	}
	lead, err := a.Store.Lead(ctx, h.LeadID)
	if err != nil {
		return err
	}
	rep, _ := a.team().Rep(h.RepID)
	return a.notice(ctx, fmt.Sprintf("reminder:%d", h.ID), lead, "reminder", rep.ID, rep.Name, rep.Email, h, 0)
}

// RespondInput is a rep's answer, already accepted by the workflow.
type RespondInput struct {
	HandoffID int64
	LeadID    string
	RepID     string
	// Action is accept, reject or lost.
	Action string
	Reason string
	// Note is the rep's free text in answers from older runs; NoteID names a note the server
	// stored, so that the text never travels through Temporal.
	Note   string
	NoteID string `json:",omitempty"`
	At     time.Time
}

// RespondResult says where the lead went.
type RespondResult struct {
	Stage lifecycle.Stage
	// RecycleSegment, for a recycled lead, is the segment whose nurture series it gets.
	RecycleSegment string
}

// Respond stores the answer: accept → SAL with the response time; reject with "not_ready" →
// recycled into nurture; any other reason → disqualified. Every change records the rep and why.
func (a *Sales) Respond(ctx context.Context, in RespondInput) (RespondResult, error) {
	// The store calls check under the lead's row lock, and only when the stage is about to change:
	// what it saw is the transition to count once the answer commits. A retry, or an attempt
	// overlapping one that already stored the answer, finds it stored and calls nothing.
	var moved struct{ from, to string }
	check := func(from, to string) error {
		if err := lifecycle.CheckTransition(lifecycle.Stage(from), lifecycle.Stage(to)); err != nil {
			return err
		}
		moved.from, moved.to = from, to
		return nil
	}
	var res RespondResult
	if in.NoteID != "" {
		note, err := a.Store.AnswerNote(ctx, in.LeadID, in.NoteID)
		switch {
		case err == nil:
			in.Note = note
		case errors.Is(err, db.ErrNotFound):
			// Stored by an earlier attempt (which then deleted it) or never: the answer stands.
		default:
			return res, fmt.Errorf("read the note of the answer to handoff %d: %w", in.HandoffID, err)
		}
	}
	var outcome, stage, why string
	switch in.Action {
	case "accept":
		outcome, stage, why = "accepted", string(lifecycle.SAL), "accepted by "+in.RepID
	case "reject":
		outcome, why = "rejected", "rejected by "+in.RepID+": "+in.Reason
		if in.Note != "" {
			why += " (" + in.Note + ")"
		}
		stage = string(lifecycle.Disqualified)
		if in.Reason == "not_ready" {
			stage = string(lifecycle.Recycled)
		}
	default:
		return res, temporal.NewNonRetryableApplicationError("unknown action "+in.Action, "BadAction", nil)
	}
	err := a.Store.Respond(ctx, in.HandoffID, outcome, in.Reason, in.Note, stage, in.RepID, why, in.At, check)
	if err != nil && !errors.Is(err, db.ErrTransition) {
		return res, fmt.Errorf("record answer to handoff %d: %w", in.HandoffID, err)
	}
	if err == nil && moved.from != "" {
		// Counted here, before anything that can still fail: a retry would not count it.
		a.Metrics.StageChanged(moved.from, moved.to)
	}
	if in.NoteID != "" {
		if err := a.Store.DeleteAnswerNote(ctx, in.NoteID); err != nil {
			return res, fmt.Errorf("drop the stored note of handoff %d: %w", in.HandoffID, err)
		}
	}
	lead, err := a.Store.Lead(ctx, in.LeadID)
	if err != nil {
		return res, err
	}
	res.Stage = lifecycle.Stage(lead.Stage)
	if res.Stage == lifecycle.Recycled {
		res.RecycleSegment = a.team().Recycle.NotReadySegment
	}
	return res, nil
}

// notice sends one email to a person of the sales team, exactly once per key.
func (a *Sales) notice(ctx context.Context, key string, lead db.Lead, kind, personID, personName, address string, h db.Handoff, overdue time.Duration) error {
	_, err := a.sendNotice(ctx, key, lead, kind, personID, personName, address, h, overdue)
	return err
}

// sendNotice is notice, and says whether this call sent it.
func (a *Sales) sendNotice(ctx context.Context, key string, lead db.Lead, kind, personID, personName, address string, h db.Handoff, overdue time.Duration) (sent bool, err error) {
	// Rendered before the claim: the claim's transaction holds a connection until the SMTP server
	// answered, and rendering reads the lead's events with another; both at once, a few notices
	// could take the whole pool and wait for each other.
	subject, text, html, err := a.renderNotice(ctx, kind, lead, personID, personName, h, overdue)
	if err != nil {
		// A template that does not render is a business error: the handoff, lapse or reminder
		// stands (the rep's desk lists the lead), the failure is logged for the operator, and
		// the workflow goes on. Failing the activity would only retry a template that stays broken.
		a.logger().Error("sales notice not sent: its template does not render", "kind", kind, "lead_id", lead.ID,
			"recipient", personID, "err", err)
		return false, nil
	}
	claim, err := a.Store.ClaimNotice(ctx, key, lead.ID, kind, personID, a.From.Domain)
	if err != nil {
		return false, fmt.Errorf("notice %s: %w", key, err)
	}
	if claim.Status != "pending" {
		claim.Abort(ctx)
		return false, nil
	}
	sendErr := a.Mailer.Send(ctx, mail.Message{FromName: a.From.Name, FromAddress: a.From.Address, ToName: personName,
		ToAddress: address, Subject: subject, MessageID: claim.MessageID, Text: text, HTML: html,
		Headers: map[string]string{"X-Tend-Notice": kind}})
	if sendErr == nil {
		if err := claim.Finish(ctx, "sent", ""); err != nil {
			return false, err
		}
		return true, nil
	}
	var f *mail.Failure
	if errors.As(sendErr, &f) && !f.Temporary {
		_ = claim.Finish(ctx, "failed", f.Error())
		a.logger().Error("notice rejected by SMTP", "kind", kind, "lead_id", lead.ID, "recipient", personID, "smtp", f.Error())
		return false, nil
	}
	_ = claim.Finish(ctx, "pending", sendErr.Error())
	return false, fmt.Errorf("send %s notice for lead %s: %w", kind, lead.ID, sendErr)
}

func (a *Sales) logger() *slog.Logger {
	if a.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return a.Log
}

// DeskLinkTTL is how long the desk link in a notice stays valid.
const DeskLinkTTL = 30 * 24 * time.Hour

type noticeData struct {
	Kind       string
	Person     string
	Lead       db.Lead
	Reason     string
	Score      float64
	Band       string
	Breakdown  []map[string]any
	Timeline   []db.Event
	Attributes map[string]string
	Due        string
	Overdue    string
	AcceptURL  string
	RejectURL  string
	// DeskURL opens the recipient's desk: every lead handed to them (or their reps), open first.
	DeskURL     string
	Rep         string
	HandedOffAt string
}

var noticeSubjects = texttemplate.Must(texttemplate.New("s").Parse(
	`{{if eq .Kind "handoff"}}New lead for you: {{.Lead.Name}}{{if .Lead.Company}} ({{.Lead.Company}}){{end}} — respond by {{.Due}}` +
		`{{else if eq .Kind "reminder"}}Reminder: {{.Lead.Name}} is waiting — respond by {{.Due}}` +
		`{{else}}SLA missed: {{.Lead.Name}}{{if .Lead.Company}} ({{.Lead.Company}}){{end}} not answered by {{.Rep}} (due {{.Due}}){{end}}`))

const noticeBody = `{{define "body"}}Hi {{.Person}},
{{if eq .Kind "handoff"}}
{{.Lead.Name}}{{if .Lead.Company}} from {{.Lead.Company}}{{end}} is ready for sales. Please accept or reject by {{.Due}}.
{{else if eq .Kind "reminder"}}
{{.Lead.Name}} is still waiting for you. Please accept or reject by {{.Due}}.
{{else if eq .Kind "escalation"}}
{{.Rep}} did not respond to {{.Lead.Name}}{{if .Lead.Company}} from {{.Lead.Company}}{{end}} in time: the deadline was {{.Due}}, {{.Overdue}} ago.
{{else}}
This lead was escalated to your manager: the deadline was {{.Due}}, {{.Overdue}} ago. Please respond now.
{{end}}
Why now: {{.Reason}} (score {{.Score}}, {{.Band}})
Email: {{.Lead.Email}}
Interests: {{range $i, $v := .Lead.Interests}}{{if $i}}, {{end}}{{$v}}{{end}}
{{range $k, $v := .Attributes}}{{$k}}: {{$v}}
{{end}}
Score breakdown:
{{range .Breakdown}}  {{index . "rule_id"}}: {{index . "points"}}
{{end}}
What they did:
{{range .Timeline}}  {{.OccurredAt.Format "2006-01-02 15:04"}} {{.Type}}{{if .URL}} {{.URL}}{{end}}{{range .Tags}} #{{.}}{{end}}
{{end}}{{if .AcceptURL}}
Accept: {{.AcceptURL}}
Reject: {{.RejectURL}}
{{end}}{{if .DeskURL}}
All your leads: {{.DeskURL}}
{{end}}{{end}}`

var noticeText = texttemplate.Must(texttemplate.New("t").Parse(noticeBody))

var noticeHTML = htmltemplate.Must(htmltemplate.New("h").Parse(`<!DOCTYPE html><html><body style="font-family:sans-serif;color:#1f2933;max-width:640px">
<p>Hi {{.Person}},</p>
{{if eq .Kind "handoff"}}<p><b>{{.Lead.Name}}</b>{{if .Lead.Company}} from <b>{{.Lead.Company}}</b>{{end}} is ready for sales. Please accept or reject by <b>{{.Due}}</b>.</p>
{{else if eq .Kind "reminder"}}<p><b>{{.Lead.Name}}</b> is still waiting for you. Please accept or reject by <b>{{.Due}}</b>.</p>
{{else if eq .Kind "escalation"}}<p><b>{{.Rep}}</b> did not respond to <b>{{.Lead.Name}}</b> in time: the deadline was {{.Due}}, <b>{{.Overdue}}</b> ago.</p>
{{else}}<p>This lead was escalated to your manager: the deadline was {{.Due}}, {{.Overdue}} ago. Please respond now.</p>{{end}}
<p>Why now: {{.Reason}} (score {{.Score}}, {{.Band}})<br>Email: {{.Lead.Email}}<br>Interests: {{range $i, $v := .Lead.Interests}}{{if $i}}, {{end}}{{$v}}{{end}}</p>
{{if .Attributes}}<table>{{range $k, $v := .Attributes}}<tr><td>{{$k}}</td><td>{{$v}}</td></tr>{{end}}</table>{{end}}
<h3>Score breakdown</h3><ul>{{range .Breakdown}}<li>{{index . "rule_id"}}: {{index . "points"}}</li>{{end}}</ul>
<h3>What they did</h3><ul>{{range .Timeline}}<li>{{.OccurredAt.Format "2006-01-02 15:04"}} {{.Type}}{{if .URL}} {{.URL}}{{end}}{{range .Tags}} #{{.}}{{end}}</li>{{end}}</ul>
{{if .AcceptURL}}<p><a href="{{.AcceptURL}}" style="background:#1f2933;color:#fff;padding:8px 16px;border-radius:6px;text-decoration:none">Accept</a>
&nbsp; <a href="{{.RejectURL}}">Reject</a></p>{{end}}
{{if .DeskURL}}<p><a href="{{.DeskURL}}">All your leads</a></p>{{end}}
</body></html>`))

func (a *Sales) renderNotice(ctx context.Context, kind string, lead db.Lead, personID, person string, h db.Handoff, overdue time.Duration) (string, string, string, error) {
	rep, _ := a.team().Rep(h.RepID)
	_, loc, err := a.team().CalendarOf(rep)
	if err != nil {
		loc = time.UTC
	}
	events, err := a.Store.LeadEvents(ctx, lead.ID)
	if err != nil {
		return "", "", "", err
	}
	var human []db.Event
	for i := len(events) - 1; i >= 0 && len(human) < 15; i-- {
		if !events[i].Machine && !events[i].Duplicate {
			human = append(human, events[i])
		}
	}
	d := noticeData{Kind: kind, Person: person, Lead: lead, Reason: h.Reason, Score: lead.Score, Band: lead.Band, Timeline: human,
		Attributes: lead.Attributes, Due: h.DueAt.In(loc).Format("Mon 2 Jan 15:04 MST"), Rep: rep.Name,
		Overdue: overdue.Round(time.Second).String(), HandedOffAt: h.HandedOffAt.In(loc).Format("Mon 2 Jan 15:04 MST")}
	if d.Lead.Name == "" {
		d.Lead.Name = lead.Email
	}
	_ = json.Unmarshal(lead.Breakdown, &d.Breakdown)
	if (kind == "handoff" || kind == "reminder" || kind == "escalation-copy") && a.Keys != nil {
		ttl := a.LinkTTL
		if ttl == 0 {
			ttl = 7 * 24 * time.Hour
		}
		id := uuid.MustParse(lead.ID)
		exp := time.Now().Add(ttl)
		d.AcceptURL = a.BaseURL + "/s/" + a.Keys.SignAction(track.Action{Kind: track.ActionAccept, LeadID: id, Handoff: h.ID, Rep: h.RepID, Expires: exp})
		d.RejectURL = a.BaseURL + "/s/" + a.Keys.SignAction(track.Action{Kind: track.ActionReject, LeadID: id, Handoff: h.ID, Rep: h.RepID, Expires: exp})
	}
	if a.Keys != nil {
		d.DeskURL = a.BaseURL + "/desk/" + a.Keys.SignAction(track.Action{Kind: track.ActionDesk, Rep: personID, Expires: time.Now().Add(DeskLinkTTL)})
	}
	var s, t, hb bytes.Buffer
	if err := noticeSubjects.Execute(&s, d); err != nil {
		return "", "", "", err
	}
	if err := noticeText.ExecuteTemplate(&t, "body", d); err != nil {
		return "", "", "", err
	}
	if err := noticeHTML.Execute(&hb, d); err != nil {
		return "", "", "", err
	}
	return strings.Join(strings.Fields(s.String()), " "), t.String(), hb.String(), nil
}

func (a *Sales) team() *sales.Team {
	if a.Live != nil {
		if t := a.Live.Current().Team; t != nil {
			return t
		}
	}
	return a.Team
}
