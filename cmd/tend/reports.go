package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/tendhq/tend/internal/api"
	"github.com/tendhq/tend/internal/db"
)

func newReportSequencesCommand(cl *cli) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "sequences [--since 30d] [-o table|json]",
		Short: "how sequences, steps and A/B variants perform, with conversions and holdout lift (needs DATABASE_URL)",
		Args:  noArgs,
	}
	since := cmd.Flags().String("since", "30d", "start of the period: a look-back (30d, 2w, 12h) or a date (2026-11-01) or RFC 3339 time")
	output := addOutputFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		return runReportSequences(cmd.Context(), *since, *output, cl.stdout, cl.getenv)
	}
	return cmd
}

// runReportSequences prints how each sequence, step and A/B variant performed since a point in
// time: tend reports sequences [--since 30d] [--output json]. It reads Postgres directly
// (DATABASE_URL), as `tend leads import` does, so it needs no running server.
func runReportSequences(ctx context.Context, sinceFlag string, output outputFormat, stdout io.Writer, getenv func(string) string) error {
	since, err := api.ParseSince(sinceFlag, time.Now())
	if err != nil {
		return fmt.Errorf("%w: --since %v", errUsage, err)
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
	if output == outputJSON {
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

// periodFlags are the --from and --to of the funnel and SLA reports, passed to the API as they
// are once they parse as it parses them.
type periodFlags struct{ from, to string }

func (p *periodFlags) add(cmd *cobra.Command, what string) {
	cmd.Flags().StringVar(&p.from, "from", "", what+" from this date (2026-11-01, midnight UTC) or RFC 3339 time on; default: from the start")
	cmd.Flags().StringVar(&p.to, "to", "", "up to this date or time, excluded; default: up to now")
}

// query checks the period and returns it as the report's query parameters.
func (p periodFlags) query() (url.Values, error) {
	q := url.Values{}
	var bounds [2]time.Time
	for i, f := range []struct{ name, v string }{{"from", p.from}, {"to", p.to}} {
		if f.v == "" {
			continue
		}
		t, err := time.Parse(time.DateOnly, f.v)
		if err != nil {
			if t, err = time.Parse(time.RFC3339, f.v); err != nil {
				return nil, fmt.Errorf("%w: --%s: %q is not a date (YYYY-MM-DD) or an RFC 3339 time", errUsage, f.name, f.v)
			}
		}
		bounds[i] = t
		q.Set(f.name, f.v)
	}
	if !bounds[0].IsZero() && !bounds[1].IsZero() && bounds[1].Before(bounds[0]) {
		return nil, fmt.Errorf("%w: --to %s is before --from %s", errUsage, p.to, p.from)
	}
	return q, nil
}

func (p periodFlags) String() string {
	switch {
	case p.from == "" && p.to == "":
		return "at any time"
	case p.to == "":
		return "from " + p.from
	case p.from == "":
		return "before " + p.to
	}
	return "from " + p.from + " to " + p.to
}

func newFunnelCommand(cl *cli) *cobra.Command {
	var period periodFlags
	cmd := &cobra.Command{
		Use:   "funnel [--from DATE] [--to DATE] [--source S] [-o table|json]",
		Short: "the lifecycle funnel and its conversions, overall and per lead source (TEND_URL, TEND_API_KEY)",
		Args:  noArgs,
	}
	period.add(cmd, "the leads created")
	source := cmd.Flags().String("source", "", "only the leads of this source (e.g. ebook_download)")
	output := addOutputFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		return runFunnel(cmd.Context(), period, *source, *output, cl.stdout, cl.getenv)
	}
	return cmd
}

// runFunnel prints GET /api/v1/reports/funnel: a row per lead source under the overall one.
func runFunnel(ctx context.Context, period periodFlags, source string, output outputFormat, stdout io.Writer, getenv func(string) string) error {
	q, err := period.query()
	if err != nil {
		return err
	}
	if source != "" {
		q.Set("source", source)
	}
	c, err := newAdminClient(getenv)
	if err != nil {
		return err
	}
	raw, err := c.get(ctx, "/api/v1/reports/funnel?"+q.Encode())
	if err != nil {
		return err
	}
	if output == outputJSON {
		return writeJSON(stdout, raw)
	}
	var rep struct {
		Overall  db.Funnel   `json:"overall"`
		BySource []db.Funnel `json:"by_source"`
	}
	if err := json.Unmarshal(raw, &rep); err != nil {
		return fmt.Errorf("read the answer of %s: %w", c.base, err)
	}
	fmt.Fprintf(stdout, "Funnel of the leads created %s\n\n", period)
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	head := "SOURCE\t"
	for _, st := range rep.Overall.Stages {
		head += strings.ToUpper(st.Stage) + "\t"
	}
	for _, cv := range rep.Overall.Conversions {
		head += strings.ToUpper(cv.From) + "→" + strings.ToUpper(cv.To) + "\t"
	}
	fmt.Fprintln(tw, head+"SQL→WON DAYS\tREVENUE FROM SQLS")
	for _, f := range append([]db.Funnel{rep.Overall}, rep.BySource...) {
		name := f.Source
		if name == "" {
			name = "(all)"
			if source != "" {
				name = source
			}
		}
		line := name + "\t"
		for _, st := range f.Stages {
			line += strconv.Itoa(st.Leads) + "\t"
		}
		for _, cv := range f.Conversions {
			line += percent(cv.Rate) + "\t"
		}
		days := "-"
		if f.SQLToWonDays != nil {
			days = strconv.FormatFloat(*f.SQLToWonDays, 'f', 1, 64)
		}
		fmt.Fprintf(tw, "%s%s\t%s\n", line, days, strconv.FormatFloat(f.RevenueFromSQLs, 'f', -1, 64))
	}
	return tw.Flush()
}

func newSLACommand(cl *cli) *cobra.Command {
	var period periodFlags
	cmd := &cobra.Command{
		Use:   "sla [--from DATE] [--to DATE] [-o table|json]",
		Short: "how fast sales answered handoffs, per rep and per policy, and why leads were rejected (TEND_URL, TEND_API_KEY)",
		Args:  noArgs,
	}
	period.add(cmd, "the handoffs handed off")
	output := addOutputFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		return runSLA(cmd.Context(), period, *output, cl.stdout, cl.getenv)
	}
	return cmd
}

// runSLA prints GET /api/v1/reports/sla: response times per rep and per policy, wall-clock and
// business time, then the rejection reasons.
func runSLA(ctx context.Context, period periodFlags, output outputFormat, stdout io.Writer, getenv func(string) string) error {
	q, err := period.query()
	if err != nil {
		return err
	}
	c, err := newAdminClient(getenv)
	if err != nil {
		return err
	}
	raw, err := c.get(ctx, "/api/v1/reports/sla?"+q.Encode())
	if err != nil {
		return err
	}
	if output == outputJSON {
		return writeJSON(stdout, raw)
	}
	var rep struct {
		db.SLAReport
		RejectionReasons []db.ReasonCount `json:"rejection_reasons"`
	}
	if err := json.Unmarshal(raw, &rep); err != nil {
		return fmt.Errorf("read the answer of %s: %w", c.base, err)
	}
	fmt.Fprintf(stdout, "Handoffs handed off %s\n", period)
	if len(rep.ByRep) == 0 {
		fmt.Fprintln(stdout, "\nNo handoffs in this period.")
	}
	for _, t := range []struct {
		title string
		rows  []db.SLARow
	}{{"REP", rep.ByRep}, {"POLICY", rep.ByPolicy}} {
		if len(t.rows) == 0 {
			continue
		}
		fmt.Fprintln(stdout)
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintf(tw, "%s\tHANDOFFS\tANSWERED\tMEDIAN\tP90\tMEDIAN (BUSINESS)\tP90 (BUSINESS)\tBREACHES\n", t.title)
		for _, r := range t.rows {
			fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\t%s\t%s\t%d (%s)\n", r.Key, r.Handoffs, r.Responded, seconds(r.MedianResponseSeconds),
				seconds(r.P90ResponseSeconds), seconds(r.MedianBusinessSeconds), seconds(r.P90BusinessSeconds), r.Breaches, percent(r.BreachRate))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if len(rep.RejectionReasons) > 0 {
		fmt.Fprintln(stdout, "\nRejected, by reason:")
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		for _, r := range rep.RejectionReasons {
			reason := r.Reason
			if reason == "" {
				reason = "(no reason given)"
			}
			fmt.Fprintf(tw, "  %s\t%d\n", reason, r.Count)
		}
		return tw.Flush()
	}
	return nil
}
