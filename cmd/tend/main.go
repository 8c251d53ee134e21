// Command tend is the one binary of tend, the lead-nurturing workflow engine: `tend dev` runs the
// whole stack on one machine; `tend server` and `tend worker` run the parts separately against a
// Temporal cluster and Postgres; the other subcommands migrate, lint, import, publish and report.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	_ "time/tzdata" // send windows must resolve zones the same way on every machine

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// errUsage marks errors caused by how tend was called (exit status 2): an unknown command or
// flag, a bad flag value, a missing or extra argument.
var errUsage = errors.New("usage")

// usageError marks err as a usage error, unless it is one already.
func usageError(err error) error {
	if err == nil || errors.Is(err, errUsage) {
		return err
	}
	return fmt.Errorf("%w: %w", errUsage, err)
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(exitCode(err, os.Stderr))
}

// exitCode prints err and tells the exit status it means: 0 success, 2 a usage error, 1 any
// other failure.
func exitCode(err error, stderr io.Writer) int {
	if err == nil {
		return 0
	}
	fmt.Fprintln(stderr, "tend:", err)
	if errors.Is(err, errUsage) {
		return 2
	}
	return 1
}

// cli is what every command is given by run: where it writes and how it reads the environment.
type cli struct {
	stdout, stderr io.Writer
	getenv         func(string) string
}

// run runs tend with args (without the program name). Help, asked for in any way, is printed on
// stdout and returns nil; a usage error prints the usage of the command on stderr and returns an
// error that wraps errUsage.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	root := newRootCommand(&cli{stdout: stdout, stderr: stderr, getenv: getenv})
	if args == nil {
		args = []string{} // nil would make cobra read os.Args
	}
	root.SetArgs(args)
	cmd, err := root.ExecuteContextC(ctx)
	if errors.Is(err, errUsage) && cmd != nil {
		fmt.Fprint(stderr, usage(cmd))
	}
	return err
}

// Command groups of the usage, in the order it lists them.
const (
	groupRun     = "run"
	groupContent = "content"
	groupLeads   = "leads"
	groupOther   = "other"
)

// newRootCommand builds the whole command tree of tend, complete with the help and completion
// commands, so that a test can walk every command there is.
func newRootCommand(cl *cli) *cobra.Command {
	root := &cobra.Command{
		Use:     "tend",
		Short:   "lead nurturing on Temporal",
		Version: version,
		// run prints the usage of a usage error, main the error: once each.
		SilenceErrors: true,
		SilenceUsage:  true,
	}
	root.SetOut(cl.stdout)
	root.SetErr(cl.stderr)
	root.SetVersionTemplate("tend {{.Version}}\n")
	root.AddGroup(
		&cobra.Group{ID: groupRun, Title: "Run tend:"},
		&cobra.Group{ID: groupContent, Title: "Write and publish content (sequences, scoring, sales team, templates):"},
		&cobra.Group{ID: groupLeads, Title: "Leads and reports:"},
		&cobra.Group{ID: groupOther, Title: "Other:"},
	)
	add := func(group string, cmds ...*cobra.Command) {
		for _, cmd := range cmds {
			cmd.GroupID = group
			root.AddCommand(cmd)
		}
	}
	add(groupRun, newDevCommand(cl), newServerCommand(cl), newWorkerCommand(cl), newMigrateCommand(cl), newClusterCommand(cl), newTemporalCommand(cl), newHealthcheckCommand(cl))
	add(groupContent, newApplyCommand(cl), newVersionsCommand(cl), newSequencesCommand(cl), newScoringCommand(cl), newSalesCommand(cl))
	add(groupLeads, newLeadsCommand(cl), newReportsCommand(cl))
	add(groupOther, newBenchCommand(cl), newVersionCommand(cl))

	help := newHelpCommand(root)
	help.GroupID = groupOther
	root.SetHelpCommand(help)
	root.InitDefaultHelpCmd()
	root.SetCompletionCommandGroupID(groupOther)
	root.InitDefaultCompletionCmd()
	for _, cmd := range root.Commands() {
		if cmd.Name() == "completion" {
			cmd.Use = "completion bash|zsh|fish|powershell"
			cmd.Short = "print the shell completion script, e.g. source <(tend completion bash)"
			cmd.Annotations = map[string]string{listWhole: "true"}
		}
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError(err) })
	root.SetHelpFunc(writeHelp)
	root.SetUsageFunc(func(cmd *cobra.Command) error {
		_, err := io.WriteString(cmd.OutOrStderr(), usage(cmd))
		return err
	})
	finish(root)
	return root
}

