// Command tend is the one binary of tend, the lead-nurturing workflow engine: `tend dev` runs the
// whole stack on one machine; `tend server` and `tend worker` run the parts separately against a
// Temporal cluster and Postgres; the other subcommands migrate, lint and import.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
	_ "time/tzdata" // send windows must resolve zones the same way on every machine
)

// command is one line of the usage: how a command is called and what it does.
type command struct {
	name    string // as typed after "tend", e.g. "sequences lint"
	args    string // what follows the name
	summary string
}

// commands is every command tend has, in the order the usage lists them; the usage of `tend`
// and of each command (`tend dev --help`) is made from it.
var commands = []command{
	{"dev", "[flags]", "run the whole stack on this machine (Temporal, Postgres, SMTP capture, UI)"},
	{"server", "", "run the HTTP API (needs DATABASE_URL, TEMPORAL_ADDRESS)"},
	{"worker", "", "run workflows and activities (needs DATABASE_URL, TEMPORAL_ADDRESS, SMTP_URL)"},
	{"migrate", "", "apply database migrations (needs DATABASE_URL)"},
	{"cluster", "[flags]", "run the production topology here: Temporal server on Postgres, 2 servers, 3 workers (make cluster)"},
	{"apply", "[--dry-run] [--pin] [--kind K] FILE|DIR... | --rollback N --kind K",
		"lint, diff, dry-run and publish content to a running tend (TEND_URL, TEND_API_KEY)"},
	{"versions", "[--kind K] [--output json]", "list the published content versions (TEND_URL, TEND_API_KEY)"},
	{"sequences lint", "FILE...", "validate sequence files; errors as file:line: message"},
	{"sequences simulate", "FILE|--version N --segment ID [--at TIME] [--variant STEP=V] [--holdout] [--lead ID] …",
		"when each email would reach a lead: the real workflow, time-skipped"},
	{"sequences pause", "SEQUENCE [--step S]", "hold a running sequence (or one step): leads keep their place"},
	{"sequences resume", "SEQUENCE [--step S] [--ramp 1h]", "let it go on; sends that fell due are spread over the ramp"},
	{"scoring lint", "FILE...", "validate scoring models the same way"},
	{"sales lint", "FILE...", "validate sales team files the same way"},
	{"leads import", "[--batch NAME] [--quiet] FILE.csv", "import leads from a CSV file (needs DATABASE_URL)"},
	{"reports sequences", "[--since 30d] [--output json]", "how sequences, steps and A/B variants perform, with conversions and holdout lift (needs DATABASE_URL)"},
	{"bench", "[flags]", "measure a private stack: captures, first emails, events, Temporal cost, memory"},
	{"temporal", "--db FILE [--port N]", "run only the embedded Temporal server (SQLite) until SIGTERM"},
	{"version", "", "print the version"},
	{"help", "[COMMAND]", "print this help, or a command's (as does COMMAND --help)"},
}

// usage is the help of `tend` itself; group, when not "", limits it to one group of subcommands
// such as "sequences".
func usage(group string) string {
	var b strings.Builder
	b.WriteString("tend — lead nurturing on Temporal\n\nUsage:\n")
	for _, c := range commands {
		if group != "" && !strings.HasPrefix(c.name, group+" ") {
			continue
		}
		call := strings.TrimSpace(c.name + " " + c.args)
		if len(call) > 24 {
			fmt.Fprintf(&b, "  tend %s\n  %-29s %s\n", call, "", c.summary)
		} else {
			fmt.Fprintf(&b, "  tend %-24s %s\n", call, c.summary)
		}
	}
	b.WriteString("\nConfiguration comes from the environment; see the README. `tend COMMAND --help` tells more.\n")
	return b.String()
}

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// errUsage marks errors caused by how tend was called (exit status 2).
var errUsage = errors.New("usage")

// helpRequested is what a command returns when it was asked for help (-h, --help or help): its
// usage is in it, and run prints it on stdout and succeeds. A command returns it before it
// touches anything, so asking for help never starts or changes a thing.
type helpRequested struct{ usage string }

func (h *helpRequested) Error() string { return "help requested" }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "tend:", err)
		if errors.Is(err, errUsage) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	err := dispatch(ctx, args, stdout, stderr, getenv)
	var help *helpRequested
	if errors.As(err, &help) {
		fmt.Fprint(stdout, help.usage)
		return nil
	}
	return err
}

