package main

import (
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// allCommands is every command of the tree under root, root included.
func allCommands(root *cobra.Command) []*cobra.Command {
	out := []*cobra.Command{root}
	for _, c := range root.Commands() {
		out = append(out, allCommands(c)...)
	}
	return out
}

// Every way of calling tend wrongly is a usage error (exit status 2) that names what is wrong,
// with the usage of the command on stderr and nothing on stdout.
func TestUsageErrors(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		args []string
		msg  string
	}{
		{[]string{"frobnicate"}, `unknown command "frobnicate" for "tend"`},
		{[]string{"sequnces"}, `did you mean sequences?`},
		{[]string{"sequences"}, "tend sequences needs a subcommand: lint, pause, resume or simulate"},
		{[]string{"sequences", "check"}, `unknown command "check" for "tend sequences"`},
		{[]string{"completion"}, "tend completion needs a subcommand"},
		{[]string{"completion", "tcsh"}, `unknown command "tcsh" for "tend completion"`},
		{[]string{"help", "frobnicate"}, `unknown command "frobnicate" for "tend"`},
		{[]string{"dev", "--frob"}, "unknown flag: --frob"},
		{[]string{"dev", "--pg-port", "five"}, `invalid argument "five" for "--pg-port" flag`},
		{[]string{"dev", "extra"}, `tend dev takes no arguments, got ["extra"]`},
		{[]string{"migrate", "now"}, "tend migrate takes no arguments"},
		{[]string{"bench", "--timeout", "soon"}, `invalid argument "soon" for "--timeout" flag`},
		{[]string{"leads", "show"}, "tend leads show ID (one lead id), got 0 argument(s)"},
		{[]string{"leads", "show", "a", "b"}, "got 2 argument(s)"},
		{[]string{"leads", "show", "not-a-uuid"}, `"not-a-uuid" is not a lead id`},
		{[]string{"leads", "import"}, "tend leads import FILE.csv"},
		{[]string{"leads", "list", "--stage", "warmish"}, `--stage: unknown stage "warmish"`},
		{[]string{"leads", "list", "--band", "tepid"}, `--band: "tepid" is not cold, warm or hot`},
		{[]string{"leads", "list", "--limit", "0"}, "--limit: must be between 1 and 500"},
		{[]string{"reports", "funnel", "--from", "last week"}, `--from: "last week" is not a date`},
		{[]string{"reports", "sla", "--from", "2026-12-01", "--to", "2026-11-01"}, "--to 2026-11-01 is before --from 2026-12-01"},
		{[]string{"sequences", "pause"}, "tend sequences pause SEQUENCE"},
		{[]string{"sequences", "pause", "--ramp", "1h", "x"}, "unknown flag: --ramp"},
		{[]string{"apply"}, "tend apply FILE..."},
	} {
		r := tend(t, nil, c.args...)
		require.ErrorIs(t, r.err, errUsage, "%v", c.args)
		assert.Contains(t, r.err.Error(), c.msg, "%v", c.args)
		assert.Contains(t, r.stderr, "Usage:", "%v", c.args)
		assert.Empty(t, r.stdout, "%v", c.args)
	}
}

// --output (-o) is the same flag on every listing and report command: table or json, anything
// else refused with the allowed values named, before anything is asked of a server.
func TestOutputFlagIsTheSameEverywhere(t *testing.T) {
	t.Parallel()
	var listing []string
	for _, cmd := range allCommands(newRootCommand(&cli{getenv: os.Getenv})) {
		f := cmd.Flags().Lookup("output")
		if f == nil {
			continue
		}
		listing = append(listing, cmd.CommandPath())
		assert.Equal(t, "o", f.Shorthand, cmd.CommandPath())
		assert.Equal(t, "table", f.DefValue, cmd.CommandPath())
		path := strings.Fields(cmd.CommandPath())[1:]
		for _, flag := range []string{"--output", "-o"} {
			r := tend(t, nil, append(path, flag, "yaml")...)
			require.ErrorIs(t, r.err, errUsage, cmd.CommandPath())
			assert.Contains(t, r.err.Error(), `invalid argument "yaml" for "-o, --output" flag: must be table or json`)
		}
	}
	assert.ElementsMatch(t, []string{"tend versions", "tend leads list", "tend leads show", "tend reports funnel",
		"tend reports sla", "tend reports sequences"}, listing)
}

