package sequence

import "github.com/tendhq/tend/internal/yamlcheck"

// Diagnostic is one mistake in a configuration file ("file:line: message").
type Diagnostic = yamlcheck.Diagnostic

// Diagnostics is every mistake found in a file, in line order; it is an error.
type Diagnostics = yamlcheck.Diagnostics
