package sales

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func berlin(t testing.TB) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation("Europe/Berlin")
	require.NoError(t, err)
	return loc
}

// office is the example's calendar, plus Whit Monday 2026.
var office = Calendar{
	ID:       "berlin-office",
	TimeZone: "Europe/Berlin",
	Hours:    []Hours{{Days: "MON-FRI", From: "09:00", To: "18:00"}},
	Holidays: []string{"2026-05-25", "2026-12-24", "2026-12-25", "2026-12-26", "2027-01-01"},
}

func TestCalendarAdd(t *testing.T) {
	t.Parallel()
	loc := berlin(t)
	at := func(month time.Month, day, hour, min int) time.Time {
		return time.Date(2026, month, day, hour, min, 0, 0, loc)
	}
	lunch := Calendar{Hours: []Hours{
		{Days: "MON-FRI", From: "09:00", To: "12:00"},
		{Days: "MON-FRI", From: "13:00", To: "18:00"},
	}}
	overlapping := Calendar{Hours: []Hours{
		{Days: "MON", From: "09:00", To: "12:00"},
		{Days: "MON,TUE", From: "11:00", To: "14:00"},
	}}
	// Sunday-only hours across both 2026 DST changes in Berlin (29 March 02:00 → 03:00,
	// 25 October 03:00 → 02:00): business time is real elapsed time.
	sundayNight := Calendar{Hours: []Hours{{Days: "SUN", From: "00:00", To: "06:00"}}}

	for _, tc := range []struct {
		name  string
		cal   Calendar
		start time.Time
		d     time.Duration
		want  time.Time
	}{
		{"inside hours", office, at(6, 8, 10, 0), 2 * time.Hour, at(6, 8, 12, 0)},
		{"friday evening rolls over the weekend", office, at(6, 5, 17, 30), 2 * time.Hour, at(6, 8, 10, 30)},
		{"holiday monday", office, at(5, 22, 17, 30), 2 * time.Hour, at(5, 26, 10, 30)},
		{"christmas", office, at(12, 23, 17, 0), 3 * time.Hour, at(12, 28, 11, 0)},
		{"start before opening", office, at(6, 8, 7, 0), time.Hour, at(6, 8, 10, 0)},
		{"start after closing", office, at(6, 8, 20, 0), 30 * time.Minute, at(6, 9, 9, 30)},
		{"start on a saturday", office, at(6, 6, 12, 0), time.Hour, at(6, 8, 10, 0)},
		{"start on a holiday", office, at(5, 25, 12, 0), time.Hour, at(5, 26, 10, 0)},
		{"ends exactly at closing", office, at(6, 8, 9, 0), 9 * time.Hour, at(6, 8, 18, 0)},
		{"multi-day span", office, at(6, 8, 9, 0), 10 * time.Hour, at(6, 9, 10, 0)},
		{"a business week", office, at(6, 8, 9, 0), 45 * time.Hour, at(6, 12, 18, 0)},
		{"two business weeks", office, at(6, 8, 9, 0), 90 * time.Hour, at(6, 19, 18, 0)},
		{"DST change week", office, at(3, 27, 17, 0), 2 * time.Hour, at(3, 30, 10, 0)},
		{"DST end week", office, at(10, 23, 17, 0), 2 * time.Hour, at(10, 26, 10, 0)},
		{"lunch break", lunch, at(6, 8, 11, 30), time.Hour, at(6, 8, 13, 30)},
		{"overlapping hours merge", overlapping, at(6, 8, 9, 0), 6 * time.Hour, at(6, 9, 12, 0)},
		{"spring forward night is 5h", sundayNight, at(3, 29, 0, 0), 5 * time.Hour, at(3, 29, 6, 0)},
		{"spring forward night then next week", sundayNight, at(3, 29, 0, 0), 5*time.Hour + 30*time.Minute, at(4, 5, 0, 30)},
		{"fall back night is 7h", sundayNight, at(10, 25, 0, 0), 7 * time.Hour, at(10, 25, 6, 0)},
		{"zero", office, at(6, 6, 12, 0), 0, at(6, 6, 12, 0)},
		{"no hours counts every hour", Calendar{}, at(6, 6, 12, 0), 2 * time.Hour, at(6, 6, 14, 0)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := tc.cal.Add(tc.start, tc.d, loc)
			assert.True(t, tc.want.Equal(got), "want %s, got %s", tc.want, got)
			if tc.d > 0 {
				assert.Equal(t, tc.d, tc.cal.Between(tc.start, got, loc), "Between is the inverse of Add")
			}
		})
	}
}

