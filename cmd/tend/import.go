package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/tendhq/tend/internal/app"
	"github.com/tendhq/tend/internal/capture"
	"github.com/tendhq/tend/internal/content"
	"github.com/tendhq/tend/internal/db"
	"github.com/tendhq/tend/workflows"
)

// unreachable stands in for Temporal when it cannot be dialled: every capture stays in the outbox
// for the server's reconciler.
type unreachable struct{ err error }

func (u unreachable) Enroll(context.Context, string, workflows.Capture) error { return u.err }

func runImport(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	fs := newFlags("leads import", stderr)
	batch := fs.String("batch", "", "import batch name recorded with each consent (default: file name and time)")
	quiet := fs.Bool("quiet", false, "no progress bar")
	if err := parseFlagsAndArgs(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("%w: tend leads import FILE.csv", errUsage)
	}
	path := fs.Arg(0)
	cfg, err := loadConfig(getenv)
	if err != nil {
		return err
	}
	log := newLogger(stderr, "warn")
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return err
	}
	if *batch == "" {
		*batch = filepath.Base(path) + "@" + time.Now().UTC().Format(time.RFC3339)
	}

	store, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer store.Close()
	// Leads are placed in segments by the published sequences, as the server places captures.
	seed := content.FileSeed{Sequences: cfg.Sequences, Scoring: cfg.Scoring, Sales: cfg.Sales, TemplatesDir: cfg.TemplatesDir}
	live, err := content.Open(ctx, store, seed.Read, log)
	if err != nil {
		return err
	}
	svc := &capture.Service{Store: store, Catalog: live.Current().Catalog, Log: log}
	if tc, err := app.DialTemporal(ctx, cfg, log); err != nil {
		fmt.Fprintf(stderr, "warning: %v\n  leads are saved and will be enrolled by `tend server` once Temporal is reachable\n", err)
		svc.Enroller = unreachable{err: err}
	} else {
		defer tc.Close()
		svc.Enroller = capture.TemporalEnroller{Client: tc, TaskQueue: cfg.TaskQueue}
	}

	counter := &countingReader{r: f}
	bar := newProgress(stderr, info.Size(), *quiet)
	var created, updated, pending, skipped int
	var problems []string
	err = capture.ReadCSV(counter, func(row capture.Row) error {
		bar.update(counter.n.Load(), created+updated, skipped)
		if row.Err != nil {
			skipped++
			problems = append(problems, fmt.Sprintf("line %d: %v", row.Line, row.Err))
			return nil
		}
		res, err := svc.Capture(ctx, row.Request, capture.Meta{ImportBatch: *batch})
		var ve *capture.ValidationError
		switch {
		case errors.As(err, &ve):
			skipped++
			var parts []string
			for _, f := range ve.Fields {
				parts = append(parts, f.Field+": "+f.Message)
			}
			problems = append(problems, fmt.Sprintf("line %d: %s", row.Line, strings.Join(parts, "; ")))
			return nil
		case errors.Is(err, db.ErrUnavailable):
			return fmt.Errorf("line %d: %w (rows before it were imported; re-running the import is safe)", row.Line, err)
		case err != nil:
			return fmt.Errorf("line %d: %w", row.Line, err)
		}
		if res.Created {
			created++
		} else {
			updated++
		}
		if !res.Enrolled {
			pending++
		}
		return nil
	})
	bar.done(counter.n.Load(), created+updated, skipped)
	for _, p := range problems {
		fmt.Fprintln(stdout, p)
	}
	fmt.Fprintf(stdout, "imported %d lead(s): %d new, %d updated; skipped %d bad row(s)", created+updated, created, updated, skipped)
	if pending > 0 {
		fmt.Fprintf(stdout, "; %d waiting for enrolment", pending)
	}
	fmt.Fprintln(stdout)
	return err
}

type countingReader struct {
	r io.Reader
	n atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// progress draws a one-line progress bar on a terminal-like writer, at most ten times a second.
type progress struct {
	w     io.Writer
	total int64
	quiet bool
	last  time.Time
}

func newProgress(w io.Writer, total int64, quiet bool) *progress {
	return &progress{w: w, total: total, quiet: quiet}
}

func (p *progress) update(read int64, ok, bad int) {
	if p.quiet || time.Since(p.last) < 100*time.Millisecond {
		return
	}
	p.last = time.Now()
	p.draw(read, ok, bad)
}

func (p *progress) draw(read int64, ok, bad int) {
	frac := 1.0
	if p.total > 0 {
		frac = float64(read) / float64(p.total)
	}
	if frac > 1 {
		frac = 1
	}
	const width = 30
	fill := int(frac * width)
	fmt.Fprintf(p.w, "\r[%s%s] %3.0f%%  %d imported, %d skipped", strings.Repeat("=", fill), strings.Repeat(" ", width-fill), frac*100, ok, bad)
}

func (p *progress) done(read int64, ok, bad int) {
	if p.quiet {
		return
	}
	p.draw(read, ok, bad)
	fmt.Fprintln(p.w)
}