// The exit status of the tend binary: 0 for success and help, 2 for a usage error, 1 for any other
// failure; the error is on stderr after "tend:".
func TestExitCodes(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		args   []string
		status int
		stderr string
	}{
		{[]string{"version"}, 0, ""},
		{[]string{"--help"}, 0, ""},
		{[]string{"help", "leads", "list"}, 0, ""},
		{[]string{"completion", "bash"}, 0, ""},
		{[]string{}, 2, "tend: usage: no command given"},
		{[]string{"frobnicate"}, 2, `tend: usage: unknown command "frobnicate"`},
		{[]string{"dev", "--pg-port", "x"}, 2, "tend: usage: invalid argument"},
		{[]string{"leads", "show"}, 2, "tend: usage: tend leads show ID"},
		{[]string{"versions", "-o", "xml"}, 2, "must be table or json"},
		{[]string{"migrate"}, 1, "tend: DATABASE_URL is not set"},
		{[]string{"leads", "list"}, 1, "tend: TEND_API_KEY is not set"},
		{[]string{"sequences", "lint", "missing.yaml"}, 1, "tend: 1 problem(s) found"},
	} {
		cmd := exec.Command(os.Args[0], c.args...)
		cmd.Env = []string{envRunAsTend + "=1", "PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
		var stderr strings.Builder
		cmd.Stderr = &stderr
		err := cmd.Run()
		status := 0
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			status = exit.ExitCode()
		} else {
			require.NoError(t, err, "%v", c.args)
		}
		assert.Equal(t, c.status, status, "tend %v\n%s", c.args, stderr.String())
		if c.stderr == "" {
			assert.Empty(t, stderr.String(), "%v", c.args)
		} else {
			assert.Contains(t, stderr.String(), c.stderr, "%v", c.args)
		}
	}
}

// tend completion prints cobra's script for each shell; the script asks tend itself what to
// complete (tend __complete …), which names the commands, their subcommands and flag values.
func TestCompletion(t *testing.T) {
	t.Parallel()
	for _, shell := range []string{"bash", "zsh", "fish", "powershell"} {
		r := tend(t, nil, "completion", shell)
		require.NoError(t, r.err, shell)
		assert.Contains(t, r.stdout, "__complete", shell)
		assert.Greater(t, len(r.stdout), 1000, shell)
	}
	r := tend(t, nil, "completion", "bash")
	assert.Contains(t, r.stdout, "__start_tend")
	assert.Contains(t, r.stdout, "complete -o default -F __start_tend tend")

	complete := func(args ...string) []string {
		t.Helper()
		r := tend(t, nil, append([]string{cobra.ShellCompRequestCmd}, args...)...)
		require.NoError(t, r.err, r.stderr)
		var words []string
		for line := range strings.Lines(r.stdout) {
			if w, _, _ := strings.Cut(strings.TrimSpace(line), "\t"); w != "" && !strings.HasPrefix(w, ":") {
				words = append(words, w)
			}
		}
		return words
	}
	assert.Subset(t, complete(""), []string{"dev", "server", "worker", "migrate", "apply", "versions", "sequences", "scoring",
		"sales", "leads", "reports", "bench", "temporal", "version", "help", "completion"})
	assert.ElementsMatch(t, []string{"lint", "simulate", "pause", "resume"}, complete("sequences", ""))
	assert.ElementsMatch(t, []string{"import", "list", "show"}, complete("leads", ""))
	assert.ElementsMatch(t, []string{"funnel", "sla", "sequences"}, complete("reports", ""))
	assert.ElementsMatch(t, []string{"table", "json"}, complete("leads", "list", "--output", ""))
	assert.ElementsMatch(t, []string{"templates", "sequences", "scoring", "sales"}, complete("versions", "--kind", ""))
	assert.Contains(t, complete("leads", "list", "--stage", ""), "mql")
	assert.Contains(t, complete("dev", "--"), "--pg-port")
}