func dispatch(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage(""))
		return fmt.Errorf("%w: no command given", errUsage)
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "dev":
		return runDev(ctx, rest, stdout, stderr, getenv)
	case "server":
		return runServer(ctx, rest, stderr, getenv)
	case "worker":
		return runWorker(ctx, rest, stderr, getenv)
	case "migrate":
		return runMigrate(ctx, rest, stdout, stderr, getenv)
	case "cluster":
		o := defaultClusterOptions()
		fs := newFlags("cluster", stderr)
		fs.StringVar(&o.dir, "dir", o.dir, "data directory: Postgres, Temporal's configuration, keys, logs")
		fs.IntVar(&o.servers, "servers", o.servers, "tend servers behind the load balancer")
		fs.IntVar(&o.workers, "workers", o.workers, "tend workers")
		fs.StringVar(&o.httpAddr, "http", o.httpAddr, "load balancer listen address: tend's public URL")
		fs.StringVar(&o.inboxAddr, "inbox", o.inboxAddr, "SMTP sink's inbox page listen address")
		fs.IntVar(&o.temporalPort, "temporal-port", o.temporalPort, "Temporal frontend port")
		fs.StringVar(&o.temporalBin, "temporal-server", o.temporalBin, "Temporal server binary (make cluster builds it)")
		fs.StringVar(&o.sqlTool, "sql-tool", o.sqlTool, "temporal-sql-tool binary (make cluster builds it)")
		if err := parseFlags(fs, rest); err != nil {
			return err
		}
		return runCluster(ctx, o, stdout, getenv)
	case "apply":
		return runApply(ctx, rest, stdout, stderr, getenv)
	case "versions":
		return runVersions(ctx, rest, stdout, stderr, getenv)
	case "sequences", "scoring", "sales", "leads", "reports":
		sub, err := subcommand(cmd, rest, stderr)
		if err != nil {
			return err
		}
		rest = rest[1:]
		switch sub {
		case "sequences lint":
			files, err := fileArgs(sub, rest, stderr)
			if err != nil {
				return err
			}
			return runLint(files, stdout, getenv)
		case "sequences simulate":
			return runSimulate(ctx, rest, stdout, stderr, getenv, time.Now())
		case "sequences pause", "sequences resume":
			return runPause(ctx, sub == "sequences resume", rest, stdout, stderr, getenv)
		case "scoring lint":
			files, err := fileArgs(sub, rest, stderr)
			if err != nil {
				return err
			}
			return runScoringLint(files, stdout)
		case "sales lint":
			files, err := fileArgs(sub, rest, stderr)
			if err != nil {
				return err
			}
			return runSalesLint(files, stdout, getenv)
		case "reports sequences":
			return runReportSequences(ctx, rest, stdout, stderr, getenv)
		default: // "leads import", the only one left
			return runImport(ctx, rest, stdout, stderr, getenv)
		}
	case "bench":
		return runBench(ctx, rest, stdout, stderr, getenv)
	case "temporal":
		return runTemporal(ctx, rest, stdout, stderr, getenv)
	case "version":
		if err := parseFlags(newFlags("version", stderr), rest); err != nil {
			return err
		}
		fmt.Fprintln(stdout, "tend", version)
		return nil
	case "--version":
		fmt.Fprintln(stdout, "tend", version)
		return nil
	case "help", "-h", "-help", "--help":
		if cmd == "help" && len(rest) > 0 {
			// Every command answers --help without doing anything else.
			return dispatch(ctx, append(rest, "--help"), stdout, stderr, getenv)
		}
		return &helpRequested{usage: usage("")}
	default:
		fmt.Fprint(stderr, usage(""))
		return fmt.Errorf("%w: unknown command %q", errUsage, cmd)
	}
}

// subcommand resolves `tend GROUP SUB` to the full name of a command in commands ("sequences
// lint"); help for the group, with no or an unknown SUB, lists the group's commands.
func subcommand(group string, rest []string, stderr io.Writer) (string, error) {
	if len(rest) > 0 {
		switch rest[0] {
		case "help", "-h", "-help", "--help":
			return "", &helpRequested{usage: usage(group)}
		}
		for _, c := range commands {
			if c.name == group+" "+rest[0] {
				return c.name, nil
			}
		}
	}
	fmt.Fprint(stderr, usage(group))
	if len(rest) == 0 {
		return "", fmt.Errorf("%w: tend %s needs a subcommand", errUsage, group)
	}
	return "", fmt.Errorf("%w: unknown command %q", errUsage, group+" "+rest[0])
}

func newLogger(w io.Writer, level string) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(level))
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l}))
}

// newFlags returns the flag set of the command named name in commands; its usage is what -h and
// --help print.
func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("tend "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { writeCommandUsage(fs.Output(), name, fs) }
	return fs
}

func writeCommandUsage(w io.Writer, name string, fs *flag.FlagSet) {
	c := command{name: name}
	for _, x := range commands {
		if x.name == name {
			c = x
		}
	}
	fmt.Fprintf(w, "tend %s — %s\n\nUsage:\n  tend %s\n", c.name, c.summary, strings.TrimSpace(c.name+" "+c.args))
	hasFlags := false
	fs.VisitAll(func(*flag.Flag) { hasFlags = true })
	if hasFlags {
		fmt.Fprintln(w, "\nFlags:")
		fs.PrintDefaults()
	}
	fmt.Fprintln(w, "\nConfiguration comes from the environment; see the README.")
}

// parseFlags parses the flags of a command that takes no other arguments; `help` in their place
// asks for help too.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := parseFlagsAndArgs(fs, args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return nil
	}
	if fs.NArg() == 1 && fs.Arg(0) == "help" {
		return parseFlagsAndArgs(fs, []string{"--help"})
	}
	fs.Usage()
	return fmt.Errorf("%w: %s takes no arguments, got %q", errUsage, fs.Name(), fs.Args())
}

// parseFlagsAndArgs parses the flags of a command; the arguments after them are left in fs.Args.
// -h or --help returns a *helpRequested carrying the command's usage.
func parseFlagsAndArgs(fs *flag.FlagSet, args []string) error {
	out := fs.Output()
	var buf bytes.Buffer
	fs.SetOutput(&buf)
	err := fs.Parse(args)
	fs.SetOutput(out)
	if errors.Is(err, flag.ErrHelp) {
		return &helpRequested{usage: buf.String()}
	}
	_, _ = out.Write(buf.Bytes())
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	return nil
}

// fileArgs parses the arguments of a command that takes files and no flags (the lint commands),
// so that --help is help and not a file name (`--` ends the flags for a file named -x).
func fileArgs(name string, args []string, stderr io.Writer) ([]string, error) {
	fs := newFlags(name, stderr)
	if err := parseFlagsAndArgs(fs, args); err != nil {
		return nil, err
	}
	return fs.Args(), nil
}