func TestCalendarAddOtherZones(t *testing.T) {
	t.Parallel()
	loc := berlin(t)
	// 06:00 UTC is 08:00 in Berlin in June: an hour before opening.
	start := time.Date(2026, 6, 8, 6, 0, 0, 0, time.UTC)
	got := office.Add(start, time.Hour, loc)
	assert.True(t, time.Date(2026, 6, 8, 8, 0, 0, 0, time.UTC).Equal(got), got)

	// The same hours read in New York open six hours later.
	ny, err := time.LoadLocation("America/New_York")
	require.NoError(t, err)
	got = office.Add(start, time.Hour, ny)
	assert.True(t, time.Date(2026, 6, 8, 10, 0, 0, 0, ny).Equal(got), got)
}

func TestCalendarBetween(t *testing.T) {
	t.Parallel()
	loc := berlin(t)
	at := func(month time.Month, day, hour, min int) time.Time {
		return time.Date(2026, month, day, hour, min, 0, 0, loc)
	}
	assert.Equal(t, 2*time.Hour, office.Between(at(6, 5, 17, 0), at(6, 8, 10, 0), loc))
	assert.Equal(t, time.Duration(0), office.Between(at(6, 6, 9, 0), at(6, 7, 23, 0), loc), "weekend")
	assert.Equal(t, time.Duration(0), office.Between(at(6, 8, 10, 0), at(6, 8, 10, 0), loc))
	assert.Equal(t, time.Duration(0), office.Between(at(6, 8, 11, 0), at(6, 8, 10, 0), loc), "b before a")
	assert.Equal(t, 3*time.Hour, Calendar{}.Between(at(6, 6, 9, 0), at(6, 6, 12, 0), loc), "no hours")

	// Between inverts Add from any start, inside hours or not, across weekends, holidays and DST.
	for start := at(3, 20, 0, 0); start.Before(at(4, 10, 0, 0)); start = start.Add(97 * time.Minute) {
		for _, d := range []time.Duration{time.Minute, 30 * time.Minute, 2 * time.Hour, 9 * time.Hour, 10 * time.Hour, 50 * time.Hour} {
			end := office.Add(start, d, loc)
			require.Equal(t, d, office.Between(start, end, loc), "from %s + %s", start, d)
			require.False(t, end.Before(start.Add(d)), "business time never runs faster than the clock")
		}
	}
}

func TestParseDays(t *testing.T) {
	t.Parallel()
	const (
		sun = 1 << time.Sunday
		mon = 1 << time.Monday
		tue = 1 << time.Tuesday
		wed = 1 << time.Wednesday
		thu = 1 << time.Thursday
		fri = 1 << time.Friday
		sat = 1 << time.Saturday
	)
	for s, want := range map[string]int{
		"MON-FRI":     mon | tue | wed | thu | fri,
		"SAT":         sat,
		"MON,WED,FRI": mon | wed | fri,
		"MON-WED,FRI": mon | tue | wed | fri,
		"SAT-SUN":     sat | sun,
		"FRI-MON":     fri | sat | sun | mon,
		"MON-SUN":     mon | tue | wed | thu | fri | sat | sun,
		"SUN":         sun,
	} {
		days, err := parseDays(s)
		require.NoError(t, err, s)
		got := 0
		for d, on := range days {
			if on {
				got |= 1 << d
			}
		}
		assert.Equal(t, want, got, s)
	}
	for _, s := range []string{"", "MON-", "mon", "MONDAY", "MON,,FRI", "MON-TUE-WED", "WEEKDAYS"} {
		_, err := parseDays(s)
		assert.Error(t, err, s)
	}
}

func TestParseClock(t *testing.T) {
	t.Parallel()
	for s, want := range map[string]int{"00:00": 0, "09:30": 570, "23:59": 1439, "24:00": 1440} {
		got, err := parseClock(s)
		require.NoError(t, err, s)
		assert.Equal(t, want, got, s)
	}
	for _, s := range []string{"9:00", "09:60", "24:01", "25:00", "0900", "09:0", "-1:00", "+9:00", "ab:cd"} {
		_, err := parseClock(s)
		assert.Error(t, err, s)
	}
}
