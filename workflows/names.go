// Package workflows holds tend's deterministic Temporal code: one long-lived workflow per lead that
// runs the nurture sequence of the lead's segment with durable timers inside the send window.
package workflows

import "time"

// TaskQueue is the task queue tend's workers poll.
const TaskQueue = "tend"

// Signal, query and workflow names.
const (
	// SignalCapture tells a lead's workflow that the lead was captured (again).
	SignalCapture = "capture"
	// SignalEngaged tells a lead's workflow that new events were stored for the lead; one signal
	// stands for any number of events (the server coalesces them per lead).
	SignalEngaged = "engaged"
	// SignalContent tells a lead's workflow that the content changed: a new version of the
	// sequences was published (ContentChange.Version), or its paused step resumed
	// (ContentChange.Resume).
	SignalContent = "content"
	// QueryState returns the workflow's LeadState.
	QueryState = "state"
	// LeadWorkflowName is the registered name of the lead workflow.
	LeadWorkflowName = "Lead"
)

// LeadWorkflowID is the workflow ID of a lead's workflow. It holds the lead's UUID, never an email.
func LeadWorkflowID(leadID string) string { return "lead-" + leadID }

// ContentChange is the payload of SignalContent.
type ContentChange struct {
	// Version, when set, is a published version of the sequences the lead follows: its sequence
	// is read again from it and its position mapped by sequence.Position.
	Version int `json:"version,omitempty"`
	// Resume says that the paused step the lead is held at was resumed; its send goes out at
	// NotBefore, the lead's slot in the resume's ramp.
	Resume    bool      `json:"resume,omitempty"`
	NotBefore time.Time `json:"not_before,omitzero"`
}
