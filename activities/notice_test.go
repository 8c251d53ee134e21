package activities

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tendhq/tend/internal/db"
	"github.com/tendhq/tend/internal/mail"
	"github.com/tendhq/tend/internal/pgtest"
	"github.com/tendhq/tend/internal/sales"
)

type recordingMailer struct {
	mu   sync.Mutex
	sent []mail.Message
}

func (m *recordingMailer) Send(_ context.Context, msg mail.Message) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sent = append(m.sent, msg)
	return nil
}

// A notice to sales holds one database connection at a time: with a pool of one it still goes out.
// (It used to render inside its claim's transaction with a second connection, so a few notices at
// once took the whole pool and waited for each other — and for every other activity — forever.)
func TestNoticeNeedsOneConnection(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	url := pgtest.NewDB(t)
	sep := "?"
	if strings.Contains(url, "?") {
		sep = "&"
	}
	store, err := db.Open(ctx, url+sep+"pool_max_conns=1")
	require.NoError(t, err)
	t.Cleanup(store.Close)
	_, err = store.Migrate(ctx)
	require.NoError(t, err)
	c, err := store.RecordCapture(ctx, db.Capture{Email: "ada@example.com", Name: "Ada", Source: "api", Segment: "general", Stage: "lead"})
	require.NoError(t, err)
	m := &recordingMailer{}
	a := &Sales{Store: store, Team: &sales.Team{}, Mailer: m, From: From{Name: "tend", Address: "tend@acme.test", Domain: "acme.test"}}
	err = a.notice(ctx, "handoff:test", c.Lead, "handoff", "rep-x", "Rep X", "rep@acme.test", db.Handoff{ID: 1, LeadID: c.Lead.ID, Reason: "test"}, 0)
	require.NoError(t, err, "the notice went out with a single connection")
	require.Len(t, m.sent, 1)
	// Sent once: a second call (a retried activity) finds it sent.
	require.NoError(t, a.notice(ctx, "handoff:test", c.Lead, "handoff", "rep-x", "Rep X", "rep@acme.test", db.Handoff{ID: 1, LeadID: c.Lead.ID, Reason: "test"}, 0))
	assert.Len(t, m.sent, 1)
}
