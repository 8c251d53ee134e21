package engage

import (
	"context"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/tendhq/tend/internal/capture"
	"github.com/tendhq/tend/internal/db"
)

// SiteEventTypes are the event types the events API accepts; opens, clicks, unsubscribes and
// bounces come only from tend's own tracking.
var SiteEventTypes = []string{"page_view", "content_download", "webinar_registration", "webinar_attended",
	"demo_request", "quote_request", "callback_request", "form_submit", "reply", "newsletter_signup"}

// MaxBatch is the most events one request may carry.
const MaxBatch = 500

// EventInput is one event as sent to the events API.
type EventInput struct {
	ID         string    `json:"id"`
	LeadID     string    `json:"lead_id,omitempty"`
	Email      string    `json:"email,omitempty"`
	Type       string    `json:"type"`
	URL        string    `json:"url,omitempty"`
	Tags       []string  `json:"tags,omitempty"`
	OccurredAt time.Time `json:"occurred_at,omitzero"`
}

// EventResult says what happened to one event.
type EventResult struct {
	ID     string `json:"id"`
	Status string `json:"status"` // accepted, duplicate, unknown_lead
	LeadID string `json:"lead_id,omitempty"`
}

var (
	clientIDRe = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)
	tagRe      = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)
)

// RecordEvents validates a batch and stores it in one transaction: either the whole batch is
// valid or nothing is stored (*capture.ValidationError naming events[i].field). Events are
// idempotent by their client id: a repeat is reported as duplicate and changes nothing. Events
// for an address tend does not know are reported as unknown_lead.
func (s *Service) RecordEvents(ctx context.Context, in []EventInput, now time.Time) ([]EventResult, error) {
	ve := &capture.ValidationError{}
	add := func(i int, field, format string, args ...any) {
		ve.Fields = append(ve.Fields, capture.FieldError{Field: fmt.Sprintf("events[%d].%s", i, field), Message: fmt.Sprintf(format, args...)})
	}
	if len(in) == 0 {
		ve.Fields = append(ve.Fields, capture.FieldError{Field: "events", Message: "must hold at least one event"})
		return nil, ve
	}
	if len(in) > MaxBatch {
		ve.Fields = append(ve.Fields, capture.FieldError{Field: "events", Message: fmt.Sprintf("has %d events; at most %d per request", len(in), MaxBatch)})
		return nil, ve
	}
	seen := map[string]int{}
	for i := range in {
		e := &in[i]
		if !clientIDRe.MatchString(e.ID) {
			add(i, "id", "is required: your own unique id for this event (1-128 characters of letters, digits, . _ : -), used to ignore repeats")
		} else if j, dup := seen[e.ID]; dup {
			add(i, "id", "%q repeats events[%d].id", e.ID, j)
		} else {
			seen[e.ID] = i
		}
		switch {
		case e.LeadID != "" && e.Email != "":
			add(i, "lead_id", "give lead_id or email, not both")
		case e.LeadID != "":
			if _, err := uuid.Parse(e.LeadID); err != nil {
				add(i, "lead_id", "%q is not a lead id", e.LeadID)
			}
		case e.Email != "":
			n, err := capture.NormalizeEmail(e.Email)
			if err != nil {
				add(i, "email", "%s", err.Error())
			}
			e.Email = n
		default:
			add(i, "lead_id", "lead_id or email is required")
		}
		if !slices.Contains(SiteEventTypes, e.Type) {
			add(i, "type", "%q is not an event type (one of: %s)", e.Type, strings.Join(SiteEventTypes, ", "))
		}
		if e.URL != "" {
			u, err := url.Parse(e.URL)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || len(e.URL) > 2000 {
				add(i, "url", "must be an absolute http(s) URL of at most 2000 characters")
			}
		}
		if len(e.Tags) > 20 {
			add(i, "tags", "has %d tags; at most 20", len(e.Tags))
		}
		for j, t := range e.Tags {
			t = strings.ToLower(strings.TrimSpace(t))
			if !tagRe.MatchString(t) {
				add(i, fmt.Sprintf("tags[%d]", j), "%q must be 1-64 characters of a-z, 0-9, _ or -", e.Tags[j])
			}
			e.Tags[j] = t
		}
		if e.OccurredAt.IsZero() {
			e.OccurredAt = now
		} else if e.OccurredAt.After(now.Add(5 * time.Minute)) {
			add(i, "occurred_at", "is in the future")
		} else if e.OccurredAt.Before(now.AddDate(-1, 0, 0)) {
			add(i, "occurred_at", "is more than a year ago")
		}
	}
	if len(ve.Fields) > 0 {
		return nil, ve
	}

	results := make([]EventResult, len(in))
	var rows []db.Event
	var rowIdx []int
	for i, e := range in {
		results[i] = EventResult{ID: e.ID}
		leadID := e.LeadID
		if e.Email != "" {
			id, err := s.Store.LeadIDByEmail(ctx, e.Email)
			if err != nil && err != db.ErrNotFound {
				return nil, err
			}
			leadID = id
		} else if _, err := s.Store.Lead(ctx, leadID); err == db.ErrNotFound {
			leadID = ""
		} else if err != nil {
			return nil, err
		}
		if leadID == "" {
			results[i].Status = "unknown_lead"
			continue
		}
		results[i].LeadID = leadID
		rows = append(rows, db.Event{LeadID: leadID, Type: e.Type, Tags: e.Tags, URL: e.URL, ClientEventID: e.ID, OccurredAt: e.OccurredAt})
		rowIdx = append(rowIdx, i)
	}
	inserted, err := s.Store.InsertEvents(ctx, rows)
	if err != nil {
		return nil, err
	}
	var notify []string
	for k, ok := range inserted {
		i := rowIdx[k]
		if ok {
			results[i].Status = "accepted"
			s.Metrics.Tracked(in[i].Type, false)
			if !slices.Contains(notify, results[i].LeadID) {
				notify = append(notify, results[i].LeadID)
			}
		} else {
			results[i].Status = "duplicate"
		}
	}
	for _, id := range notify {
		s.notify(id)
	}
	return results, nil
}
