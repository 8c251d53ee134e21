// Package engage records what leads do — email opens and clicks through signed tracking links,
// unsubscribes and preference changes, site events from the events API — and tells each lead's
// workflow, coalescing a burst of events into one notification per lead.
package engage

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/tendhq/tend/internal/content"
	"github.com/tendhq/tend/internal/db"
	"github.com/tendhq/tend/internal/metrics"
	"github.com/tendhq/tend/internal/sequence"
	"github.com/tendhq/tend/internal/track"
)

// ErrInvalidLink is returned for any token that does not verify or names nothing: forged,
// truncated, signed with an unknown key, of the wrong kind, or for a send that was never sent.
// Callers answer all of them alike.
var ErrInvalidLink = errors.New("invalid or unknown link")

// Notifier is told which leads have new events.
type Notifier interface {
	Notify(leadID string)
}

// Service records engagement.
type Service struct {
	Store      *db.Store
	Keys       *track.Keys
	Heuristics track.Heuristics
	Catalog    *sequence.Catalog
	Notifier   Notifier
	Log        *slog.Logger
	// Live, when set, is the published content: its catalog replaces Catalog.
	Live *content.Live
	// Metrics, when set, counts the events stored.
	Metrics *metrics.Set

	// How opens are recorded (see QueueOpen); zero values take the defaults.
	OpenRecorders int           // recorders writing at once; default one per core, at most 4 and half the pool
	OpenBatch     int           // most opens one write stores; default 1,000
	OpenQueue     int           // opens waiting to be stored before the pixel drops them; default 50,000
	OpenDrain     time.Duration // how long a stop waits for the queued opens; default 10s
	LossLogEvery  time.Duration // how often lost opens are logged; default 10s

	// How clicks are stored (see Click); zero values take the defaults.
	ClickWriters int // batches of clicks written at once; default one per core, at most 4 and half the pool
	ClickBatch   int // most clicks one write stores; default 500

	opens  openRecorder
	clicks clickGroup
}

// Hit is one request to a tracking URL.
type Hit struct {
	Token     string
	Method    string
	UserAgent string
	Purpose   string
	At        time.Time
}

func (s *Service) log() *slog.Logger {
	if s.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Log
}

func (s *Service) verify(token string, kind track.Kind) (track.Token, string, error) {
	t, err := s.Keys.Verify(token)
	if err != nil || t.Kind != kind {
		return track.Token{}, "", ErrInvalidLink
	}
	return t, uuid.UUID(t.SendID).String(), nil
}

// RecordWait is how long a request with a valid token waits for its send to be recorded. A send's
// row and links are committed just after the SMTP server accepts the message, so a link scanner
// that follows every link on delivery can arrive a few milliseconds before them.
var RecordWait = 3 * time.Second

// sent verifies a token of the kind and returns the message it names; a send that does not exist
// or was never sent is ErrInvalidLink, like a forged token. Only a token tend signed can make it
// wait (up to RecordWait) for a send still being recorded, so a forged one is answered at once.
func (s *Service) sent(ctx context.Context, token string, kind track.Kind) (track.Token, db.SentMessage, error) {
	t, sendID, err := s.verify(token, kind)
	if err != nil {
		return t, db.SentMessage{}, err
	}
	deadline := time.Now().Add(RecordWait)
	for {
		sent, err := s.Store.SentMessage(ctx, sendID)
		if !errors.Is(err, db.ErrNotFound) {
			return t, sent, err
		}
		if time.Now().After(deadline) {
			return t, sent, ErrInvalidLink
		}
		select {
		case <-ctx.Done():
			return t, sent, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Unsubscribe unsubscribes the lead the token was sent to, at once; repeats are harmless. how
// says through which door ("one-click", "page").
func (s *Service) Unsubscribe(ctx context.Context, token, how string) error {
	_, sent, err := s.sent(ctx, token, track.KindUnsubscribe)
	if err != nil {
		return err
	}
	changed, err := s.Store.Unsubscribe(ctx, sent.LeadID, sent.SendID, how)
	if err != nil {
		return fmt.Errorf("unsubscribe lead %s: %w", sent.LeadID, err)
	}
	if changed {
		s.Metrics.Tracked("unsubscribe", false)
		s.log().Info("lead unsubscribed", "lead_id", sent.LeadID, "how", how)
		s.notify(sent.LeadID)
	}
	return nil
}

// Preferences is what the preference centre shows.
type Preferences struct {
	Interests    []string // every interest tend mails about, from the sequences
	OptedOut     []string
	Unsubscribed bool
}

// Preferences returns the preference centre's view for the token's lead.
func (s *Service) Preferences(ctx context.Context, token string) (Preferences, error) {
	_, sent, err := s.sent(ctx, token, track.KindUnsubscribe)
	if err != nil {
		return Preferences{}, err
	}
	lead, err := s.Store.Lead(ctx, sent.LeadID)
	if err != nil {
		return Preferences{}, err
	}
	return Preferences{Interests: s.interests(), OptedOut: lead.OptedOutInterests, Unsubscribed: lead.UnsubscribedAt != nil}, nil
}

func (s *Service) catalog() *sequence.Catalog {
	if s.Live != nil {
		return s.Live.Current().Catalog
	}
	return s.Catalog
}

func (s *Service) interests() []string {
	var out []string
	cat := s.catalog()
	for _, seg := range cat.Segments {
		if seg.ID == cat.DefaultSegment {
			continue
		}
		out = append(out, seg.Interests...)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// SetPreferences records the interests the person opts out of; the lead moves to the segment
// its remaining interests map to.
func (s *Service) SetPreferences(ctx context.Context, token string, optOut []string) error {
	_, sent, err := s.sent(ctx, token, track.KindUnsubscribe)
	if err != nil {
		return err
	}
	known := s.interests()
	var clean []string
	for _, in := range optOut {
		in = strings.ToLower(strings.TrimSpace(in))
		if slices.Contains(known, in) && !slices.Contains(clean, in) {
			clean = append(clean, in)
		}
	}
	lead, err := s.Store.Lead(ctx, sent.LeadID)
	if err != nil {
		return err
	}
	var remaining []string
	for _, in := range lead.Interests {
		if !slices.Contains(clean, in) {
			remaining = append(remaining, in)
		}
	}
	seg := s.catalog().SegmentFor(remaining)
	if err := s.Store.SetOptedOutInterests(ctx, sent.LeadID, clean, seg.ID); err != nil {
		return err
	}
	s.notify(sent.LeadID)
	return nil
}

func (s *Service) notify(leadID string) {
	if s.Notifier != nil {
		s.Notifier.Notify(leadID)
	}
}
