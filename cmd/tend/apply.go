package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/tendhq/tend/internal/content"
	"github.com/tendhq/tend/internal/rollout"
)

// adminClient calls the admin API of a running tend: TEND_URL (default http://localhost:8080)
// with TEND_API_KEY.
type adminClient struct {
	base string
	key  string
	http *http.Client
}

func newAdminClient(getenv func(string) string) (*adminClient, error) {
	base := strings.TrimRight(strings.TrimSpace(getenv("TEND_URL")), "/")
	if base == "" {
		base = "http://localhost:8080"
	}
	if u, err := url.Parse(base); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("TEND_URL: %q is not an http(s) URL of a tend server", base)
	}
	key := strings.TrimSpace(getenv("TEND_API_KEY"))
	if key == "" {
		return nil, errors.New("TEND_API_KEY is not set: an admin key of the server (TEND_API_KEYS; tend dev prints its key)")
	}
	return &adminClient{base: base, key: key, http: &http.Client{Timeout: 2 * time.Minute}}, nil
}

// apiError is an error answer of the admin API.
type apiError struct {
	Status      int
	Message     string                            `json:"error"`
	Fields      []struct{ Field, Message string } `json:"fields"`
	Diagnostics []content.Diagnostic              `json:"diagnostics"`
}

func (e *apiError) Error() string {
	msg := e.Message
	for _, f := range e.Fields {
		msg += fmt.Sprintf("\n  %s: %s", f.Field, f.Message)
	}
	return msg
}

// call sends v as JSON (nil: no body) and decodes the answer into out.
func (c *adminClient) call(ctx context.Context, method, path string, v, out any) error {
	var body io.Reader
	if v != nil {
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return err
	}
	if v != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+c.key)
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("reach tend at %s (TEND_URL): %w", c.base, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("read the answer of %s: %w", c.base, err)
	}
	if resp.StatusCode >= 300 {
		e := &apiError{Status: resp.StatusCode}
		if json.Unmarshal(raw, e) != nil || e.Message == "" {
			e.Message = fmt.Sprintf("%s %s: %s", method, path, resp.Status)
		}
		if resp.StatusCode == http.StatusNotFound && strings.HasPrefix(e.Message, "no such endpoint") {
			e.Message += " (is this tend new enough to serve content? it is served by tend server and tend dev)"
		}
		return e
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("read the answer of %s: %w", c.base, err)
	}
	return nil
}

// get GETs path and returns the answer's JSON as it is.
func (c *adminClient) get(ctx context.Context, path string) (json.RawMessage, error) {
	var raw json.RawMessage
	if err := c.call(ctx, http.MethodGet, path, nil, &raw); err != nil {
		return nil, err
	}
	return raw, nil
}

// applyAnswer is the API's answer to an apply or a rollback.
type applyAnswer struct {
	Published bool `json:"published"`
	Versions  []struct {
		Kind      string `json:"kind"`
		Version   int    `json:"version"`
		AppliedBy string `json:"applied_by"`
		Pinned    bool   `json:"pinned"`
	} `json:"versions"`
	Current   map[string]int    `json:"current"`
	Changed   []string          `json:"changed"`
	Unchanged []string          `json:"unchanged"`
	Diffs     map[string]string `json:"diffs"`
	DryRun    json.RawMessage   `json:"dry_run"`
	Rollout   string            `json:"rollout"`
}

// applyOptions are the flags of tend apply.
type applyOptions struct {
	kind        string
	dryRun, pin bool
	rollback    int
}