// finish makes every command of the tree behave alike: arguments that do not fit are a usage
// error; a group (root included) run without a subcommand, or with an unknown one, is a usage
// error, and `GROUP help` is its help; the synopsis in Use is the whole usage line.
func finish(cmd *cobra.Command) {
	cmd.DisableFlagsInUseLine = true
	if cmd.HasSubCommands() && !cmd.Runnable() {
		cmd.Args = groupArgs
		cmd.RunE = func(cmd *cobra.Command, _ []string) error {
			var subs []string
			for _, s := range cmd.Commands() {
				if s.IsAvailableCommand() {
					subs = append(subs, s.Name())
				}
			}
			if !cmd.HasParent() {
				return fmt.Errorf("%w: no command given", errUsage)
			}
			return fmt.Errorf("%w: %s needs a subcommand: %s", errUsage, cmd.CommandPath(), joinNames(subs))
		}
	}
	args := cmd.Args
	if args == nil {
		args = cobra.ArbitraryArgs
	}
	cmd.Args = func(cmd *cobra.Command, a []string) error {
		err := args(cmd, a)
		if errors.Is(err, errHelpArg) {
			return err
		}
		return usageError(err)
	}
	for _, sub := range cmd.Commands() {
		finish(sub)
	}
}

// errHelpArg is what an argument check returns for `COMMAND help`: cobra prints the command's
// help for it and succeeds, as it does for --help.
var errHelpArg = pflag.ErrHelp

// groupArgs checks the arguments of a group run without a known subcommand: none (the group's
// RunE says a subcommand is needed), or help.
func groupArgs(cmd *cobra.Command, args []string) error {
	switch {
	case len(args) == 0:
		return nil
	case args[0] == "help":
		return errHelpArg
	}
	msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
	if cmd.SuggestionsMinimumDistance <= 0 {
		cmd.SuggestionsMinimumDistance = 2 // cobra's own default, which it sets only where it suggests itself
	}
	if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
		msg += fmt.Sprintf(" (did you mean %s?)", joinNames(s))
	}
	return fmt.Errorf("%w: %s", errUsage, msg)
}

// noArgs is the argument check of a command that takes none; `COMMAND help` asks for its help,
// as it always has.
func noArgs(cmd *cobra.Command, args []string) error {
	switch {
	case len(args) == 0:
		return nil
	case len(args) == 1 && args[0] == "help":
		return errHelpArg
	}
	return fmt.Errorf("%w: %s takes no arguments, got %q", errUsage, cmd.CommandPath(), args)
}

func newVersionCommand(cl *cli) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "print the version",
		Args:  noArgs,
		RunE: func(*cobra.Command, []string) error {
			_, err := fmt.Fprintln(cl.stdout, "tend", version)
			return err
		},
	}
}

// newHelpCommand is `tend help [COMMAND]`: the help of tend or of one command, as COMMAND
// --help prints it; a command that does not exist is a usage error.
func newHelpCommand(root *cobra.Command) *cobra.Command {
	return &cobra.Command{
		Use:   "help [COMMAND]",
		Short: "print this help, or a command's (as does COMMAND --help)",
		ValidArgsFunction: func(_ *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
			cmd, _, err := root.Find(args)
			if err != nil {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			var out []cobra.Completion
			for _, s := range cmd.Commands() {
				if s.IsAvailableCommand() {
					out = append(out, cobra.CompletionWithDesc(s.Name(), s.Short))
				}
			}
			return out, cobra.ShellCompDirectiveNoFileComp
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			target, rest, err := root.Find(args)
			if err != nil {
				return usageError(err)
			}
			if len(rest) > 0 {
				return fmt.Errorf("%w: unknown command %q for %q", errUsage, rest[0], target.CommandPath())
			}
			target.InitDefaultHelpFlag()
			target.InitDefaultVersionFlag() // so that tend help lists --version as tend --help does
			return target.Help()
		},
	}
}

func newLogger(w io.Writer, level string) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(level))
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l}))
}
