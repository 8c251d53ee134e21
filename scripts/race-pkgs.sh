#!/usr/bin/env bash
# Prints the packages `make race` tests: every package with tests whose test binary does not link
# the Temporal server (go.temporal.io/server/...). Those that do (cmd/tend, e2e) take minutes to
# build with the race detector and are covered by `make unit`; e2e/chaos is left out too: its test
# drives tend's parts as separate processes, so the race detector in its binary watches only the
# harness, for a run of minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
go list -test -f '{{if .ForTest}}{{else}}{{.ImportPath}}{{range .Deps}} {{.}}{{end}}{{end}}' ./... |
	awk '$1 ~ /\.test$/ {
		pkg = substr($1, 1, length($1) - 5)
		if (pkg ~ /\/e2e(\/|$)/) next
		for (i = 2; i <= NF; i++) if ($i ~ /^go\.temporal\.io\/server(\/|$)/) next
		print pkg
	}'
