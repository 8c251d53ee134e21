package main

import (
	"time"

	"github.com/spf13/cobra"
)

// The commands of tend that are a few lines each: the parts, migrate, and the groups with their
// lint commands. The commands with more to them are built beside what they run.

func newServerCommand(cl *cli) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "server [--allow-examples]",
		Short: "run the HTTP API (needs DATABASE_URL, TEMPORAL_ADDRESS)",
		Args:  noArgs,
	}
	allow := cmd.Flags().Bool("allow-examples", false, "start with the demo sender identity or example team (as TEND_ALLOW_EXAMPLES=1)")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		return runServer(cmd.Context(), *allow, cl.stderr, cl.getenv)
	}
	return cmd
}

func newWorkerCommand(cl *cli) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "worker [--allow-examples]",
		Short: "run workflows and activities (needs DATABASE_URL, TEMPORAL_ADDRESS, SMTP_URL)",
		Args:  noArgs,
	}
	allow := cmd.Flags().Bool("allow-examples", false, "start with the demo sender identity or example team (as TEND_ALLOW_EXAMPLES=1)")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		return runWorker(cmd.Context(), *allow, cl.stderr, cl.getenv)
	}
	return cmd
}

func newMigrateCommand(cl *cli) *cobra.Command {
	return &cobra.Command{
		Use:   "migrate",
		Short: "apply database migrations (needs DATABASE_URL)",
		Args:  noArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return runMigrate(cmd.Context(), cl.stdout, cl.getenv) },
	}
}

// group is a command that only holds subcommands, such as `tend sequences`.
func group(name, short string, subs ...*cobra.Command) *cobra.Command {
	cmd := &cobra.Command{Use: name, Short: short}
	cmd.AddCommand(subs...)
	return cmd
}

func newSequencesCommand(cl *cli) *cobra.Command {
	lint := &cobra.Command{
		Use:   "lint FILE...",
		Short: "validate sequence files; errors as file:line: message",
		RunE:  func(_ *cobra.Command, files []string) error { return runLint(files, cl.stdout, cl.getenv) },
	}
	return group("sequences", "lint, simulate, pause and resume nurture sequences",
		lint, newSimulateCommand(cl, time.Now), newPauseCommand(cl, false), newPauseCommand(cl, true))
}

func newScoringCommand(cl *cli) *cobra.Command {
	return group("scoring", "check scoring models", &cobra.Command{
		Use:   "lint FILE...",
		Short: "validate scoring models the same way",
		RunE:  func(_ *cobra.Command, files []string) error { return runScoringLint(files, cl.stdout) },
	})
}

func newSalesCommand(cl *cli) *cobra.Command {
	return group("sales", "check sales team files", &cobra.Command{
		Use:   "lint FILE...",
		Short: "validate sales team files the same way",
		RunE:  func(_ *cobra.Command, files []string) error { return runSalesLint(files, cl.stdout, cl.getenv) },
	})
}

func newLeadsCommand(cl *cli) *cobra.Command {
	return group("leads", "import, list and look at leads", newImportCommand(cl), newLeadsListCommand(cl), newLeadsShowCommand(cl))
}

func newReportsCommand(cl *cli) *cobra.Command {
	return group("reports", "the funnel, the sales SLA and how sequences perform",
		newFunnelCommand(cl), newSLACommand(cl), newReportSequencesCommand(cl))
}
