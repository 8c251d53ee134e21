package api_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tendhq/tend/internal/api"
	"github.com/tendhq/tend/internal/capture"
	"github.com/tendhq/tend/internal/dbtest"
	"github.com/tendhq/tend/internal/engage"
)

// serveWithEvents is the API with the events API on, over a fresh, migrated database.
func serveWithEvents(t *testing.T) *bundle {
	t.Helper()
	store := dbtest.Store(t)
	cat := loadCatalog(t)
	enr := &fakeEnroller{}
	srv := &api.Server{
		Capture: &capture.Service{Store: store, Catalog: cat, Enroller: enr},
		Engage:  &engage.Service{Store: store, Catalog: cat},
		Store:   store,
		APIKeys: []string{apiKey},
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	return &bundle{URL: hs.URL, Store: store, Enroller: enr}
}

// leadView is the part of GET /api/v1/leads/{id} these tests read.
type leadView struct {
	Stage        string   `json:"stage"`
	Segment      string   `json:"segment"`
	Interests    []string `json:"interests"`
	StageChanges []struct {
		From   string `json:"from"`
		To     string `json:"to"`
		Reason string `json:"reason"`
		Actor  string `json:"actor"`
	} `json:"stage_changes"`
}

func (b *bundle) lead(t *testing.T, id any) leadView {
	t.Helper()
	resp := do(t, http.MethodGet, b.URL+"/api/v1/leads/"+id.(string), nil)
	require.Equal(t, http.StatusOK, resp.Code, resp.Raw)
	var v leadView
	require.NoError(t, json.Unmarshal([]byte(resp.Raw), &v), resp.Raw)
	return v
}

// funnelLeads is how many leads the funnel report counts at stage lead.
func (b *bundle) funnelLeads(t *testing.T) float64 {
	t.Helper()
	resp := do(t, http.MethodGet, b.URL+"/api/v1/reports/funnel", nil)
	require.Equal(t, http.StatusOK, resp.Code, resp.Raw)
	overall := resp.Body["overall"].(map[string]any)
	for _, st := range overall["stages"].([]any) {
		if s := st.(map[string]any); s["stage"] == "lead" {
			return s["leads"].(float64)
		}
	}
	t.Fatalf("the funnel has no lead stage: %s", resp.Raw)
	return 0
}

func TestRecaptureWithoutInterestsKeepsSegment(t *testing.T) {
	t.Parallel()
	b := setup(t)

	resp := b.postJSON(t, map[string]any{"email": "ada@example.com", "source": "ebook_download", "interests": []string{"security"}})
	require.Equal(t, http.StatusCreated, resp.Code, resp.Raw)
	require.Equal(t, "security", resp.Body["segment"])
	id := resp.Body["id"]

	// The same person signs up to the newsletter, or comes again through an import, with no interest.
	for _, source := range []string{"newsletter_signup", "import", "webinar_registration"} {
		resp = b.postJSON(t, map[string]any{"email": "ada@example.com", "source": source})
		require.Equal(t, http.StatusOK, resp.Code, resp.Raw)
		assert.Equal(t, "security", resp.Body["segment"], "a %s capture without interests keeps the lead's segment", source)
	}
	assert.Equal(t, "security", b.lead(t, id).Segment)
	for i, c := range b.Enroller.Calls() {
		assert.Equal(t, "security", c.Capture.Segment, "enrolment %d tells the workflow the lead's segment", i)
	}

	// An interest no segment claims changes nothing either.
	resp = b.postJSON(t, map[string]any{"email": "ada@example.com", "source": "api", "interests": []string{"gardening"}})
	require.Equal(t, http.StatusOK, resp.Code, resp.Raw)
	assert.Equal(t, "security", resp.Body["segment"])
	assert.Equal(t, []any{"gardening", "security"}, resp.Body["interests"])
}

func TestRecaptureWithInterestsFollowsTheNewInterest(t *testing.T) {
	t.Parallel()
	b := setup(t)
	// examples/sequences.yaml lists analytics, automation, security, then general (the default).

	// A lead of the default segment that declares an interest moves to its segment.
	resp := b.postJSON(t, map[string]any{"email": "bo@example.com", "source": "newsletter_signup"})
	require.Equal(t, "general", resp.Body["segment"])
	resp = b.postJSON(t, map[string]any{"email": "bo@example.com", "source": "ebook_download", "interests": []string{"sso"}})
	require.Equal(t, http.StatusOK, resp.Code, resp.Raw)
	assert.Equal(t, "security", resp.Body["segment"])

	// A capture for another segment's interest moves the lead on (its series follows the current
	// one); the earlier interests stay with the lead.
	resp = b.postJSON(t, map[string]any{"email": "bo@example.com", "source": "webinar_registration", "interests": []string{"reporting"}})
	require.Equal(t, http.StatusOK, resp.Code, resp.Raw)
	assert.Equal(t, "analytics", resp.Body["segment"])
	resp = b.postJSON(t, map[string]any{"email": "bo@example.com", "source": "api", "interests": []string{"workflows", "gardening"}})
	require.Equal(t, http.StatusOK, resp.Code, resp.Raw)
	assert.Equal(t, "automation", resp.Body["segment"])
	assert.Equal(t, []any{"gardening", "reporting", "sso", "workflows"}, resp.Body["interests"])

	// Then one with no interest keeps it.
	resp = b.postJSON(t, map[string]any{"email": "bo@example.com", "source": "newsletter_signup"})
	require.Equal(t, http.StatusOK, resp.Code, resp.Raw)
	assert.Equal(t, "automation", resp.Body["segment"])
	calls := b.Enroller.Calls()
	assert.Equal(t, "automation", calls[len(calls)-1].Capture.Segment)
}

func TestSubscriberPromotionIsAStageChange(t *testing.T) {
	t.Parallel()
	b := serveWithEvents(t)

	resp := b.postJSON(t, map[string]any{"email": "sub@example.com", "source": "newsletter_signup"})
	require.Equal(t, http.StatusCreated, resp.Code, resp.Raw)
	id := resp.Body["id"]
	require.Equal(t, "subscriber", resp.Body["stage"])
	assert.Empty(t, b.lead(t, id).StageChanges, "a new subscriber has no stage history yet")
	assert.Equal(t, 0.0, b.funnelLeads(t))

	resp = b.postJSON(t, map[string]any{"email": "sub@example.com", "source": "ebook_download"})
	require.Equal(t, http.StatusOK, resp.Code, resp.Raw)
	assert.Equal(t, "lead", resp.Body["stage"])

	l := b.lead(t, id)
	require.Len(t, l.StageChanges, 1, "the promotion is in the lead's history")
	assert.Equal(t, "subscriber", l.StageChanges[0].From)
	assert.Equal(t, "lead", l.StageChanges[0].To)
	assert.Contains(t, l.StageChanges[0].Reason, "ebook_download")
	assert.Equal(t, 1.0, b.funnelLeads(t))

	resp = b.postJSON(t, map[string]any{"email": "sub@example.com", "source": "quote_request"})
	require.Equal(t, http.StatusOK, resp.Code, resp.Raw)
	assert.Len(t, b.lead(t, id).StageChanges, 1, "a lead that stays a lead changes no stage")
}

func TestContentDownloadEventPromotesSubscriber(t *testing.T) {
	t.Parallel()
	b := serveWithEvents(t)

	resp := b.postJSON(t, map[string]any{"email": "reader@example.com", "source": "newsletter_signup"})
	require.Equal(t, http.StatusCreated, resp.Code, resp.Raw)
	id := resp.Body["id"].(string)
	require.Equal(t, "subscriber", resp.Body["stage"])

	post := func(body string) response {
		t.Helper()
		r := do(t, http.MethodPost, b.URL+"/api/v1/events", strings.NewReader(body))
		require.Equal(t, http.StatusOK, r.Code, r.Raw)
		return r
	}
	// Reading the blog is not premium content: still a subscriber.
	post(`{"events": [{"id": "view-1", "email": "reader@example.com", "type": "page_view", "url": "https://acme.test/blog/1"}]}`)
	assert.Equal(t, "subscriber", b.lead(t, id).Stage)

	// Downloading the e-book is.
	post(`{"events": [{"id": "ebook-1", "lead_id": "` + id + `", "type": "content_download", "tags": ["analytics"]}]}`)
	l := b.lead(t, id)
	assert.Equal(t, "lead", l.Stage, "an e-book download promotes a subscriber to lead")
	require.Len(t, l.StageChanges, 1, "the promotion is in the lead's history (and so in the CRM webhook's feed)")
	assert.Equal(t, "subscriber", l.StageChanges[0].From)
	assert.Equal(t, "lead", l.StageChanges[0].To)
	assert.Contains(t, l.StageChanges[0].Reason, "content_download")
	assert.Equal(t, 1.0, b.funnelLeads(t), "the promoted lead is in the funnel")

	// A repeat of the event, and a second download, change no stage again.
	post(`{"events": [{"id": "ebook-1", "lead_id": "` + id + `", "type": "content_download"}, {"id": "ebook-2", "lead_id": "` + id + `", "type": "content_download"}]}`)
	assert.Len(t, b.lead(t, id).StageChanges, 1)
}
