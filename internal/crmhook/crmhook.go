// Package crmhook posts every lifecycle stage change — who moved the lead, from where to where, and
// why — to a CRM's webhook, signed with HMAC-SHA256, at least once and, per lead, in order. Each
// change has its own delivery state in Postgres (pending, failed, delivered); a deliverer claims
// one row at a time with FOR UPDATE SKIP LOCKED, so several servers can deliver at once without
// posting one change twice at the same time, and a change that commits late is still delivered.
package crmhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/tendhq/tend/internal/db"
	"github.com/tendhq/tend/internal/every"
)

// Deliverer sends stage changes to URL.
type Deliverer struct {
	Store  *db.Store
	URL    string
	Secret string
	Client *http.Client
	Log    *slog.Logger
	// Backoff is the wait before the second retry of a failed change (the first retry comes with
	// the next pass); each further failure doubles it, up to MaxBackoff. Defaults: 10 s and 15 min.
	Backoff    time.Duration
	MaxBackoff time.Duration
}

// Sign returns the X-Tend-Signature value for a body: sha256=<hex HMAC-SHA256 with secret>.
func Sign(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Deliver makes one pass: it posts every stage change that is due, one at a time, until none is
// left. A change the CRM refuses is recorded as failed and tried again after a backoff; the
// lead's later changes wait for it, other leads' go on. It returns how many were delivered, and
// an error when any failed.
func (d *Deliverer) Deliver(ctx context.Context) (int, error) {
	client := d.Client
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	var failed []int64
	var firstErr error
	n := 0
	for {
		claim, err := d.Store.ClaimStageChange(ctx, failed)
		if errors.Is(err, db.ErrNotFound) {
			break
		}
		if err != nil {
			return n, err
		}
		err = d.post(ctx, client, claim.Event)
		if err == nil {
			// The CRM has it: record that even when this server is stopping (it lost the lead, or
			// shuts down), or the next leader would deliver the change again.
			if err := claim.Delivered(context.WithoutCancel(ctx)); err != nil {
				return n, err
			}
			n++
			continue
		}
		if ctx.Err() != nil {
			claim.Release(ctx) // shutting down: not the CRM's failure
			return n, ctx.Err()
		}
		if err := claim.Failed(ctx, d.retryIn(claim.Attempts+1), err.Error()); err != nil {
			return n, err
		}
		failed = append(failed, claim.Event.ID)
		if firstErr == nil {
			firstErr = err
		}
	}
	if firstErr != nil {
		return n, fmt.Errorf("%d stage change(s) not delivered, to be retried: %w", len(failed), firstErr)
	}
	return n, nil
}

// retryIn is how long a change waits after its failures-th failed attempt.
func (d *Deliverer) retryIn(failures int) time.Duration {
	if failures <= 1 {
		return 0
	}
	base, max := d.Backoff, d.MaxBackoff
	if base <= 0 {
		base = 10 * time.Second
	}
	if max <= 0 {
		max = 15 * time.Minute
	}
	wait := base
	for i := 2; i < failures && wait < max; i++ {
		wait *= 2
	}
	return min(wait, max)
}

// post sends one stage change; any answer but 2xx is an error.
func (d *Deliverer) post(ctx context.Context, client *http.Client, e db.StageChangeEvent) error {
	body, err := json.Marshal(map[string]any{"type": "stage_changed", "stage_change": e})
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.URL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Tend-Signature", Sign(d.Secret, body))
	req.Header.Set("X-Tend-Delivery", strconv.FormatInt(e.ID, 10))
	resp, err := client.Do(req)
	if err != nil {
		// The URL may carry a token: the error that is logged and stored leaves it out.
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return fmt.Errorf("post stage change %d: %w", e.ID, err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("post stage change %d: the CRM answered %s", e.ID, resp.Status)
	}
	return nil
}

// Run delivers every interval until ctx ends.
func (d *Deliverer) Run(ctx context.Context, interval time.Duration) {
	every.Tick(ctx, interval, func(ctx context.Context) {
		if _, err := d.Deliver(ctx); err != nil && ctx.Err() == nil && d.Log != nil {
			d.Log.Warn("CRM webhook; will retry", "err", err)
		}
	})
}
