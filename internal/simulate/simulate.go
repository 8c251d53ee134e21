// Package simulate runs the real lead workflow for one imaginary lead under Temporal's
// time-skipping test environment, with activities that touch nothing, and reports when each email
// would go out. Marketers use it (tend sequences simulate) to see a sequence's calendar — waits,
// send windows, quiet hours, the frequency cap, behaviour branches, re-engagement and sunset —
// before a real lead meets it. Because it is the workflow itself, the answer cannot drift from
// what production does.
package simulate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/stretchr/testify/mock"
	tlog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/tendhq/tend/activities"
	"github.com/tendhq/tend/internal/lifecycle"
	"github.com/tendhq/tend/internal/sequence"
	"github.com/tendhq/tend/workflows"
)

// Lead describes the imaginary lead and how it behaves.
type Lead struct {
	// Segment is the segment the lead is captured into.
	Segment string
	// TimeZone is the lead's own zone; empty uses the send window's.
	TimeZone string
	// Start is when the lead is captured.
	Start time.Time
	// Clicks lists step ids whose email the lead clicks, ClickDelay after it arrives. Each click
	// is engagement: it resets the inactivity clock and feeds behaviour branches.
	Clicks     []string
	ClickDelay time.Duration
	// For is how long to follow the lead.
	For time.Duration
	// ID is the lead's id, on which its A/B variants and holdout depend; "" is DefaultLeadID.
	ID string
	// Variants chooses the variant the lead receives at some steps instead of the one its id
	// gives it. A step without a choice gets the lead's own.
	Variants []Choice
	// HeldOut puts the lead in the holdout of its segment's sequence, whatever the sequence's
	// holdout share and the lead's id.
	HeldOut bool
}

// DefaultLeadID is the simulated lead's id when Lead.ID is empty.
const DefaultLeadID = "00000000-0000-4000-8000-000000000000"

// Choice is a variant chosen for one step.
type Choice struct {
	// Step is a step id, or SEQUENCE/STEP when several sequences have a step of that id.
	Step string
	// Variant is the id of one of the step's variants.
	Variant string
}

// Result is what happened to the lead.
type Result struct {
	Segment string
	// LeadID is the simulated lead's id.
	LeadID string
	// Records are the workflow's step records (sent, skipped, …) in order, with their times and
	// the email each step carried.
	Records []Record
	// HeldOut lists the sequences, of the lead's segment's and the re-engagement series, whose
	// holdout the lead is in: it receives none of their emails.
	HeldOut []string
	// Status, Mode and ExitReason are the lead's state at the end.
	Status, Mode, ExitReason string
}

// OutcomeHeldOut is the outcome of a step of a sequence whose holdout the lead is in: the step
// fell due and nothing was mailed, as a held_out send row records in production.
const OutcomeHeldOut = "held_out"

// Record is one step record with the email it carried.
type Record struct {
	workflows.StepRecord
	// Variant is the A/B variant of the step the lead received ("" for a step without variants).
	Variant string
	// Template and Subject are the email's (the variant's, for a step with variants); Subject is
	// the text/template as written, before the lead's data fill it in.
	Template, Subject string
}

// ErrNoSegment is returned for a segment the catalog does not have.
var ErrNoSegment = errors.New("no such segment")

// ErrVariantChoice is returned for a Choice that names no step, a step of several sequences, a
// step without variants or a variant the step does not have.
var ErrVariantChoice = errors.New("variant choice")

