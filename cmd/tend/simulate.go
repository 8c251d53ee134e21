package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/spf13/cobra"

	"github.com/tendhq/tend/internal/app"
	"github.com/tendhq/tend/internal/content"
	"github.com/tendhq/tend/internal/sequence"
	"github.com/tendhq/tend/internal/simulate"
	"github.com/tendhq/tend/internal/yamlcheck"
	"github.com/tendhq/tend/workflows"
)

// simulateUsage is how tend sequences simulate is called.
const simulateUsage = "tend sequences simulate FILE|--version N --segment ID [--at 2006-01-02T15:04] [--tz ZONE] [--clicks STEP,…] [--days N] " +
	"[--variant STEP=VARIANT]… [--holdout] [--lead ID]"

// simulateOptions are the flags of tend sequences simulate.
type simulateOptions struct {
	segment, at, tz, clicks, clickAfter, leadID string
	days, version                               int
	choices                                     []simulate.Choice
	holdout                                     bool
}

func newSimulateCommand(cl *cli, now func() time.Time) *cobra.Command {
	var o simulateOptions
	cmd := &cobra.Command{
		Use:   "simulate FILE|--version N --segment ID [--at TIME] [--variant STEP=V] [--holdout] [--lead ID] …",
		Short: "when each email would reach a lead: the real workflow, time-skipped",
		RunE: func(cmd *cobra.Command, args []string) error {
			return runSimulate(cmd.Context(), o, args, cl.stdout, cl.stderr, cl.getenv, now())
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&o.segment, "segment", "", "the segment the lead is captured into (default: the file's default segment)")
	fs.StringVar(&o.at, "at", "", "when the lead is captured, as 2006-01-02T15:04 in the lead's time zone (default: now)")
	fs.StringVar(&o.tz, "tz", "", "the lead's time zone, e.g. America/New_York (default: the send window's)")
	fs.StringVar(&o.clicks, "clicks", "", "comma-separated step ids whose email the lead clicks")
	fs.StringVar(&o.clickAfter, "click-after", "1h", "how long after an email arrives the lead clicks it")
	fs.IntVar(&o.days, "days", 120, "how many days to follow the lead")
	fs.Func("variant", "the A/B variant the lead receives at a step, as STEP=VARIANT (SEQUENCE/STEP=VARIANT when several sequences have the step); repeatable",
		func(v string) error {
			step, variant, ok := strings.Cut(v, "=")
			step, variant = strings.TrimSpace(step), strings.TrimSpace(variant)
			if !ok || step == "" || variant == "" {
				return fmt.Errorf("%q is not STEP=VARIANT, e.g. intro=b", v)
			}
			o.choices = append(o.choices, simulate.Choice{Step: step, Variant: variant})
			return nil
		})
	fs.BoolVar(&o.holdout, "holdout", false, "put the lead in the holdout of its segment's sequence: it receives none of its emails")
	fs.IntVar(&o.version, "version", 0, "simulate published version N of the sequences (read from DATABASE_URL) instead of a FILE")
	fs.StringVar(&o.leadID, "lead", "", "the lead's id, on which its variants and holdout depend (default "+simulate.DefaultLeadID+")")
	return cmd
}

// runSimulate prints when each email of a sequence file would reach one imaginary lead, and which
// A/B variant it would be: see simulateUsage. The catalog comes from FILE by loadSimulationCatalog;
// a catalog from anywhere else (a stored version) simulates the same way through simulate.Run.
func runSimulate(ctx context.Context, o simulateOptions, args []string, stdout, stderr io.Writer, getenv func(string) string, now time.Time) error {
	var file string
	if len(args) == 1 {
		file = args[0]
	}
	if len(args) > 1 || (file == "") == (o.version == 0) {
		return fmt.Errorf("%w: %s", errUsage, simulateUsage)
	}
	if o.version < 0 {
		return fmt.Errorf("%w: --version must be a version number, not %d", errUsage, o.version)
	}
	if o.leadID != "" {
		if _, err := uuid.Parse(o.leadID); err != nil {
			return fmt.Errorf("%w: --lead: %q is not a lead id (a UUID)", errUsage, o.leadID)
		}
	}
	if o.days < 1 || o.days > 3650 {
		return fmt.Errorf("%w: --days must be between 1 and 3650", errUsage)
	}
	delay, err := yamlcheck.ParseDuration(o.clickAfter)
	if err != nil || delay < 0 {
		return fmt.Errorf("%w: --click-after: %q is not a duration like 2h or 1d", errUsage, o.clickAfter)
	}

	var cat *sequence.Catalog
	if o.version > 0 {
		file = fmt.Sprintf("sequences version %d", o.version)
		cat, err = loadPublishedCatalog(ctx, o.version, getenv)
	} else {
		cat, err = loadSimulationCatalog(file, stderr, getenv)
	}
	if err != nil {
		return err
	}
	if o.segment == "" {
		o.segment = cat.DefaultSegment
	}
	seg, ok := cat.Segment(o.segment)
	if !ok {
		var ids []string
		for _, s := range cat.Segments {
			ids = append(ids, s.ID)
		}
		return fmt.Errorf("%w: --segment: %q is not a segment of %s (one of: %s)", errUsage, o.segment, file, strings.Join(ids, ", "))
	}
	zone := o.tz
	if zone == "" {
		zone = seg.Sequence.Window.TimeZone
	}
	loc, err := time.LoadLocation(zone)
	if err != nil || zone == "" {
		return fmt.Errorf("%w: --tz: %q is not a time zone like Europe/Berlin", errUsage, zone)
	}
	start := now.In(loc).Truncate(time.Minute)
	if o.at != "" {
		if start, err = time.ParseInLocation("2006-01-02T15:04", o.at, loc); err != nil {
			return fmt.Errorf("%w: --at: %q is not a time like 2026-11-27T18:00", errUsage, o.at)
		}
	}
	var clicked []string
	for c := range strings.SplitSeq(o.clicks, ",") {
		if c = strings.TrimSpace(c); c != "" {
			clicked = append(clicked, c)
		}
	}
	res, err := simulate.Run(cat, simulate.Lead{Segment: seg.ID, TimeZone: o.tz, Start: start, Clicks: clicked, ClickDelay: delay,
		For: time.Duration(o.days) * 24 * time.Hour, ID: o.leadID, Variants: o.choices, HeldOut: o.holdout})
	if errors.Is(err, simulate.ErrVariantChoice) {
		return fmt.Errorf("%w: --variant: %v", errUsage, err)
	}
	if err != nil {
		return err
	}
	printSimulation(stdout, res, cat, seg, start, loc, clicked, delay, o.days, o.holdout)
	return nil
}

// loadPublishedCatalog reads a published version of the sequences from the store, with the
// newest of the other kinds it is checked against.
func loadPublishedCatalog(ctx context.Context, version int, getenv func(string) string) (*sequence.Catalog, error) {
	store, err := openStoreFromEnv(ctx, getenv)
	if err != nil {
		return nil, err
	}
	defer store.Close()
	set, err := content.LoadAt(ctx, store, map[content.Kind]int{content.Sequences: version})
	if err != nil {
		return nil, fmt.Errorf("--version %d: %w", version, err)
	}
	return set.Catalog, nil
}

// loadSimulationCatalog reads and checks a sequences file against the templates tend would use,
// writing its problems to stderr as tend sequences lint does.
func loadSimulationCatalog(file string, stderr io.Writer, getenv func(string) string) (*sequence.Catalog, error) {
	r, err := app.NewRenderer(getenv("TEND_TEMPLATES_DIR"))
	if err != nil {
		return nil, err
	}
	cat, err := sequence.Load(file, sequence.Options{TemplateExists: r.Has})
	var diags sequence.Diagnostics
	if errors.As(err, &diags) {
		for _, d := range diags {
			fmt.Fprintln(stderr, d.String())
		}
		return nil, fmt.Errorf("%s has %d problem(s); tend sequences lint lists them", file, len(diags))
	}
	return cat, err
}

func printSimulation(w io.Writer, res simulate.Result, cat *sequence.Catalog, seg sequence.Segment, start time.Time, loc *time.Location,
	clicks []string, delay time.Duration, days int, forcedHoldout bool) {
	const layout = "Mon 02 Jan 2006 15:04"
	behaviour := "never clicks or engages"
	if len(clicks) > 0 {
		behaviour = fmt.Sprintf("clicks %s, %s after it arrives", strings.Join(clicks, ", "), human(delay))
	}
	fmt.Fprintf(w, "segment %s (%s), captured %s %s; the lead %s; followed for %d day(s)\n", seg.ID, seg.Sequence.ID,
		start.Format(layout), loc, behaviour, days)
	fmt.Fprintf(w, "lead %s\n", res.LeadID)
	for _, id := range res.HeldOut {
		why := "--holdout"
		if q, _ := cat.Sequence(id); !forcedHoldout || id != seg.Sequence.ID {
			why = fmt.Sprintf("its id falls in the sequence's %s%% holdout", strings.TrimSuffix(fmt.Sprintf("%.1f", q.Holdout*100), ".0"))
		}
		fmt.Fprintf(w, "holdout: this lead would receive no email from %s (%s)\n", id, why)
	}
	fmt.Fprintln(w)
	prev := start
	sent := 0
	for _, r := range res.Records {
		t := r.At.In(loc)
		detail := r.Outcome
		if r.Detail != "" {
			detail += " (" + r.Detail + ")"
		}
		email := ""
		switch {
		case r.Variant != "":
			email = fmt.Sprintf("  variant %s: %q", r.Variant, r.Subject)
		case r.Subject != "":
			email = fmt.Sprintf("  %q", r.Subject)
		}
		fmt.Fprintf(w, "  %s  %-9s  %-40s %s%s\n", t.Format(layout), "+"+human(t.Sub(prev)), r.SequenceID+"/"+r.StepID, detail, email)
		prev = t
		if r.Outcome == "sent" {
			sent++
		}
	}
	fmt.Fprintf(w, "\n%d email(s) sent. ", sent)
	switch {
	case res.Mode == workflows.ModeSunset:
		fmt.Fprintln(w, "Then: sunset — no marketing email until the lead engages again.")
	case res.Mode == workflows.ModeReengaging:
		fmt.Fprintln(w, "At the end the lead is in the re-engagement series.")
	case res.ExitReason != "":
		fmt.Fprintf(w, "The series stopped: %s.\n", res.ExitReason)
	case res.Status == workflows.StatusCompleted:
		fmt.Fprintln(w, "The series is complete; the lead waits for its next capture or engagement.")
	default:
		fmt.Fprintln(w, "The series is still running at the end of the period.")
	}
}

// human writes a duration in days, hours and minutes.
func human(d time.Duration) string {
	d = d.Round(time.Minute)
	days := int(d / (24 * time.Hour))
	d -= time.Duration(days) * 24 * time.Hour
	h, m := int(d/time.Hour), int((d%time.Hour)/time.Minute)
	var b strings.Builder
	if days > 0 {
		fmt.Fprintf(&b, "%dd", days)
	}
	if h > 0 {
		fmt.Fprintf(&b, "%dh", h)
	}
	if m > 0 {
		fmt.Fprintf(&b, "%dm", m)
	}
	if b.Len() == 0 {
		return "0"
	}
	return b.String()
}
