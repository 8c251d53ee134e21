package sequence

import (
	"fmt"
	"strings"
)

// Diagnostic is one mistake in a sequences file.
type Diagnostic struct {
	File string `json:"file"`
	// Line is 1-based; 0 when the YAML parser could not say where.
	Line    int    `json:"line"`
	Message string `json:"message"`
}

// String formats the diagnostic as "file:line: message", the form editors and CI logs link.
func (d Diagnostic) String() string {
	if d.Line <= 0 {
		return fmt.Sprintf("%s: %s", d.File, d.Message)
	}
	return fmt.Sprintf("%s:%d: %s", d.File, d.Line, d.Message)
}

// Diagnostics is every mistake found in a file, in line order.
type Diagnostics []Diagnostic

// Error returns one diagnostic per line.
func (ds Diagnostics) Error() string {
	lines := make([]string, len(ds))
	for i, d := range ds {
		lines[i] = d.String()
	}
	return strings.Join(lines, "\n")
}