func newApplyCommand(cl *cli) *cobra.Command {
	var o applyOptions
	cmd := &cobra.Command{
		Use:   "apply [--dry-run] [--pin] [--kind K] FILE|DIR... | --rollback N --kind K",
		Short: "lint, diff, dry-run and publish content to a running tend (TEND_URL, TEND_API_KEY)",
		RunE: func(cmd *cobra.Command, files []string) error {
			return runApply(cmd.Context(), o, files, cl.stdout, cl.getenv)
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&o.kind, "kind", "", "the kind of every FILE (sequences, scoring, sales, templates); default: told by each file's fields, a directory is templates")
	fs.BoolVar(&o.dryRun, "dry-run", false, "lint, diff and dry-run only: publish nothing")
	fs.BoolVar(&o.pin, "pin", false, "keep running leads on the version they run; only new enrolments take the new one")
	fs.IntVar(&o.rollback, "rollback", 0, "publish version `N` of --kind again, as a new version")
	completeKinds(cmd, "kind")
	return cmd
}

func runApply(ctx context.Context, o applyOptions, files []string, stdout io.Writer, getenv func(string) string) error {
	if o.kind != "" {
		if _, err := content.ParseKind(o.kind); err != nil {
			return fmt.Errorf("%w: --kind: %v", errUsage, err)
		}
	}
	var path string
	var req any
	switch {
	case o.rollback != 0 && (len(files) > 0 || o.kind == ""):
		return fmt.Errorf("%w: tend apply --rollback N --kind KIND takes no files", errUsage)
	case o.rollback < 0:
		return fmt.Errorf("%w: --rollback: versions count from 1", errUsage)
	case o.rollback > 0:
		path = "/api/content/rollback"
		req = map[string]any{"kind": o.kind, "version": o.rollback, "pinned": o.pin, "dry_run": o.dryRun}
	case len(files) == 0:
		return fmt.Errorf("%w: tend apply FILE... (or a templates directory)", errUsage)
	default:
		src, err := readApplyFiles(files, content.Kind(o.kind))
		if err != nil {
			return err
		}
		path = "/api/content/apply"
		req = map[string]any{"files": src, "pinned": o.pin, "dry_run": o.dryRun}
	}
	c, err := newAdminClient(getenv)
	if err != nil {
		return err
	}
	var out applyAnswer
	if err := c.call(ctx, http.MethodPost, path, req, &out); err != nil {
		var ae *apiError
		if errors.As(err, &ae) && len(ae.Diagnostics) > 0 {
			for _, d := range ae.Diagnostics {
				fmt.Fprintln(stdout, d.String())
			}
			return fmt.Errorf("%d problem(s) found; nothing was published", len(ae.Diagnostics))
		}
		return err
	}
	printApply(stdout, out, o.dryRun)
	return nil
}

// readApplyFiles reads the files to apply, each kind with all its files: a directory is the
// templates, a YAML file is told by its fields (or --kind).
func readApplyFiles(paths []string, kind content.Kind) (content.Source, error) {
	src := content.Source{}
	from := map[content.Kind]string{}
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		k := kind
		var files content.Files
		if st.IsDir() {
			if k != "" && k != content.Templates {
				return nil, fmt.Errorf("%s is a directory: only templates are applied as a directory", p)
			}
			k = content.Templates
			if files, err = content.ReadTemplatesDir(p); err != nil {
				return nil, err
			}
		} else {
			b, err := os.ReadFile(p)
			if err != nil {
				return nil, err
			}
			if k == content.Templates || (k == "" && (strings.HasSuffix(p, ".html") || strings.HasSuffix(p, ".txt"))) {
				return nil, fmt.Errorf("%s: templates are applied as their directory (tend apply DIR), which replaces them all", p)
			}
			if k == "" {
				var ok bool
				if k, ok = content.DetectKind(b); !ok {
					return nil, fmt.Errorf("%s: cannot tell its kind (a sequences file has segments, a scoring model bands, a sales team reps); say it with --kind", p)
				}
			}
			files = content.Files{filepath.Base(p): string(b)}
		}
		if prev, ok := from[k]; ok {
			return nil, fmt.Errorf("%s and %s are both %s: apply one %s file at a time", prev, p, k, k)
		}
		from[k] = p
		src[k] = files
	}
	return src, nil
}

func printApply(w io.Writer, out applyAnswer, dryRun bool) {
	for _, k := range out.Changed {
		fmt.Fprint(w, out.Diffs[k])
	}
	if len(out.Unchanged) > 0 {
		fmt.Fprintf(w, "unchanged: %s (the published text already)\n", strings.Join(out.Unchanged, ", "))
	}
	if len(out.DryRun) > 0 && string(out.DryRun) != "null" {
		var rep rollout.Report
		var b bytes.Buffer
		if json.Unmarshal(out.DryRun, &rep) == nil && rep.Changes != nil {
			fmt.Fprintln(w, "dry run, from the workflows of the leads in flight:")
			_ = rep.WriteText(w, time.Local)
		} else if json.Indent(&b, out.DryRun, "", "  ") == nil {
			fmt.Fprintf(w, "dry run:\n%s\n", b.String())
		}
	}
	switch {
	case len(out.Changed) == 0:
		fmt.Fprintln(w, "nothing to publish: every file is the published text")
	case dryRun:
		fmt.Fprintf(w, "dry run: nothing published (%s would get a new version)\n", strings.Join(out.Changed, ", "))
	default:
		for _, v := range out.Versions {
			pinned := ""
			if v.Pinned {
				pinned = ", pinned: running leads keep their version"
			}
			fmt.Fprintf(w, "published %s version %d (was %d), applied by %s%s\n", v.Kind, v.Version, out.Current[v.Kind], v.AppliedBy, pinned)
		}
		switch {
		case out.Rollout == "follow":
			fmt.Fprintln(w, "leads in flight follow the new version; every server and worker uses it within seconds")
		case strings.HasPrefix(out.Rollout, "failed"):
			fmt.Fprintf(w, "published, but moving the leads in flight %s; they keep their version until the next apply\n", out.Rollout)
		}
	}
}

