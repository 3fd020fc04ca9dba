package main

import "sort"

// seqTracker checks the event numbers one connection receives. Numbers start
// at 1 for every run. It remembers the highest number seen and the gaps below
// it, so loss, duplicates and reordering are judged by number, not by counts,
// in memory proportional to the number of open gaps (normally none).
type seqTracker struct {
	max   int64
	gap   int64  // numbers inside holes
	holes []span // sorted, disjoint ranges below max not received yet
}

type span struct{ lo, hi int64 }

type seqOutcome int

const (
	seqInOrder seqOutcome = iota // the next number, or a jump ahead (leaves a gap)
	seqLate                      // fills a gap: arrived out of order
	seqDup                       // seen before
)

func (t *seqTracker) observe(n int64) seqOutcome {
	switch {
	case n == t.max+1:
		t.max = n
		return seqInOrder
	case n > t.max:
		t.holes = append(t.holes, span{t.max + 1, n - 1})
		t.gap += n - 1 - t.max
		t.max = n
		return seqInOrder
	}
	i := sort.Search(len(t.holes), func(i int) bool { return t.holes[i].hi >= n })
	if i == len(t.holes) || t.holes[i].lo > n {
		return seqDup
	}
	h := t.holes[i]
	t.gap--
	switch {
	case h.lo == n && h.hi == n:
		t.holes = append(t.holes[:i], t.holes[i+1:]...)
	case h.lo == n:
		t.holes[i].lo++
	case h.hi == n:
		t.holes[i].hi--
	default:
		t.holes = append(t.holes, span{})
		copy(t.holes[i+1:], t.holes[i:])
		t.holes[i] = span{h.lo, n - 1}
		t.holes[i+1] = span{n + 1, h.hi}
	}
	return seqLate
}

// contiguous is the highest n such that every number 1..n was received.
func (t *seqTracker) contiguous() int64 {
	if len(t.holes) > 0 {
		return t.holes[0].lo - 1
	}
	return t.max
}

// missing counts the numbers in 1..expected never received, given the
// highest number seen and the count of numbers still in holes (expected is
// never below the highest number published, so holes all lie below it).
func missing(maxSeen, gap, expected int64) int64 {
	return gap + max(0, expected-maxSeen)
}
