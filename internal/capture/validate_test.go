package capture_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tendhq/tend/internal/capture"
)

func TestNormalizeEmailAcceptsPlainAddresses(t *testing.T) {
	t.Parallel()
	tests := []struct {
		raw, want string
	}{
		{"ana@example.com", "ana@example.com"},
		{"  Ana.Lima@Example.COM \t", "ana.lima@example.com"},
		{"ANA+news@sub.example.co.uk", "ana+news@sub.example.co.uk"},
		{"o'brien@example.ie", "o'brien@example.ie"},
		{"x@mail-1.example.io", "x@mail-1.example.io"},
		{strings.Repeat("a", 64) + "@example.com", strings.Repeat("a", 64) + "@example.com"},
	}
	for _, tt := range tests {
		t.Run(tt.raw, func(t *testing.T) {
			t.Parallel()
			got, err := capture.NormalizeEmail(tt.raw)
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestNormalizeEmailRejectsWithReason(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, raw, wantMsg string
	}{
		{"empty", "", "is required"},
		{"blank", "   ", "is required"},
		{"no at sign", "not-an-email", "not a valid email address"},
		{"domain without dot", "a@b", "the domain needs a dot"},
		{"empty domain label", "x@y..com", "not a valid email address"},
		{"display name", "Eve <e@x.com>", "spaces or control characters"},
		{"angle brackets only", "<e@x.com>", "not a valid email address"},
		{"header injection", "a@x.com\r\nBcc: evil@example.com", "spaces or control characters"},
		{"tab inside", "a\t@x.com", "spaces or control characters"},
		{"NUL", "a\x00@x.com", "spaces or control characters"},
		{"quoted local part", `"ana"@example.com`, "not a valid email address"},
		{"leading dot", ".ana@example.com", "not a valid email address"},
		{"non-ASCII local part", "jürgen@example.de", "invalid local part"},
		{"local part too long", strings.Repeat("a", 65) + "@example.com", "invalid local part"},
		{"underscore in domain", "a@ex_ample.com", "invalid domain"},
		{"hyphen at label start", "a@-example.com", "invalid domain"},
		{"one-letter tld", "a@example.c", "invalid top-level domain"},
		{"numeric tld", "a@10.0.0.1", "invalid top-level domain"},
		{"ip literal", "a@[10.0.0.1]", "not a valid email address"},
		{"two at signs", "a@b@example.com", "not a valid email address"},
		{"too long", strings.Repeat("a", 60) + "@" + strings.Repeat("b", 190) + ".com", "longer than 254"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := capture.NormalizeEmail(tt.raw)
			require.Error(t, err, "accepted as %q", got)
			assert.Empty(t, got)
			assert.Contains(t, err.Error(), tt.wantMsg)
		})
	}
}