// Run follows the lead through the catalog's sequences.
func Run(cat *sequence.Catalog, lead Lead) (Result, error) {
	if _, ok := cat.Segment(lead.Segment); !ok {
		return Result{}, fmt.Errorf("%w %q", ErrNoSegment, lead.Segment)
	}
	if lead.TimeZone != "" {
		if _, err := time.LoadLocation(lead.TimeZone); err != nil {
			return Result{}, fmt.Errorf("time zone %q: %w", lead.TimeZone, err)
		}
	}
	if lead.For <= 0 {
		return Result{}, errors.New("the simulated period must be positive")
	}
	leadID := lead.ID
	if leadID == "" {
		leadID = DefaultLeadID
	}
	cat, err := assign(cat, lead, leadID)
	if err != nil {
		return Result{}, err
	}
	heldOut := map[string]bool{}
	var heldOutIDs []string
	seg, _ := cat.Segment(lead.Segment)
	for _, q := range []*sequence.Sequence{&seg.Sequence, reengagement(cat)} {
		if q != nil && q.HeldOut(leadID) && !heldOut[q.ID] {
			heldOut[q.ID] = true
			heldOutIDs = append(heldOutIDs, q.ID)
		}
	}
	var s testsuite.WorkflowTestSuite
	s.SetLogger(tlog.NewStructuredLogger(slog.New(slog.DiscardHandler)))
	env := s.NewTestWorkflowEnvironment()
	env.RegisterWorkflow(workflows.Lead)
	env.RegisterActivity(&activities.Leads{})
	env.RegisterActivity(&activities.Email{})
	env.SetStartTime(lead.Start)

	var leads *activities.Leads
	var email *activities.Email
	var clicked []string
	var lastClick time.Time
	mailed := map[string]activities.SendInput{}
	env.OnActivity(leads.Plan, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.PlanInput) (activities.Plan, error) {
			seg := lead.Segment
			if in.Segment != "" {
				seg = in.Segment
			}
			return activities.PlanFor(cat, seg, lifecycle.Lead, lead.TimeZone), nil
		})
	env.OnActivity(leads.Rescore, mock.Anything, mock.Anything).Return(
		func(context.Context, activities.RescoreInput) (activities.RescoreResult, error) {
			return activities.RescoreResult{Stage: lifecycle.Lead, ClickedSends: slices.Clone(clicked), LastEngagement: lastClick}, nil
		})
	env.OnActivity(email.SendStep, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.SendInput) (activities.SendResult, error) {
			sendID := in.SequenceID + "/" + in.StepID
			mailed[sendID] = in
			// A held-out lead walks the sequence's calendar, so that its goal is measured over the
			// same time, but gets nothing to click.
			if slices.Contains(lead.Clicks, in.StepID) && !heldOut[in.SequenceID] {
				env.RegisterDelayedCallback(func() {
					clicked = append(clicked, sendID)
					lastClick = env.Now()
					env.SignalWorkflow(workflows.SignalEngaged, workflows.Engaged{Events: 1})
				}, lead.ClickDelay)
			}
			status := activities.StatusSent
			if in.Holdout {
				status = activities.StatusHeldOut // as SendStep records it: nothing mailed
			}
			return activities.SendResult{Status: status, SendID: sendID, MessageID: "<" + sendID + "@simulate>"}, nil
		})

	var st workflows.LeadState
	var queryErr error
	env.RegisterDelayedCallback(func() {
		v, err := env.QueryWorkflow(workflows.QueryState)
		if err == nil {
			err = v.Get(&st)
		}
		queryErr = err
		env.CancelWorkflow()
	}, lead.For)
	env.ExecuteWorkflow(workflows.Lead, workflows.LeadInput{LeadID: leadID})
	if queryErr != nil {
		return Result{}, fmt.Errorf("read the workflow's state: %w", queryErr)
	}
	if err := env.GetWorkflowError(); err != nil {
		var canceled *temporal.CanceledError
		if !errors.As(err, &canceled) {
			return Result{}, fmt.Errorf("the workflow failed: %w", err)
		}
	}
	if st.LeadID == "" {
		return Result{}, errors.New("the workflow ended before the simulated period did")
	}
	res := Result{Segment: st.Segment, LeadID: leadID, HeldOut: heldOutIDs, Status: st.Status, Mode: st.Mode, ExitReason: st.ExitReason}
	for _, h := range st.History {
		r := Record{StepRecord: h}
		if q, ok := cat.Sequence(h.SequenceID); ok {
			if i := slices.IndexFunc(q.Steps, func(s sequence.Step) bool { return s.ID == h.StepID }); i >= 0 {
				step := q.Steps[i]
				r.Template, r.Subject = step.Template, step.Subject
				if len(step.Variants) == 1 { // assign left every variant step with the lead's one
					r.Variant = step.Variants[0].ID
				}
			}
		}
		if in, ok := mailed[h.SequenceID+"/"+h.StepID]; ok {
			r.Template, r.Subject = in.Template, in.Subject
		}
		if h.Outcome == activities.StatusHeldOut {
			r.Detail = "holdout: nothing mailed"
		}
		res.Records = append(res.Records, r)
	}
	return res, nil
}

// reengagement is the catalog's re-engagement sequence, nil when it has none.
func reengagement(cat *sequence.Catalog) *sequence.Sequence {
	if cat.Reengagement == nil {
		return nil
	}
	return &cat.Reengagement.Sequence
}