func newVersionsCommand(cl *cli) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "versions [--kind K] [-o table|json]",
		Short: "list the published content versions (TEND_URL, TEND_API_KEY)",
		Args:  noArgs,
	}
	kind := cmd.Flags().String("kind", "", "only this kind (sequences, scoring, sales, templates)")
	completeKinds(cmd, "kind")
	output := addOutputFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		return runVersions(cmd.Context(), *kind, *output, cl.stdout, cl.getenv)
	}
	return cmd
}

func runVersions(ctx context.Context, kind string, output outputFormat, stdout io.Writer, getenv func(string) string) error {
	if kind != "" {
		if _, err := content.ParseKind(kind); err != nil {
			return fmt.Errorf("%w: --kind: %v", errUsage, err)
		}
	}
	c, err := newAdminClient(getenv)
	if err != nil {
		return err
	}
	var out struct {
		Versions []struct {
			Kind       string    `json:"kind"`
			Version    int       `json:"version"`
			Checksum   string    `json:"checksum"`
			AppliedBy  string    `json:"applied_by"`
			AppliedAt  time.Time `json:"applied_at"`
			Pinned     bool      `json:"pinned"`
			RollbackOf *int      `json:"rollback_of,omitempty"`
		} `json:"versions"`
		InUse map[string]int `json:"in_use"`
	}
	raw, err := c.get(ctx, "/api/content/versions?kind="+url.QueryEscape(kind))
	if err != nil {
		return err
	}
	if output == outputJSON {
		return writeJSON(stdout, raw)
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		return fmt.Errorf("read the answer of %s: %w", c.base, err)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KIND\tVERSION\tAPPLIED AT (UTC)\tBY\tPINNED\tROLLBACK OF\tCHECKSUM\t")
	for _, v := range out.Versions {
		n := fmt.Sprint(v.Version)
		if out.InUse[v.Kind] == v.Version {
			n += " *"
		}
		pinned, rb := "", ""
		if v.Pinned {
			pinned = "yes"
		}
		if v.RollbackOf != nil {
			rb = fmt.Sprint(*v.RollbackOf)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%.12s\t\n", v.Kind, n, v.AppliedAt.UTC().Format("2006-01-02 15:04:05"), v.AppliedBy, pinned, rb, v.Checksum)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(stdout, "* in use by the server that answered")
	return nil
}

func newPauseCommand(cl *cli, resume bool) *cobra.Command {
	cmd := &cobra.Command{
		Use:               "pause SEQUENCE [--step S]",
		Short:             "hold a running sequence (or one step): leads keep their place",
		Args:              exactArgs(1, "SEQUENCE (one sequence id)"),
		ValidArgsFunction: cobra.NoFileCompletions,
	}
	if resume {
		cmd.Use, cmd.Short = "resume SEQUENCE [--step S] [--ramp 1h]", "let it go on; sends that fell due are spread over the ramp"
	}
	step := cmd.Flags().String("step", "", "only this step of the sequence")
	ramp := new(string)
	if resume {
		ramp = cmd.Flags().String("ramp", "", "spread the sends that fell due while paused over this long (e.g. 1h); default: at once")
	}
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		return runPause(cmd.Context(), resume, args[0], *step, *ramp, cl.stdout, cl.getenv)
	}
	return cmd
}

// runPause pauses (resume false) or resumes a sequence or one of its steps.
func runPause(ctx context.Context, resume bool, seq, step, ramp string, stdout io.Writer, getenv func(string) string) error {
	c, err := newAdminClient(getenv)
	if err != nil {
		return err
	}
	req := map[string]string{"step": step}
	what := seq
	if step != "" {
		what += " step " + step
	}
	if !resume {
		var out struct {
			Already bool `json:"already_paused"`
		}
		if err := c.call(ctx, http.MethodPost, "/api/sequences/"+url.PathEscape(seq)+"/pause", req, &out); err != nil {
			return err
		}
		if out.Already {
			fmt.Fprintf(stdout, "%s was paused already\n", what)
		} else {
			fmt.Fprintf(stdout, "paused %s: leads hold their place; nothing is skipped; `tend sequences resume %s` lets them go on\n", what, seq)
		}
		return nil
	}
	req["ramp"] = ramp
	var out struct {
		WasPaused bool   `json:"was_paused"`
		Released  int    `json:"released"`
		Ramp      string `json:"ramp"`
	}
	if err := c.call(ctx, http.MethodPost, "/api/sequences/"+url.PathEscape(seq)+"/resume", req, &out); err != nil {
		return err
	}
	if !out.WasPaused {
		fmt.Fprintf(stdout, "%s was not paused", what)
	} else {
		fmt.Fprintf(stdout, "resumed %s", what)
	}
	if out.Released > 0 && out.Ramp != "" && out.Ramp != "0s" {
		fmt.Fprintf(stdout, "; %d held send(s) go out over %s\n", out.Released, out.Ramp)
	} else {
		fmt.Fprintf(stdout, "; %d held send(s) go out now\n", out.Released)
	}
	return nil
}
