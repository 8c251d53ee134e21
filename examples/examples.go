// Package examples ships the sample configuration that `tend dev` loads: the scoring model
// (scoring.yaml), sequences whose waits are minutes (sequences.yaml) and a production-style
// variant in days (sequences-production.yaml).
package examples

import "embed"

// FS holds the example files, so that `tend dev` works from any directory.
//
//go:embed *.yaml
var FS embed.FS
