package sequence

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestParseDuration(t *testing.T) {
	t.Parallel()
	const day = 24 * time.Hour
	tests := []struct {
		in      string
		want    time.Duration
		wantErr string
	}{
		{in: "0", want: 0},
		{in: "0s", want: 0},
		{in: "90s", want: 90 * time.Second},
		{in: "2m", want: 2 * time.Minute},
		{in: "1h30m", want: 90 * time.Minute},
		{in: "3d", want: 3 * day},
		{in: "1w", want: 7 * day},
		{in: "1d12h", want: 36 * time.Hour},
		{in: "1w2d3h4m5s", want: 9*day + 3*time.Hour + 4*time.Minute + 5*time.Second},
		{in: "1.5d", want: 36 * time.Hour},
		{in: ".5h", want: 30 * time.Minute},
		{in: "250ms", want: 250 * time.Millisecond},
		{in: "+2d", want: 2 * day},
		{in: "-1d", want: -day},
		{in: "", wantErr: `invalid duration "": empty`},
		{in: "-", wantErr: `invalid duration "-": missing number`},
		{in: "3", wantErr: `invalid duration "3": missing unit after 3 (use s, m, h, d or w)`},
		{in: "3x", wantErr: `invalid duration "3x": unknown unit "x" (use s, m, h, d or w)`},
		{in: "3 days", wantErr: `invalid duration "3 days": unknown unit " days" (use s, m, h, d or w)`},
		{in: "d", wantErr: `invalid duration "d": expected a number`},
		{in: "1..2d", wantErr: `invalid duration "1..2d": bad or too large number "1..2"`},
		{in: "100000w", wantErr: `invalid duration "100000w": too long`},
		{in: "15250w1w", wantErr: `invalid duration "15250w1w": too long`},
	}
	for _, tt := range tests {
		got, err := ParseDuration(tt.in)
		if tt.wantErr != "" {
			assert.EqualError(t, err, tt.wantErr, "%q", tt.in)
			continue
		}
		if assert.NoError(t, err, "%q", tt.in) {
			assert.Equal(t, tt.want, got, "%q", tt.in)
		}
	}
}
