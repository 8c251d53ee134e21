package schedule

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func mustLoad(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	require.NoError(t, err)
	return loc
}

func TestNext(t *testing.T) {
	t.Parallel()
	berlin := mustLoad(t, "Europe/Berlin")
	newYork := mustLoad(t, "America/New_York")
	at := func(loc *time.Location, y int, m time.Month, d, h, min, s int) time.Time {
		return time.Date(y, m, d, h, min, s, 0, loc)
	}
	const business = "* 9-17 * * MON-FRI"

	tests := []struct {
		name   string
		spec   string
		zone   string
		leadTZ string
		in     time.Time
		want   time.Time
	}{
		{
			name: "friday evening waits for monday morning",
			spec: business, zone: "Europe/Berlin",
			in:   at(berlin, 2026, time.May, 15, 18, 30, 0),
			want: at(berlin, 2026, time.May, 18, 9, 0, 0),
		},
		{
			name: "inside the window is unchanged, seconds and all",
			spec: business, zone: "Europe/Berlin",
			in:   at(berlin, 2026, time.May, 13, 11, 42, 17).Add(123 * time.Millisecond),
			want: at(berlin, 2026, time.May, 13, 11, 42, 17).Add(123 * time.Millisecond),
		},
		{
			name: "last allowed minute is still inside",
			spec: business, zone: "Europe/Berlin",
			in:   at(berlin, 2026, time.May, 13, 17, 59, 59),
			want: at(berlin, 2026, time.May, 13, 17, 59, 59),
		},
		{
			name: "early morning waits for the same day",
			spec: business, zone: "Europe/Berlin",
			in:   at(berlin, 2026, time.May, 13, 6, 0, 0),
			want: at(berlin, 2026, time.May, 13, 9, 0, 0),
		},
		{
			name: "input in another zone is judged in the window's zone",
			spec: business, zone: "Europe/Berlin",
			in:   time.Date(2026, time.May, 13, 6, 30, 0, 0, time.UTC), // 08:30 in Berlin
			want: at(berlin, 2026, time.May, 13, 9, 0, 0),
		},
		{
			name: "spring forward: saturday night to sunday 09:00 CEST",
			spec: "* 9-17 * * *", zone: "Europe/Berlin",
			in:   at(berlin, 2026, time.March, 28, 20, 0, 0),
			want: time.Date(2026, time.March, 29, 7, 0, 0, 0, time.UTC),
		},
		{
			name: "fall back: saturday night to sunday 09:00 CET",
			spec: "* 9-17 * * *", zone: "Europe/Berlin",
			in:   at(berlin, 2026, time.October, 24, 20, 0, 0),
			want: time.Date(2026, time.October, 25, 8, 0, 0, 0, time.UTC),
		},
		{
			name: "skipped hour on spring forward moves to the first real minute",
			spec: "* 2-3 * * *", zone: "Europe/Berlin",
			in:   time.Date(2026, time.March, 29, 0, 30, 0, 0, time.UTC), // 01:30 CET
			want: time.Date(2026, time.March, 29, 1, 0, 0, 0, time.UTC),  // 03:00 CEST
		},
		{
			name: "lead zone overrides the window's zone",
			spec: business, zone: "Europe/Berlin", leadTZ: "America/New_York",
			in:   at(berlin, 2026, time.May, 13, 10, 0, 0), // 04:00 in New York
			want: at(newYork, 2026, time.May, 13, 9, 0, 0),
		},
		{
			name: "lead zone: inside the lead's hours although outside the window's",
			spec: business, zone: "Europe/Berlin", leadTZ: "America/New_York",
			in:   at(newYork, 2026, time.May, 15, 16, 0, 0), // 22:00 Friday in Berlin
			want: at(newYork, 2026, time.May, 15, 16, 0, 0),
		},
		{
			name: "invalid lead zone falls back to the window's zone",
			spec: business, zone: "Europe/Berlin", leadTZ: "Mars/Base",
			in:   at(berlin, 2026, time.May, 15, 18, 30, 0),
			want: at(berlin, 2026, time.May, 18, 9, 0, 0),
		},
		{
			name: "empty spec is any time",
			spec: "", zone: "Europe/Berlin",
			in:   at(berlin, 2026, time.May, 16, 3, 4, 5),
			want: at(berlin, 2026, time.May, 16, 3, 4, 5),
		},
		{
			name: "empty zone is UTC",
			spec: "0 12 * * *", zone: "",
			in:   time.Date(2026, time.May, 16, 12, 1, 0, 0, time.UTC),
			want: time.Date(2026, time.May, 17, 12, 0, 0, 0, time.UTC),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w, err := Compile(tt.spec, tt.zone)
			require.NoError(t, err)
			got := w.Next(tt.in, tt.leadTZ)
			assert.True(t, got.Equal(tt.want), "Next(%s) = %s, want %s", tt.in, got, tt.want)
		})
	}
}

func TestNextIsIdempotent(t *testing.T) {
	t.Parallel()
	w, err := Compile("*/15 9-17 * * MON-FRI", "Europe/Berlin")
	require.NoError(t, err)
	start := time.Date(2026, time.January, 1, 0, 0, 0, 0, time.UTC)
	for i := range 2000 {
		in := start.Add(time.Duration(i) * 37 * time.Minute)
		got := w.Next(in, "")
		require.False(t, got.Before(in), "Next(%s) = %s went back in time", in, got)
		require.True(t, w.Next(got, "").Equal(got), "Next(%s) = %s is not itself allowed", in, got)
	}
}

func TestCompileErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		spec, zone, want string
	}{
		{"x", "", `invalid cron spec "x": `},
		{"* * * *", "", `invalid cron spec "* * * *": `},
		{"@daily", "", `invalid cron spec "@daily": `},
		{"@every 1h", "", `invalid cron spec "@every 1h": `},
		{"TZ=Europe/Berlin * * * * *", "", `invalid cron spec "TZ=Europe/Berlin * * * * *": put the time zone in time_zone`},
		{"TZ=x", "", `invalid cron spec "TZ=x": `},
		{"* * 30 2 *", "", `invalid cron spec "* * 30 2 *": it never matches`},
		{"* * * * *", "Mars/Base", `unknown time zone "Mars/Base"`},
		{"* * * * *", "Local", `unknown time zone "Local"`},
	}
	for _, tt := range tests {
		_, err := Compile(tt.spec, tt.zone)
		require.Error(t, err, "Compile(%q, %q)", tt.spec, tt.zone)
		assert.Contains(t, err.Error(), tt.want)
	}
}

func TestValidTimeZone(t *testing.T) {
	t.Parallel()
	assert.NoError(t, ValidTimeZone(""))
	assert.NoError(t, ValidTimeZone("UTC"))
	assert.NoError(t, ValidTimeZone("America/New_York"))
	assert.EqualError(t, ValidTimeZone("Mars/Base"), `unknown time zone "Mars/Base"`)
}

func FuzzCompile(f *testing.F) {
	for _, s := range []string{"* 9-17 * * MON-FRI", "*/5 * * * *", "0 0 29 2 *", "TZ=x", "@every 1s"} {
		f.Add(s)
	}
	from := time.Date(2026, time.March, 29, 0, 30, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, spec string) {
		w, err := Compile(spec, "Europe/Berlin")
		if err != nil {
			return
		}
		if got := w.Next(from, ""); got.Before(from) {
			t.Fatalf("Next went back in time: %s", got)
		}
	})
}
