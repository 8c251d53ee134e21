// Command tend is the one binary of tend, the lead-nurturing workflow engine: `tend dev` runs the
// whole stack on one machine; `tend server` and `tend worker` run the parts separately against a
// Temporal cluster and Postgres; the other subcommands migrate, lint and import.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"
	_ "time/tzdata" // send windows must resolve zones the same way on every machine
)

const usage = `tend — lead nurturing on Temporal

Usage:
  tend dev                      run the whole stack on this machine (Temporal, Postgres, SMTP capture, UI)
  tend server                   run the HTTP API (needs DATABASE_URL, TEMPORAL_ADDRESS)
  tend worker                   run workflows and activities (needs DATABASE_URL, TEMPORAL_ADDRESS, SMTP_URL)
  tend migrate                  apply database migrations (needs DATABASE_URL)
  tend sequences lint FILE...   validate sequence files; errors as file:line: message
  tend sequences simulate FILE --segment ID [--at TIME] [--tz ZONE] [--clicks STEP,…]
                                when each email would reach a lead: the real workflow, time-skipped
  tend scoring lint FILE...     validate scoring models the same way
  tend sales lint FILE...       validate sales team files the same way
  tend leads import FILE.csv    import leads from a CSV file (needs DATABASE_URL)
  tend bench                    measure a private stack: captures, first emails, events, Temporal cost, memory
  tend temporal --db FILE [--port N]  run only the embedded Temporal server (SQLite) until SIGTERM
  tend version                  print the version

Configuration comes from the environment; see the README.
`

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// errUsage marks errors caused by how tend was called (exit status 2).
var errUsage = errors.New("usage")

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
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
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
	case "sequences":
		switch {
		case len(rest) > 0 && rest[0] == "lint":
			return runLint(rest[1:], stdout, getenv)
		case len(rest) > 0 && rest[0] == "simulate":
			return runSimulate(rest[1:], stdout, stderr, getenv, time.Now())
		}
		return fmt.Errorf("%w: tend sequences lint FILE... | tend sequences simulate FILE --segment ID", errUsage)
	case "scoring":
		if len(rest) == 0 || rest[0] != "lint" {
			return fmt.Errorf("%w: tend scoring lint FILE...", errUsage)
		}
		return runScoringLint(rest[1:], stdout)
	case "sales":
		if len(rest) == 0 || rest[0] != "lint" {
			return fmt.Errorf("%w: tend sales lint FILE...", errUsage)
		}
		return runSalesLint(rest[1:], stdout, getenv)
	case "leads":
		if len(rest) == 0 || rest[0] != "import" {
			return fmt.Errorf("%w: tend leads import FILE.csv", errUsage)
		}
		return runImport(ctx, rest[1:], stdout, stderr, getenv)
	case "bench":
		return runBench(ctx, rest, stdout, stderr, getenv)
	case "temporal":
		return runTemporal(ctx, rest, stdout, stderr, getenv)
	case "version", "--version":
		fmt.Fprintln(stdout, "tend", version)
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("%w: unknown command %q", errUsage, cmd)
	}
}

func newLogger(w io.Writer, level string) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(level))
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l}))
}

func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("tend "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	return nil
}
