package content

import (
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// Whatever the two texts, the edit script rebuilds both, and it is minimal: its kept lines are
// a longest common subsequence (checked against a brute-force count on small inputs).
func TestEditsRebuildBothTexts(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 2000 {
		a, b := randomLines(r), randomLines(r)
		var gotA, gotB []string
		kept := 0
		for _, o := range edits(a, b) {
			if o.kind != '+' {
				gotA = append(gotA, o.text)
			}
			if o.kind != '-' {
				gotB = append(gotB, o.text)
			}
			if o.kind == ' ' {
				kept++
			}
		}
		if !slices.Equal(gotA, a) || !slices.Equal(gotB, b) {
			t.Fatalf("case %d: %q → %q rebuilt as %q → %q", i, a, b, gotA, gotB)
		}
		if want := lcsLen(a, b); kept != want {
			t.Fatalf("case %d: kept %d lines, the longest common subsequence has %d", i, kept, want)
		}
		// Every hunk's header counts its lines.
		for _, h := range strings.Split(unified(a, b), "@@ -")[1:] {
			head, body, _ := strings.Cut(h, "\n")
			var na, nb int
			for _, l := range strings.Split(strings.TrimSuffix(body, "\n"), "\n") {
				if l[0] != '+' {
					na++
				}
				if l[0] != '-' {
					nb++
				}
			}
			f := strings.FieldsFunc(head, func(r rune) bool { return r == ',' || r == ' ' || r == '+' || r == '@' })
			if f[1] != strconv.Itoa(na) || f[3] != strconv.Itoa(nb) {
				t.Fatalf("case %d: header %q for %d/%d lines", i, head, na, nb)
			}
		}
	}
}

func randomLines(r *rand.Rand) []string {
	out := make([]string, r.IntN(12))
	for i := range out {
		out[i] = string(rune('a' + r.IntN(3)))
	}
	return out
}

func lcsLen(a, b []string) int {
	if len(a) == 0 || len(b) == 0 {
		return 0
	}
	if a[0] == b[0] {
		return 1 + lcsLen(a[1:], b[1:])
	}
	return max(lcsLen(a[1:], b), lcsLen(a, b[1:]))
}
