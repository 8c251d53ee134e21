package content

import (
	"fmt"
	"slices"
	"strings"
)

// diffContext is how many unchanged lines a hunk shows around a change, as diff -u does.
const diffContext = 3

// maxDiffCells bounds the work of one file's diff; beyond it the changed middle of the file is
// shown as removed and added whole, which is still a correct diff, only a longer one.
const maxDiffCells = 4 << 20

// Diff returns a unified line diff of one kind's files, from the published version (numbered
// version, 0 for none) to the proposed files: a file added, removed or changed each gets its own
// ---/+++ header; unchanged files are left out. "" means no change. A kind of one file applied
// from a file of another name (sequences-production.yaml over sequences.yaml) is diffed as one
// file renamed, not as one removed and one added.
func Diff(kind string, version int, old, proposed Files) string {
	if len(old) == 1 && len(proposed) == 1 {
		for on, o := range old {
			for pn, p := range proposed {
				if on != pn {
					if o == p {
						return fmt.Sprintf("renamed %s/%s (version %d) to %s/%s, text unchanged\n", kind, on, version, kind, pn)
					}
					return fmt.Sprintf("--- %s/%s (version %d)\n+++ %s/%s (proposed)\n", kind, on, version, kind, pn) + unified(lines(o), lines(p))
				}
			}
		}
	}
	names := map[string]bool{}
	for n := range old {
		names[n] = true
	}
	for n := range proposed {
		names[n] = true
	}
	sorted := make([]string, 0, len(names))
	for n := range names {
		sorted = append(sorted, n)
	}
	slices.Sort(sorted)
	var b strings.Builder
	for _, n := range sorted {
		o, inOld := old[n]
		p, inNew := proposed[n]
		if inOld && inNew && o == p {
			continue
		}
		from, to := fmt.Sprintf("%s/%s (version %d)", kind, n, version), fmt.Sprintf("%s/%s (proposed)", kind, n)
		if !inOld {
			from = "/dev/null"
		}
		if !inNew {
			to = "/dev/null"
		}
		fmt.Fprintf(&b, "--- %s\n+++ %s\n", from, to)
		b.WriteString(unified(lines(o), lines(p)))
	}
	return b.String()
}

// lines splits text into lines without their line breaks; a last line without one is a line.
func lines(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(strings.TrimSuffix(s, "\n"), "\n")
}

// op is one line of an edit script: ' ' kept, '-' removed, '+' added.
type op struct {
	kind byte
	text string
}

// edits returns the shortest edit script from a to b (a longest common subsequence, computed on
// what lies between the common first and last lines).
func edits(a, b []string) []op {
	pre := 0
	for pre < len(a) && pre < len(b) && a[pre] == b[pre] {
		pre++
	}
	suf := 0
	for suf < len(a)-pre && suf < len(b)-pre && a[len(a)-1-suf] == b[len(b)-1-suf] {
		suf++
	}
	var out []op
	for _, l := range a[:pre] {
		out = append(out, op{' ', l})
	}
	ma, mb := a[pre:len(a)-suf], b[pre:len(b)-suf]
	if (len(ma)+1)*(len(mb)+1) > maxDiffCells {
		for _, l := range ma {
			out = append(out, op{'-', l})
		}
		for _, l := range mb {
			out = append(out, op{'+', l})
		}
	} else {
		out = append(out, lcs(ma, mb)...)
	}
	for _, l := range a[len(a)-suf:] {
		out = append(out, op{' ', l})
	}
	return out
}

// lcs is the classic dynamic programme: l[i][j] is the longest common subsequence of a[i:] and
// b[j:]; walking it forwards, removals come before additions.
func lcs(a, b []string) []op {
	w := len(b) + 1
	l := make([]int32, (len(a)+1)*w)
	for i := len(a) - 1; i >= 0; i-- {
		for j := len(b) - 1; j >= 0; j-- {
			if a[i] == b[j] {
				l[i*w+j] = l[(i+1)*w+j+1] + 1
			} else {
				l[i*w+j] = max(l[(i+1)*w+j], l[i*w+j+1])
			}
		}
	}
	var out []op
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		switch {
		case a[i] == b[j]:
			out = append(out, op{' ', a[i]})
			i, j = i+1, j+1
		case l[(i+1)*w+j] >= l[i*w+j+1]:
			out = append(out, op{'-', a[i]})
			i++
		default:
			out = append(out, op{'+', b[j]})
			j++
		}
	}
	for ; i < len(a); i++ {
		out = append(out, op{'-', a[i]})
	}
	for ; j < len(b); j++ {
		out = append(out, op{'+', b[j]})
	}
	return out
}

// unified formats the edit script from a to b as diff -u hunks.
func unified(a, b []string) string {
	ops := edits(a, b)
	var out strings.Builder
	for start := 0; start < len(ops); {
		// The next change, and the hunk around it: changes closer than twice the context join.
		first := start
		for first < len(ops) && ops[first].kind == ' ' {
			first++
		}
		if first == len(ops) {
			break
		}
		end := first
		for k := first; k < len(ops); k++ {
			if ops[k].kind != ' ' {
				end = k + 1
			} else if k-end >= 2*diffContext {
				break
			}
		}
		from := max(first-diffContext, start)
		to := min(end+diffContext, len(ops))
		// Line numbers of the hunk's first line in a and b.
		la, lb := 1, 1
		for _, o := range ops[:from] {
			if o.kind != '+' {
				la++
			}
			if o.kind != '-' {
				lb++
			}
		}
		na, nb := 0, 0
		for _, o := range ops[from:to] {
			if o.kind != '+' {
				na++
			}
			if o.kind != '-' {
				nb++
			}
		}
		if na == 0 {
			la--
		}
		if nb == 0 {
			lb--
		}
		fmt.Fprintf(&out, "@@ -%d,%d +%d,%d @@\n", la, na, lb, nb)
		for _, o := range ops[from:to] {
			out.WriteByte(o.kind)
			out.WriteString(o.text)
			out.WriteByte('\n')
		}
		start = to
	}
	return out.String()
}
