// Package examples ships the sample configuration that `tend dev` loads: the scoring model
// (scoring.yaml), sequences whose waits are minutes (sequences.yaml) and a sales team whose SLA is
// minutes (sales.yaml). Production-style variants count days and business hours
// (sequences-production.yaml, sales-production.yaml).
package examples

import "embed"

// FS holds the example files, so that `tend dev` works from any directory.
//
//go:embed *.yaml
var FS embed.FS
