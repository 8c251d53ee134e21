package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tendhq/tend/internal/api"
	"github.com/tendhq/tend/internal/db"
)

// runReportSequences prints how each sequence, step and A/B variant performed since a point in
// time: tend reports sequences [--since 30d] [--output json]. It reads Postgres directly
// (DATABASE_URL), as `tend leads import` does, so it needs no running server.
func runReportSequences(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	fs := newFlags("reports sequences", stderr)
	sinceFlag := fs.String("since", "30d", "start of the period: a look-back (30d, 2w, 12h) or a date (2026-11-01) or RFC 3339 time")
	output := fs.String("output", "table", "table, or json (the API's answer)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	since, err := api.ParseSince(*sinceFlag, time.Now())
	if err != nil {
		return fmt.Errorf("%w: --since %v", errUsage, err)
	}
	if *output != "table" && *output != "json" {
		return fmt.Errorf("%w: --output must be table or json, not %q", errUsage, *output)
	}
	store, err := openStoreFromEnv(ctx, getenv)
	if err != nil {
		return err
	}
	defer store.Close()
	rep, err := store.SequenceReport(ctx, since)
	if err != nil {
		return err
	}
	if *output == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	return printSequenceReport(stdout, rep)
}

// printSequenceReport writes the report as one block per sequence: its leads and conversions,
// then a table with a row per step and variant.
func printSequenceReport(w io.Writer, rep db.SequenceReport) error {
	fmt.Fprintf(w, "Sequences since %s\n", rep.Since.UTC().Format("2006-01-02 15:04 MST"))
	if len(rep.Sequences) == 0 {
		fmt.Fprintln(w, "\nNo sends or conversions in this period.")
		return nil
	}
	for _, q := range rep.Sequences {
		fmt.Fprintf(w, "\n%s: %d lead(s), %d treated, %d held out\n", q.SequenceID, q.Leads, q.TreatedLeads, q.HeldOutLeads)
		fmt.Fprintf(w, "  conversions: treated %s", ofRate(q.TreatedConversions, q.TreatedLeads, q.TreatedRate))
		if q.HeldOutLeads > 0 {
			fmt.Fprintf(w, ", held out %s", ofRate(q.HeldOutConversions, q.HeldOutLeads, q.HeldOutRate))
		}
		switch {
		case q.Lift == nil:
			fmt.Fprint(w, "; lift: no holdout to compare with")
		case q.RelativeLift == nil:
			fmt.Fprintf(w, "; lift %+.1f points", *q.Lift*100)
		default:
			fmt.Fprintf(w, "; lift %+.1f points (%+.0f%%)", *q.Lift*100, *q.RelativeLift*100)
		}
		fmt.Fprintln(w)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  step\tvariant\tsent\tfailed\tsuppressed\theld out\tpending\topened\tclicked\tunsubscribed\tconverted")
		for _, st := range q.Steps {
			for i, v := range st.Variants {
				step := st.StepID
				if i > 0 {
					step = ""
				}
				variant := v.Variant
				if variant == "" {
					variant = "-"
				}
				fmt.Fprintf(tw, "  %s\t%s\t%d\t%d\t%d\t%d\t%d\t%s\t%s\t%s\t%s\n", step, variant, v.Sent, v.Failed, v.Suppressed,
					v.HeldOut, v.Pending, countRate(v.Opens, v.OpenRate), countRate(v.Clicks, v.ClickRate),
					countRate(v.Unsubscribes, v.UnsubscribeRate), countRate(v.Conversions, v.ConversionRate))
			}
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	fmt.Fprintln(w, "\nOpened and clicked count people, not privacy proxies or link scanners; rates are per email sent.")
	return nil
}

func ofRate(n, of int, rate float64) string {
	return fmt.Sprintf("%d/%d (%s)", n, of, percent(rate))
}

func countRate(n int, rate float64) string {
	return fmt.Sprintf("%d %s", n, percent(rate))
}

func percent(rate float64) string {
	return strings.TrimSuffix(strings.TrimSuffix(fmt.Sprintf("%.1f", rate*100), "0"), ".") + "%"
}