// assign returns a copy of the catalog in which every step with variants has one left, the one
// the lead receives: its choice in lead.Variants, else the one its id gives it. The workflow
// then sends that variant whichever way it reads a step. With lead.HeldOut, the lead's segment's
// sequence holds out every lead. cat itself is not changed.
func assign(cat *sequence.Catalog, lead Lead, leadID string) (*sequence.Catalog, error) {
	c := *cat
	c.Segments = slices.Clone(cat.Segments)
	seqs := make([]*sequence.Sequence, 0, len(c.Segments)+1)
	for i := range c.Segments {
		seqs = append(seqs, &c.Segments[i].Sequence)
	}
	if cat.Reengagement != nil {
		re := *cat.Reengagement
		c.Reengagement = &re
		seqs = append(seqs, &re.Sequence)
	}
	for _, q := range seqs {
		q.Steps = slices.Clone(q.Steps)
	}

	chosen, err := resolveChoices(seqs, lead.Variants)
	if err != nil {
		return nil, err
	}
	segSeq := ""
	if seg, ok := cat.Segment(lead.Segment); ok {
		segSeq = seg.Sequence.ID
	}
	for _, q := range seqs {
		if lead.HeldOut && q.ID == segSeq {
			q.Holdout = 1
		}
		for i := range q.Steps {
			st := &q.Steps[i]
			if len(st.Variants) == 0 {
				continue
			}
			v := st.VariantFor(leadID, q.ID)
			if id, ok := chosen[q.ID+"/"+st.ID]; ok {
				v = st.Variants[slices.IndexFunc(st.Variants, func(v sequence.Variant) bool { return v.ID == id })]
			}
			// A variant may change only the subject or only the template.
			if v.Template == "" {
				v.Template = st.Template
			}
			if v.Subject == "" {
				v.Subject = st.Subject
			}
			v.Weight = 1
			st.Template, st.Subject, st.Variants = v.Template, v.Subject, []sequence.Variant{v}
		}
	}
	return &c, nil
}

// resolveChoices checks each choice against the sequences and returns the chosen variant ids by
// SEQUENCE/STEP. A step is found by its id alone when only one sequence has it.
func resolveChoices(seqs []*sequence.Sequence, choices []Choice) (map[string]string, error) {
	out := map[string]string{}
	for _, ch := range choices {
		seqID, stepID, qualified := strings.Cut(ch.Step, "/")
		if !qualified {
			seqID, stepID = "", ch.Step
		}
		var found []string
		var step sequence.Step
		for _, q := range seqs {
			if qualified && q.ID != seqID {
				continue
			}
			i := slices.IndexFunc(q.Steps, func(s sequence.Step) bool { return s.ID == stepID })
			if i < 0 || slices.Contains(found, q.ID+"/"+stepID) {
				continue // a sequence shared by segments is met once
			}
			found = append(found, q.ID+"/"+stepID)
			step = q.Steps[i]
		}
		switch {
		case len(found) == 0 && qualified:
			return nil, fmt.Errorf("%w %q: no step %q in a sequence %q", ErrVariantChoice, ch.Step+"="+ch.Variant, stepID, seqID)
		case len(found) == 0:
			return nil, fmt.Errorf("%w %q: no sequence has a step %q", ErrVariantChoice, ch.Step+"="+ch.Variant, stepID)
		case len(found) > 1:
			return nil, fmt.Errorf("%w %q: step %q is in %s; name one as SEQUENCE/STEP", ErrVariantChoice, ch.Step+"="+ch.Variant, stepID,
				strings.Join(found, " and "))
		}
		key := found[0]
		var ids []string
		for _, v := range step.Variants {
			ids = append(ids, v.ID)
		}
		switch {
		case len(ids) == 0:
			return nil, fmt.Errorf("%w %q: step %s has no variants", ErrVariantChoice, ch.Step+"="+ch.Variant, key)
		case !slices.Contains(ids, ch.Variant):
			return nil, fmt.Errorf("%w %q: step %s has no variant %q (it has %s)", ErrVariantChoice, ch.Step+"="+ch.Variant, key, ch.Variant,
				strings.Join(ids, ", "))
		}
		if prev, ok := out[key]; ok && prev != ch.Variant {
			return nil, fmt.Errorf("%w %q: step %s is already given variant %q", ErrVariantChoice, ch.Step+"="+ch.Variant, key, prev)
		}
		out[key] = ch.Variant
	}
	return out, nil
}
