package yamlcheck

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// ParseDuration parses a wait such as "90s", "2m", "3d", "1w" or "1d12h": Go's duration syntax
// plus d (24h) and w (7d), which is how marketers count. A day is always 24 hours; the send window,
// not the wait, is what keeps emails at a sensible local hour.
func ParseDuration(s string) (time.Duration, error) {
	d, err := parseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q: %w", s, err)
	}
	return d, nil
}

func parseDuration(s string) (time.Duration, error) {
	if s == "" {
		return 0, errors.New("empty")
	}
	neg := false
	switch s[0] {
	case '-':
		neg = true
		s = s[1:]
	case '+':
		s = s[1:]
	}
	if s == "0" {
		return 0, nil
	}
	if s == "" {
		return 0, errors.New("missing number")
	}
	var total time.Duration
	for s != "" {
		i := 0
		for i < len(s) && (isDigit(s[i]) || s[i] == '.') {
			i++
		}
		num := s[:i]
		s = s[i:]
		if num == "" || num == "." {
			return 0, errors.New("expected a number")
		}
		j := 0
		for j < len(s) && !isDigit(s[j]) && s[j] != '.' {
			j++
		}
		unit := s[:j]
		s = s[j:]
		var mult time.Duration = 1
		switch unit {
		case "":
			return 0, fmt.Errorf("missing unit after %s (use s, m, h, d or w)", num)
		case "d":
			unit, mult = "h", 24
		case "w":
			unit, mult = "h", 24*7
		case "ns", "us", "µs", "μs", "ms", "s", "m", "h":
		default:
			return 0, fmt.Errorf("unknown unit %q (use s, m, h, d or w)", unit)
		}
		d, err := time.ParseDuration(num + unit)
		if err != nil {
			return 0, fmt.Errorf("bad or too large number %q", num)
		}
		if d > math.MaxInt64/mult || total > math.MaxInt64-d*mult {
			return 0, errors.New("too long")
		}
		total += d * mult
	}
	if neg {
		return -total, nil
	}
	return total, nil
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }
