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

	"github.com/spf13/cobra"

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

func newImportCommand(cl *cli) *cobra.Command {
	var o importOptions
	cmd := &cobra.Command{
		Use:   "import [--batch NAME] [--quiet] FILE.csv",
		Short: "import leads from a CSV file (needs DATABASE_URL)",
		Args:  exactArgs(1, "FILE.csv"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runImport(cmd.Context(), o, args[0], cl.stdout, cl.stderr, cl.getenv)
		},
	}
	cmd.Flags().StringVar(&o.batch, "batch", "", "import batch name recorded with each consent (default: file name and time)")
	cmd.Flags().BoolVar(&o.quiet, "quiet", false, "no progress bar (there is none either when stderr is not a terminal)")
	return cmd
}

// importOptions are the flags of tend leads import.
type importOptions struct {
	batch string
	quiet bool
}

func runImport(ctx context.Context, o importOptions, path string, stdout, stderr io.Writer, getenv func(string) string) error {
	cfg, err := loadConfig(getenv)
	if err != nil {
		return err
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return err
	}
	bar := newProgress(stderr, info.Size(), o.quiet || !isTerminal(stderr))
	// Warnings go through the bar, which keeps them off its line.
	log := newLogger(bar, "warn")
	if o.batch == "" {
		o.batch = filepath.Base(path) + "@" + time.Now().UTC().Format(time.RFC3339)
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
	var created, updated, pending, skipped int
	var problems []string
	err = capture.ReadCSV(counter, func(row capture.Row) error {
		bar.update(counter.n.Load(), created+updated, skipped)
		if row.Err != nil {
			skipped++
			problems = append(problems, fmt.Sprintf("line %d: %v", row.Line, row.Err))
			return nil
		}
		res, err := svc.Capture(ctx, row.Request, capture.Meta{ImportBatch: o.batch})
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
