package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
)

// listWhole is the annotation of a group that the usage lists as one line (completion) rather
// than a line per subcommand.
const listWhole = "tend/list-whole"

// synopsisWidth is the width of the command column of the usage; a longer synopsis gets a line
// of its own, its summary on the next.
const synopsisWidth = 26

// writeHelp is the help of every command: what it does, then its usage. Help is printed on
// stdout and never runs the command.
func writeHelp(cmd *cobra.Command, _ []string) {
	w := cmd.OutOrStdout()
	if cmd.HasParent() {
		fmt.Fprintf(w, "%s — %s\n\n", cmd.CommandPath(), cmd.Short)
	} else {
		fmt.Fprintf(w, "%s — %s\n\n", cmd.Name(), cmd.Short)
	}
	if cmd.Long != "" {
		fmt.Fprintf(w, "%s\n\n", strings.TrimSpace(cmd.Long))
	}
	_, _ = io.WriteString(w, usage(cmd))
}

// usage is a command's usage: the synopsis of every command under it, grouped as tend groups
// them (for tend itself and a group such as `tend sequences`), or its own synopsis and flags.
func usage(cmd *cobra.Command) string {
	var b strings.Builder
	b.WriteString("Usage:\n")
	if hasListed(cmd) {
		if !cmd.HasParent() {
			fmt.Fprintf(&b, "  %s COMMAND [ARGUMENTS] [FLAGS]\n", cmd.Name())
			for _, g := range cmd.Groups() {
				fmt.Fprintf(&b, "\n%s\n", g.Title)
				for _, sub := range cmd.Commands() {
					if sub.GroupID == g.ID && listed(sub) {
						writeSynopses(&b, sub)
					}
				}
			}
		} else {
			for _, sub := range cmd.Commands() {
				if listed(sub) {
					writeSynopses(&b, sub)
				}
			}
		}
	} else {
		fmt.Fprintf(&b, "  %s\n", cmd.UseLine())
	}
	if cmd.Example != "" {
		fmt.Fprintf(&b, "\nExamples:\n%s\n", strings.TrimRight(cmd.Example, "\n"))
	}
	if flags := cmd.LocalFlags().FlagUsages(); flags != "" {
		fmt.Fprintf(&b, "\nFlags:\n%s", flags)
	}
	b.WriteString("\nConfiguration comes from the environment; see the README.")
	if hasListed(cmd) {
		b.WriteString(" `tend COMMAND --help` tells more.")
	}
	b.WriteString("\n")
	return b.String()
}

// listed tells whether the usage lists a subcommand: every command a user may call, and help.
func listed(cmd *cobra.Command) bool {
	return cmd.IsAvailableCommand() || (cmd.Name() == "help" && cmd.HasParent() && !cmd.Parent().HasParent())
}

func hasListed(cmd *cobra.Command) bool {
	if cmd.Annotations[listWhole] != "" {
		return false
	}
	for _, sub := range cmd.Commands() {
		if listed(sub) {
			return true
		}
	}
	return false
}

// writeSynopses writes the synopsis and summary of cmd, or of each command under it.
func writeSynopses(b *strings.Builder, cmd *cobra.Command) {
	if hasListed(cmd) {
		for _, sub := range cmd.Commands() {
			if listed(sub) {
				writeSynopses(b, sub)
			}
		}
		return
	}
	line := cmd.UseLine()
	if len(line) > synopsisWidth+len("tend ") {
		fmt.Fprintf(b, "  %s\n  %-*s %s\n", line, synopsisWidth+len("tend "), "", cmd.Short)
		return
	}
	fmt.Fprintf(b, "  %-*s %s\n", synopsisWidth+len("tend "), line, cmd.Short)
}

// joinNames lists names as "a, b or c".
func joinNames(names []string) string {
	switch len(names) {
	case 0:
		return ""
	case 1:
		return names[0]
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}
