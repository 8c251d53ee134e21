package capture_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tendhq/tend/internal/capture"
)

// readAll reads every row of an import.
func readAll(t *testing.T, data string) ([]capture.Row, error) {
	t.Helper()
	var rows []capture.Row
	err := capture.ReadCSV(strings.NewReader(data), func(r capture.Row) error {
		rows = append(rows, r)
		return nil
	})
	return rows, err
}

func TestReadCSVHeaderVariantsFindTheEmailColumn(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, data string
	}{
		{"plain", "email,name\nana@example.com,Ana\n"},
		{"capitalised", "Email,Name\nana@example.com,Ana\n"},
		{"E-mail", "E-mail,Name\nana@example.com,Ana\n"},
		{"Email Address", "Email Address,Name\nana@example.com,Ana\n"},
		{"spaces around", "  EMAIL , name \nana@example.com,Ana\n"},
		{"BOM", "\ufeffEmail,Name\nana@example.com,Ana\n"},
		{"BOM before quoted header", "\ufeff\"Email\",\"Name\"\r\n\"ana@example.com\",\"Ana\"\r\n"},
		{"CRLF", "email,name\r\nana@example.com,Ana\r\n"},
		{"email not first", "name,email\nAna,ana@example.com\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rows, err := readAll(t, tt.data)
			require.NoError(t, err)
			require.Len(t, rows, 1)
			require.NoError(t, rows[0].Err)
			assert.Equal(t, 2, rows[0].Line)
			assert.Equal(t, "ana@example.com", rows[0].Request.Email)
			assert.Equal(t, "Ana", rows[0].Request.Name)
			assert.Equal(t, "import", rows[0].Request.Source, "an import without a source column is source import")
			assert.Empty(t, rows[0].Request.Attributes, "the email and name columns are not attributes")
		})
	}
}

func TestReadCSVMapsColumns(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, data string
		want       capture.Request
	}{
		{
			name: "first and last name",
			data: "email,First Name,Last Name\nana@example.com,Ana,Lima\n",
			want: capture.Request{Email: "ana@example.com", Name: "Ana Lima", Source: "import"},
		},
		{
			name: "first name only",
			data: "email,first_name,last_name\nana@example.com,Ana,\n",
			want: capture.Request{Email: "ana@example.com", Name: "Ana", Source: "import"},
		},
		{
			name: "name column wins over first and last",
			data: "email,name,first_name,last_name\nana@example.com,Ana L.,Ana,Lima\n",
			want: capture.Request{Email: "ana@example.com", Name: "Ana L.", Source: "import"},
		},
		{
			name: "interests split on ; | and ,",
			data: "email,interests\nana@example.com,\"analytics; reporting|sso , security;;\"\n",
			want: capture.Request{Email: "ana@example.com", Interests: []string{"analytics", "reporting", "sso", "security"}, Source: "import"},
		},
		{
			name: "company, source and time zone",
			data: "email,company,source,timezone\nana@example.com,Acme,webinar_registration,Europe/Berlin\n",
			want: capture.Request{Email: "ana@example.com", Company: "Acme", Source: "webinar_registration", TimeZone: "Europe/Berlin"},
		},
		{
			name: "consent yes with wording",
			data: "email,consent,consent_wording\nana@example.com,Yes,form-v3\n",
			want: capture.Request{Email: "ana@example.com", Source: "import", Consent: &capture.Consent{Granted: true, WordingID: "form-v3"}},
		},
		{
			name: "consent no",
			data: "email,consent\nana@example.com,no\n",
			want: capture.Request{Email: "ana@example.com", Source: "import", Consent: &capture.Consent{Granted: false}},
		},
		{
			name: "consent empty means none given",
			data: "email,consent\nana@example.com,\n",
			want: capture.Request{Email: "ana@example.com", Source: "import"},
		},
		{
			name: "unknown columns become snake_case attributes",
			data: "email,Job Title,Annual Revenue ($),Lead-Score\nana@example.com,CTO,1M,42\n",
			want: capture.Request{Email: "ana@example.com", Source: "import",
				Attributes: map[string]string{"job_title": "CTO", "annual_revenue": "1M", "lead_score": "42"}},
		},
		{
			name: "empty attribute values are left out",
			data: "email,plan\nana@example.com,\n",
			want: capture.Request{Email: "ana@example.com", Source: "import"},
		},
		{
			name: "short row leaves missing columns empty",
			data: "email,name,company\nana@example.com\n",
			want: capture.Request{Email: "ana@example.com", Source: "import"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rows, err := readAll(t, tt.data)
			require.NoError(t, err)
			require.Len(t, rows, 1)
			require.NoError(t, rows[0].Err)
			assert.Equal(t, tt.want, rows[0].Request)
		})
	}
}

