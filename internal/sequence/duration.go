package sequence

import (
	"time"

	"github.com/tendhq/tend/internal/yamlcheck"
)

// ParseDuration parses a wait such as "90s", "2m", "3d", "1w" or "1d12h": Go's duration syntax
// plus d (24h) and w (7d). See yamlcheck.ParseDuration.
func ParseDuration(s string) (time.Duration, error) { return yamlcheck.ParseDuration(s) }
