package engage_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tendhq/tend/internal/engage"
	"github.com/tendhq/tend/internal/metrics"
)

// Stored clicks are counted by who made them: a person's click and a scanner's HEAD request are
// told apart on the scrape, as the dashboard's human engagement needs.
func TestClicksAreCountedAsHumanOrMachine(t *testing.T) {
	svc, claim, token := claimed(t)
	ctx := context.Background()
	require.NoError(t, claim.MarkSent(ctx, "Welcome", 250))
	set := metrics.New()
	svc.Metrics = set
	_, err := svc.Click(ctx, engage.Hit{Token: token, Method: "GET", UserAgent: "Mozilla/5.0 (Macintosh)", At: time.Now().Add(time.Minute)})
	require.NoError(t, err)
	_, err = svc.Click(ctx, engage.Hit{Token: token, Method: "HEAD", UserAgent: "Barracuda", At: time.Now().Add(2 * time.Minute)})
	require.NoError(t, err)
	rec := httptest.NewRecorder()
	set.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	assert.Contains(t, rec.Body.String(), `tend_tracking_events_total{kind="click",origin="human"} 1`)
	assert.Contains(t, rec.Body.String(), `tend_tracking_events_total{kind="click",origin="machine"} 1`)
}

// The coalescer's length is the leads waiting for a signal, each once however many events it had.
func TestCoalescerLenCountsLeadsWaiting(t *testing.T) {
	c := &engage.Coalescer{Interval: time.Hour, Send: func(context.Context, string) error { return nil }}
	c.Notify("a")
	c.Notify("a")
	c.Notify("b")
	assert.Equal(t, 2, c.Len())
	c.Flush(context.Background())
	assert.Zero(t, c.Len())
}
