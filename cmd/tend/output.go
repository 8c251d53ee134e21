package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/tendhq/tend/internal/content"
)

// outputFormat is how a listing or report command prints: --output (-o) table or json.
type outputFormat string

// The output formats: an aligned table for people, or the API's JSON as it is for scripts.
const (
	outputTable outputFormat = "table"
	outputJSON  outputFormat = "json"
)

func (o *outputFormat) String() string { return string(*o) }

// Set refuses anything but the formats, so a typo is a usage error before anything is asked.
func (o *outputFormat) Set(v string) error {
	switch outputFormat(v) {
	case outputTable, outputJSON:
		*o = outputFormat(v)
		return nil
	}
	return fmt.Errorf("must be table or json")
}

func (o *outputFormat) Type() string { return "table|json" }

// addOutputFlag gives cmd the --output (-o) flag every listing and report command has.
func addOutputFlag(cmd *cobra.Command) *outputFormat {
	o := outputTable
	cmd.Flags().VarP(&o, "output", "o", "table, or json (the API's answer as it is)")
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{string(outputTable), string(outputJSON)}, cobra.ShellCompDirectiveNoFileComp))
	return &o
}

// writeJSON writes a JSON answer indented, as it came.
func writeJSON(w io.Writer, raw []byte) error {
	var b bytes.Buffer
	if err := json.Indent(&b, raw, "", "  "); err != nil {
		return fmt.Errorf("the answer is not JSON: %w", err)
	}
	b.WriteByte('\n')
	_, err := w.Write(b.Bytes())
	return err
}

// completeKinds completes the content kinds for the flag named name.
func completeKinds(cmd *cobra.Command, name string) {
	kinds := make([]string, len(content.Kinds))
	for i, k := range content.Kinds {
		kinds[i] = string(k)
	}
	_ = cmd.RegisterFlagCompletionFunc(name, cobra.FixedCompletions(kinds, cobra.ShellCompDirectiveNoFileComp))
}

// exactArgs is the argument check of a command that takes n arguments, described by what.
func exactArgs(n int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return fmt.Errorf("%w: %s %s, got %d argument(s)", errUsage, cmd.CommandPath(), what, len(args))
		}
		return nil
	}
}
