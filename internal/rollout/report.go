package rollout

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/tendhq/tend/workflows"
)

// JSON returns the report as indented JSON, for the admin API and tend apply --json.
func (r *Report) JSON() ([]byte, error) { return json.MarshalIndent(r, "", "  ") }

// Text returns the report as a table a marketer can read, times in UTC.
func (r *Report) Text() string {
	var b bytes.Buffer
	_ = r.WriteText(&b, time.UTC) // a bytes.Buffer never fails
	return b.String()
}

// WriteText writes the report as a table a marketer can read, times in loc (UTC when nil).
func (r *Report) WriteText(w io.Writer, loc *time.Location) error {
	if loc == nil {
		loc = time.UTC
	}
	var b strings.Builder
	var changes []string
	for _, c := range r.Changes {
		if c.Change != Unchanged {
			changes = append(changes, fmt.Sprintf("%s %s", c.ID, c.Change))
		}
	}
	if len(changes) == 0 {
		b.WriteString("No sequence changes: no running lead is affected.\n")
		_, err := io.WriteString(w, b.String())
		return err
	}
	fmt.Fprintf(&b, "Sequences: %s.\n", strings.Join(changes, ", "))
	switch {
	case r.Scope.Empty():
		b.WriteString("No running lead is in a changed or removed sequence.\n")
	case r.Sample:
		fmt.Fprintf(&b, "%d leads may be in a changed sequence; a sample of %d was queried (leads in id order, which is random): the counts below are of the sample.\n",
			r.Candidates, r.Queried)
	default:
		fmt.Fprintf(&b, "%d leads may be in a changed sequence; every one was queried.\n", r.Candidates)
	}

	for _, s := range r.Sequences {
		fmt.Fprintf(&b, "\n%s (%s)\n", s.ID, s.Change)
		for _, st := range s.Steps {
			step := st.Step
			if step == "" {
				step = "(past the last step)"
			}
			fmt.Fprintf(&b, "  %s / %s: %d waiting", s.ID, step, st.Waiting)
			if len(st.Groups) == 1 {
				fmt.Fprintf(&b, " — %s\n", groupText(st.Groups[0], loc))
				continue
			}
			b.WriteString("\n")
			for _, g := range st.Groups {
				fmt.Fprintf(&b, "    %s\n", groupText(g, loc))
			}
		}
	}

	b.WriteString("\n")
	if len(r.NotAffected) > 0 {
		var parts []string
		var all Count
		for _, s := range r.NotAffected {
			parts = append(parts, fmt.Sprintf("%d %s", s.Count.Count, s.Status))
			for _, id := range s.Examples {
				all.add(id)
			}
		}
		fmt.Fprintf(&b, "Not affected: %s%s.\n", strings.Join(parts, ", "), examples(all.Examples))
	}
	if r.NotRunning.Count > 0 {
		fmt.Fprintf(&b, "Not running (no open workflow): %d%s.\n", r.NotRunning.Count, examples(r.NotRunning.Examples))
	}
	if r.Unreadable.Count > 0 {
		fmt.Fprintf(&b, "Could not be read (the query failed): %d%s.\n", r.Unreadable.Count, examples(r.Unreadable.Examples))
	}
	if len(r.Sequences) > 0 {
		b.WriteString("Due times are when a step falls due; the send window, quiet hours and the frequency cap may move a send later.\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// groupText says what happens to a group: "40 rescheduled from 2026-12-05 09:00 to 2026-12-03
// 09:00 (e.g. …)".
func groupText(g Group, loc *time.Location) string {
	var s string
	switch g.Kind {
	case workflows.Unchanged:
		s = fmt.Sprintf("%d unchanged", g.Count.Count)
	case workflows.Rescheduled:
		s = fmt.Sprintf("%d rescheduled from %s to %s", g.Count.Count, clock(g.DueBefore, loc), clock(g.Due, loc))
	case workflows.Moved:
		s = fmt.Sprintf("%d moved to %s, due %s", g.Count.Count, g.To, span(g.Due, g.LastDue, loc))
	case workflows.Finished:
		s = fmt.Sprintf("%d finish: no step of the new version is left for them", g.Count.Count)
	case FinishThenSegment:
		if g.To == "" {
			s = fmt.Sprintf("%d finish where they are, then return to their nurture", g.Count.Count)
		} else {
			s = fmt.Sprintf("%d finish where they are, then segment %s", g.Count.Count, g.To)
		}
	default:
		s = fmt.Sprintf("%d %s", g.Count.Count, g.Kind)
	}
	if g.EmailChanged > 0 {
		s += fmt.Sprintf(", %d of them with a new email", g.EmailChanged)
	}
	return s + examples(g.Examples)
}

func examples(ids []string) string {
	if len(ids) == 0 {
		return ""
	}
	return " (e.g. " + strings.Join(ids, ", ") + ")"
}

func clock(t time.Time, loc *time.Location) string {
	if t.IsZero() {
		return "?"
	}
	return t.In(loc).Format("2006-01-02 15:04")
}

func span(first, last time.Time, loc *time.Location) string {
	if last.IsZero() || last.Equal(first) {
		return clock(first, loc)
	}
	return clock(first, loc) + " – " + clock(last, loc)
}
