package capture

import (
	"bufio"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
)

// Row is one data row of a lead import, or the reason it cannot be read.
type Row struct {
	Line    int
	Request Request
	Err     error
}

var nonKey = regexp.MustCompile(`[^a-z0-9_]+`)

// ReadCSV reads a lead import. The first line is a header; "email" is required. Known columns
// are name (or first_name and last_name), company, interests (separated by ; or |), source,
// time_zone, consent (yes/no, true/false, 1/0) and consent_wording; every other column becomes an
// attribute named after the header in snake_case. each is called for every data row in order;
// an error from each stops the read.
func ReadCSV(r io.Reader, each func(Row) error) error {
	// Strip a BOM from spreadsheet exports before the CSV parser sees it: in front of a quoted
	// header it would make the quote a bare quote.
	br := bufio.NewReader(r)
	if bom, err := br.Peek(3); err == nil && string(bom) == "\ufeff" {
		_, _ = br.Discard(3)
	}
	cr := csv.NewReader(br)
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = false
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return errors.New("the file is empty: expected a header line with an email column")
	}
	if err != nil {
		return fmt.Errorf("line 1: %w", err)
	}
	cols := make([]string, len(header))
	emailCol := -1
	for i, h := range header {
		cols[i] = strings.Trim(nonKey.ReplaceAllString(strings.ToLower(strings.TrimSpace(h)), "_"), "_")
		if cols[i] == "email" || cols[i] == "email_address" || cols[i] == "e_mail" {
			cols[i] = "email"
			emailCol = i
		}
	}
	if emailCol < 0 {
		return fmt.Errorf("line 1: the header has no email column (columns: %s)", strings.Join(header, ", "))
	}
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				// FieldPos would panic here: a record that failed in its first field has no positions.
				if e := each(Row{Line: pe.StartLine, Err: fmt.Errorf("malformed CSV: %v", pe.Err)}); e != nil {
					return e
				}
				continue
			}
			return err
		}
		line, _ := cr.FieldPos(0)
		if len(rec) == 1 && strings.TrimSpace(rec[0]) == "" {
			continue // blank line
		}
		if e := each(rowFrom(line, cols, rec)); e != nil {
			return e
		}
	}
}

func rowFrom(line int, cols, rec []string) Row {
	row := Row{Line: line}
	if len(rec) > len(cols) {
		row.Err = fmt.Errorf("has %d fields but the header has %d", len(rec), len(cols))
		return row
	}
	req := &row.Request
	var first, last string
	for i, v := range rec {
		v = strings.TrimSpace(v)
		switch cols[i] {
		case "email":
			req.Email = v
		case "name":
			req.Name = v
		case "first_name":
			first = v
		case "last_name":
			last = v
		case "company":
			req.Company = v
		case "interests":
			for _, in := range strings.FieldsFunc(v, func(r rune) bool { return r == ';' || r == '|' || r == ',' }) {
				if in = strings.TrimSpace(in); in != "" {
					req.Interests = append(req.Interests, in)
				}
			}
		case "source":
			req.Source = v
		case "time_zone", "timezone", "tz":
			req.TimeZone = v
		case "consent":
			if v == "" {
				continue
			}
			granted, ok := parseYes(v)
			if !ok {
				row.Err = fmt.Errorf("consent: %q is not yes or no", v)
				return row
			}
			if req.Consent == nil {
				req.Consent = &Consent{}
			}
			req.Consent.Granted = granted
		case "consent_wording", "consent_wording_id":
			if req.Consent == nil {
				req.Consent = &Consent{}
			}
			req.Consent.WordingID = v
		default:
			if v == "" || cols[i] == "" {
				continue
			}
			if req.Attributes == nil {
				req.Attributes = map[string]string{}
			}
			req.Attributes[cols[i]] = v
		}
	}
	if req.Name == "" {
		req.Name = strings.TrimSpace(first + " " + last)
	}
	if req.Source == "" {
		req.Source = "import"
	}
	return row
}

func parseYes(v string) (bool, bool) {
	switch strings.ToLower(v) {
	case "yes", "y", "true", "1", "granted":
		return true, true
	case "no", "n", "false", "0", "denied":
		return false, true
	}
	return false, false
}
