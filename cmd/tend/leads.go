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

	"github.com/google/uuid"
	"github.com/spf13/cobra"

	"github.com/tendhq/tend/internal/db"
	"github.com/tendhq/tend/internal/lifecycle"
	"github.com/tendhq/tend/internal/score"
)

// leadsListOptions are the flags of tend leads list: the API's filter.
type leadsListOptions struct {
	stage, band, segment, cursor string
	limit                        int
	output                       *outputFormat
}

func newLeadsListCommand(cl *cli) *cobra.Command {
	var o leadsListOptions
	cmd := &cobra.Command{
		Use:   "list [--stage S] [--band B] [--segment ID] [--limit N] [-o table|json]",
		Short: "list leads, oldest first, a page at a time, from a running tend (TEND_URL, TEND_API_KEY)",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runLeadsList(cmd.Context(), o, cl.stdout, cl.getenv)
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&o.stage, "stage", "", "only leads at this lifecycle stage ("+lifecycle.Names()+")")
	fs.StringVar(&o.band, "band", "", "only leads in this score band (cold, warm, hot)")
	fs.StringVar(&o.segment, "segment", "", "only leads in this segment")
	fs.IntVar(&o.limit, "limit", 50, "at most this many leads (1 to 500)")
	fs.StringVar(&o.cursor, "cursor", "", "the page after the one that printed this cursor")
	o.output = addOutputFlag(cmd)
	stages := make([]string, len(lifecycle.All))
	for i, s := range lifecycle.All {
		stages[i] = string(s)
	}
	_ = cmd.RegisterFlagCompletionFunc("stage", cobra.FixedCompletions(stages, cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.RegisterFlagCompletionFunc("band", cobra.FixedCompletions([]string{"cold", "warm", "hot"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

// runLeadsList prints a page of GET /api/v1/leads. The filter is checked here as the API checks
// it, so a typo is a usage error before anything is asked.
func runLeadsList(ctx context.Context, o leadsListOptions, stdout io.Writer, getenv func(string) string) error {
	q := url.Values{}
	if o.stage != "" {
		if _, err := lifecycle.Parse(o.stage); err != nil {
			return fmt.Errorf("%w: --stage: %v", errUsage, err)
		}
		q.Set("stage", o.stage)
	}
	switch o.band {
	case "":
	case "cold", "warm", "hot":
		q.Set("band", o.band)
	default:
		return fmt.Errorf("%w: --band: %q is not cold, warm or hot", errUsage, o.band)
	}
	if o.limit < 1 || o.limit > 500 {
		return fmt.Errorf("%w: --limit: must be between 1 and 500, not %d", errUsage, o.limit)
	}
	q.Set("limit", strconv.Itoa(o.limit))
	if o.segment != "" {
		q.Set("segment", o.segment)
	}
	if o.cursor != "" {
		q.Set("cursor", o.cursor)
	}
	c, err := newAdminClient(getenv)
	if err != nil {
		return err
	}
	raw, err := c.get(ctx, "/api/v1/leads?"+q.Encode())
	if err != nil {
		return err
	}
	if *o.output == outputJSON {
		return writeJSON(stdout, raw)
	}
	var page struct {
		Leads []db.Lead `json:"leads"`
		Next  string    `json:"next"`
	}
	if err := json.Unmarshal(raw, &page); err != nil {
		return fmt.Errorf("read the answer of %s: %w", c.base, err)
	}
	if len(page.Leads) == 0 {
		_, err := fmt.Fprintln(stdout, "No leads match.")
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tEMAIL\tNAME\tSTAGE\tSCORE\tBAND\tSEGMENT\tSOURCE\tCREATED (UTC)")
	for _, l := range page.Leads {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", l.ID, l.Email, dash(l.Name), l.Stage, points(l.Score), dash(l.Band),
			dash(l.Segment), dash(l.Source), utc(l.CreatedAt))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if page.Next != "" {
		fmt.Fprintf(stdout, "more: tend leads list --cursor %s (with the same filters)\n", page.Next)
	}
	return nil
}

func newLeadsShowCommand(cl *cli) *cobra.Command {
	cmd := &cobra.Command{
		Use:               "show ID [-o table|json]",
		Short:             "one lead: score breakdown, handoffs, and everything that happened to it (TEND_URL, TEND_API_KEY)",
		Args:              exactArgs(1, "ID (one lead id)"),
		ValidArgsFunction: cobra.NoFileCompletions,
	}
	output := addOutputFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		return runLeadsShow(cmd.Context(), args[0], *output, cl.stdout, cl.getenv)
	}
	return cmd
}

// leadDetail is the part of GET /api/v1/leads/{id} the table shows.
type leadDetail struct {
	db.Lead
	Handoffs []db.Handoff `json:"handoffs"`
	Timeline []struct {
		At     time.Time `json:"at"`
		Kind   string    `json:"kind"`
		What   string    `json:"what"`
		Detail string    `json:"detail"`
		Scored *bool     `json:"scored"`
	} `json:"timeline"`
	Workflow *struct {
		Status     string    `json:"status"`
		NextSendAt time.Time `json:"next_send_at"`
		ExitReason string    `json:"exit_reason"`
	} `json:"workflow"`
}

func runLeadsShow(ctx context.Context, id string, output outputFormat, stdout io.Writer, getenv func(string) string) error {
	if _, err := uuid.Parse(id); err != nil {
		return fmt.Errorf("%w: %q is not a lead id (a UUID, as tend leads list prints)", errUsage, id)
	}
	c, err := newAdminClient(getenv)
	if err != nil {
		return err
	}
	raw, err := c.get(ctx, "/api/v1/leads/"+url.PathEscape(id))
	if err != nil {
		return err
	}
	if output == outputJSON {
		return writeJSON(stdout, raw)
	}
	var l leadDetail
	if err := json.Unmarshal(raw, &l); err != nil {
		return fmt.Errorf("read the answer of %s: %w", c.base, err)
	}
	return printLead(stdout, l)
}

func printLead(w io.Writer, l leadDetail) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	row := func(k, v string) {
		if v != "" {
			fmt.Fprintf(tw, "%s\t%s\n", k, v)
		}
	}
	row("lead", l.ID)
	row("email", l.Email)
	row("name", l.Name)
	row("company", l.Company)
	row("stage", l.Stage)
	scored := ""
	if l.ScoredAt != nil {
		scored = ", scored " + utc(*l.ScoredAt)
	}
	row("score", fmt.Sprintf("%s (%s%s)", points(l.Score), dash(l.Band), scored))
	row("segment", l.Segment)
	row("interests", strings.Join(l.Interests, ", "))
	row("opted out of", strings.Join(l.OptedOutInterests, ", "))
	row("source", l.Source)
	row("time zone", l.TimeZone)
	row("created", utc(l.CreatedAt))
	if l.HandoffReadyAt != nil {
		row("hand-off ready", utc(*l.HandoffReadyAt)+" ("+l.HandoffReason+")")
	}
	if l.UnsubscribedAt != nil {
		row("unsubscribed", utc(*l.UnsubscribedAt))
	}
	if wf := l.Workflow; wf != nil {
		state := wf.Status
		if !wf.NextSendAt.IsZero() {
			state += ", next email due " + utc(wf.NextSendAt)
		}
		if wf.ExitReason != "" {
			state += ", stopped: " + wf.ExitReason
		}
		row("workflow", state)
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	var breakdown []score.RuleScore
	if len(l.Breakdown) > 0 && json.Unmarshal(l.Breakdown, &breakdown) == nil && len(breakdown) > 0 {
		fmt.Fprintln(w, "\nScore breakdown:")
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  RULE\tKIND\tPOINTS\tEVENTS")
		for _, r := range breakdown {
			capped := ""
			if r.Capped {
				capped = " (capped)"
			}
			fmt.Fprintf(tw, "  %s\t%s\t%+g%s\t%d\n", r.RuleID, r.Kind, r.Points, capped, r.Events)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if len(l.Handoffs) > 0 {
		fmt.Fprintln(w, "\nHandoffs:")
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  HANDED OFF (UTC)\tREP\tPOLICY\tDUE (UTC)\tOUTCOME\tRESPONSE\tREASON")
		for _, h := range l.Handoffs {
			reason := h.Reason
			if h.RejectReason != "" {
				reason = "rejected: " + h.RejectReason
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\t%s\n", utc(h.HandedOffAt), h.RepID, h.Policy, utc(h.DueAt), h.Outcome,
				seconds(h.ResponseSeconds), dash(reason))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if len(l.Timeline) > 0 {
		fmt.Fprintln(w, "\nTimeline:")
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  AT (UTC)\tKIND\tWHAT\tDETAIL")
		for _, e := range l.Timeline {
			what := e.What
			if e.Scored != nil && !*e.Scored {
				what += " (not scored)"
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", utc(e.At), e.Kind, what, dash(e.Detail))
		}
		return tw.Flush()
	}
	return nil
}

// utc writes a time to the second in UTC, as every table of tend does.
func utc(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05") }

// points writes a score without trailing zeros.
func points(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

// seconds writes a duration in seconds, as the reports give them, to the second; - for none.
func seconds(v *float64) string {
	if v == nil {
		return "-"
	}
	return time.Duration(*v * float64(time.Second)).Round(time.Second).String()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
