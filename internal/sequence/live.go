package sequence

import (
	"hash/fnv"
	"slices"
	"strings"
)

// bucket maps a lead and a key to a number in [0, 1), the same on every machine and in every run:
// the basis of variant assignment and holdouts, so that a lead keeps its variant across
// restarts, versions and continue-as-new.
func bucket(leadID string, key ...string) float64 {
	h := fnv.New64a()
	h.Write([]byte(leadID))
	for _, k := range key {
		h.Write([]byte{0})
		h.Write([]byte(k))
	}
	// The top 53 bits make an exact float64 fraction.
	return float64(h.Sum64()>>11) / float64(uint64(1)<<53)
}

// VariantFor returns the step's email for the lead: its variant chosen in proportion to the
// weights, or, for a step without variants, the step's own template and subject (ID "").
func (s Step) VariantFor(leadID, sequenceID string) Variant {
	total := 0
	for _, v := range s.Variants {
		total += max(v.Weight, 0)
	}
	if total == 0 {
		return Variant{Template: s.Template, Subject: s.Subject}
	}
	at := bucket(leadID, "variant", sequenceID, s.ID) * float64(total)
	sum := 0
	for _, v := range s.Variants {
		sum += max(v.Weight, 0)
		if at < float64(sum) {
			return v
		}
	}
	return s.Variants[len(s.Variants)-1]
}

// HeldOut reports whether the lead is in the sequence's holdout group: it receives none of the
// sequence's emails.
func (q Sequence) HeldOut(leadID string) bool {
	return q.Holdout > 0 && bucket(leadID, "holdout", q.ID) < q.Holdout
}

// Position is where a lead that has passed the steps passed (sent, skipped, failed …) of an
// earlier version of a sequence stands in next: the index of the first step after the last of
// next's steps it passed. Steps of next before that index that it never passed are never sent
// (nothing is sent retroactively); a step inserted after it is picked up; a removed step that it
// waited for hands it to the next remaining one. len(next.Steps) means it has nothing left.
func Position(next Sequence, passed []string) int {
	at := 0
	for i, st := range next.Steps {
		if slices.Contains(passed, st.ID) {
			at = i + 1
		}
	}
	return at
}

// SegmentForLead is the segment of a lead with interests and facts: the first segment, in file
// order, whose interests the lead shares (a segment without interests matches any) and whose When
// holds; segments without When and without interests are never matched here, so the default
// segment is the fallback, as in SegmentFor.
func (c *Catalog) SegmentForLead(interests []string, f Facts) Segment {
	for _, s := range c.Segments {
		if len(s.Interests) == 0 && s.When == nil {
			continue
		}
		if len(s.Interests) > 0 && !sharesInterest(s.Interests, interests) {
			continue
		}
		if s.When != nil && !s.When.Matches(f) {
			continue
		}
		return s
	}
	s, _ := c.Segment(c.DefaultSegment)
	return s
}

func sharesInterest(want, have []string) bool {
	for _, w := range want {
		for _, h := range have {
			if strings.EqualFold(strings.TrimSpace(h), w) {
				return true
			}
		}
	}
	return false
}

// Sequence returns the sequence with the given id: a segment's or the re-engagement series.
func (c *Catalog) Sequence(id string) (Sequence, bool) {
	for _, s := range c.Segments {
		if s.Sequence.ID == id {
			return s.Sequence, true
		}
	}
	if c.Reengagement != nil && c.Reengagement.Sequence.ID == id {
		return c.Reengagement.Sequence, true
	}
	return Sequence{}, false
}

// SegmentOf returns the segment whose sequence has the given id.
func (c *Catalog) SegmentOf(sequenceID string) (Segment, bool) {
	for _, s := range c.Segments {
		if s.Sequence.ID == sequenceID {
			return s, true
		}
	}
	return Segment{}, false
}
