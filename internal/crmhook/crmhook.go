// Package crmhook posts every lifecycle stage change — who moved the lead, from where to where, and
// why — to a CRM's webhook, signed with HMAC-SHA256, in order and at least once: the position in
// the stream is kept in Postgres and advances only after the CRM answered 2xx.
package crmhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/tendhq/tend/internal/db"
	"github.com/tendhq/tend/internal/every"
)

// Stream is the cursor name of the CRM webhook.
const Stream = "crm"

// Deliverer sends stage changes to URL.
type Deliverer struct {
	Store  *db.Store
	URL    string
	Secret string
	Client *http.Client
	Log    *slog.Logger
}

// Sign returns the X-Tend-Signature value for a body: sha256=<hex HMAC-SHA256 with secret>.
func Sign(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Deliver posts pending stage changes one by one, in order, and stops at the first failure (the
// next call retries it). It returns how many were delivered.
func (d *Deliverer) Deliver(ctx context.Context) (int, error) {
	client := d.Client
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	events, err := d.Store.StageChangesAfter(ctx, Stream, 100)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, e := range events {
		body, err := json.Marshal(map[string]any{"type": "stage_changed", "stage_change": e})
		if err != nil {
			return n, err
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.URL, bytes.NewReader(body))
		if err != nil {
			return n, err
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Tend-Signature", Sign(d.Secret, body))
		req.Header.Set("X-Tend-Delivery", strconv.FormatInt(e.ID, 10))
		resp, err := client.Do(req)
		if err != nil {
			return n, fmt.Errorf("post stage change %d: %w", e.ID, err)
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			return n, fmt.Errorf("post stage change %d: the CRM answered %s", e.ID, resp.Status)
		}
		if err := d.Store.AdvanceCursor(ctx, Stream, e.ID); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// Run delivers every interval until ctx ends.
func (d *Deliverer) Run(ctx context.Context, interval time.Duration) {
	every.Tick(ctx, interval, func(ctx context.Context) {
		if _, err := d.Deliver(ctx); err != nil && ctx.Err() == nil && d.Log != nil {
			d.Log.Warn("CRM webhook; will retry", "err", err)
		}
	})
}