func TestReadCSVConsentValues(t *testing.T) {
	t.Parallel()
	for v, want := range map[string]bool{
		"yes": true, "Y": true, "TRUE": true, "1": true, "granted": true,
		"no": false, "n": false, "False": false, "0": false, "denied": false,
	} {
		rows, err := readAll(t, "email,consent\nana@example.com,"+v+"\n")
		require.NoError(t, err, v)
		require.Len(t, rows, 1, v)
		require.NoError(t, rows[0].Err, v)
		require.NotNil(t, rows[0].Request.Consent, v)
		assert.Equal(t, want, rows[0].Request.Consent.Granted, v)
	}
}

func TestReadCSVRowErrorsNameTheLineAndReadingGoesOn(t *testing.T) {
	t.Parallel()
	data := strings.Join([]string{
		"email,name,consent", // 1
		"ana@example.com,Ana,yes",
		"",                          // 3: blank, skipped
		"bob@example.com,Bob,maybe", // 4: bad consent
		"cy@example.com,Cy,no,extra",
		"   ",                             // 6: whitespace only, skipped
		`dee@example.com,"Dee "D" Ro",no`, // 7: malformed quote
		`"eve@example.com","Eve`,          // 8: quoted field spanning lines
		`Smith",yes`,                      // 9
		`fay@example.com,Fay,`,            // 10
		"",
	}, "\n")
	rows, err := readAll(t, data)
	require.NoError(t, err)

	var lines []int
	for _, r := range rows {
		lines = append(lines, r.Line)
	}
	require.Equal(t, []int{2, 4, 5, 7, 8, 10}, lines)

	assert.NoError(t, rows[0].Err)
	assert.Equal(t, "ana@example.com", rows[0].Request.Email)

	require.Error(t, rows[1].Err)
	assert.Contains(t, rows[1].Err.Error(), "consent")
	assert.Contains(t, rows[1].Err.Error(), `"maybe"`)

	require.Error(t, rows[2].Err)
	assert.Contains(t, rows[2].Err.Error(), "4 fields but the header has 3")

	require.Error(t, rows[3].Err)
	assert.Contains(t, rows[3].Err.Error(), "malformed CSV")

	require.NoError(t, rows[4].Err)
	assert.Equal(t, "Eve\nSmith", rows[4].Request.Name)

	require.NoError(t, rows[5].Err)
	assert.Equal(t, "fay@example.com", rows[5].Request.Email)
	assert.Nil(t, rows[5].Request.Consent)
}

func TestReadCSVMalformedFirstField(t *testing.T) {
	t.Parallel()
	// A stray quote in the very first field of a row must be reported as that row's error, not
	// stop (or crash) the import.
	data := "email,name\nana@example.com,Ana\nbo\"b@example.com,Bob\n\"cy@example.com\"x,Cy\ndee@example.com,Dee\n"
	rows, err := readAll(t, data)
	require.NoError(t, err)
	require.Len(t, rows, 4)
	assert.NoError(t, rows[0].Err)
	for i, line := range []int{3, 4} {
		r := rows[i+1]
		assert.Equal(t, line, r.Line)
		require.Error(t, r.Err)
		assert.Contains(t, r.Err.Error(), "malformed CSV")
	}
	assert.NoError(t, rows[3].Err)
	assert.Equal(t, 5, rows[3].Line)
	assert.Equal(t, "dee@example.com", rows[3].Request.Email)
}

func TestReadCSVFileErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, data, wantMsg string
	}{
		{"empty file", "", "the file is empty"},
		{"only blank lines", "\n\n", "the file is empty"},
		{"no email column", "name,company\nAna,Acme\n", "no email column"},
		{"email as a mere substring", "work_email_2,name\nana@example.com,Ana\n", "no email column"},
		{"malformed header", "email,\"name\n", "line 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			called := false
			err := capture.ReadCSV(strings.NewReader(tt.data), func(capture.Row) error {
				called = true
				return nil
			})
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.wantMsg)
			assert.False(t, called, "no row may be delivered from a file without a usable header")
		})
	}
}

func TestReadCSVStopsOnCallbackError(t *testing.T) {
	t.Parallel()
	stop := errors.New("stop")
	var seen []string
	err := capture.ReadCSV(strings.NewReader("email\na@example.com\nb@example.com\nc@example.com\n"), func(r capture.Row) error {
		seen = append(seen, r.Request.Email)
		if len(seen) == 2 {
			return stop
		}
		return nil
	})
	require.ErrorIs(t, err, stop)
	assert.Equal(t, []string{"a@example.com", "b@example.com"}, seen)
}
