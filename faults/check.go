package faults

import (
	"slices"
	"sort"
)

// stored is one message read back from the stream at the end of a run.
type stored struct {
	Seq     uint64
	Subject string
	N       int64
}

// known is one event of the run: acknowledged by NATS, found in the stream,
// or both.
type known struct {
	N       int64
	Inc     int // stream incarnation: 1, then one more per delete and recreate
	Seq     uint64
	Subject string
	Stored  bool // still in the stream at the end
	Acked   bool
	// Deleted: a fault deleted it on purpose (DeleteMsg). A client may or may
	// not get it, and its absence justifies no reset.
	Deleted bool
}

// key orders events across incarnations.
func (k known) key() uint64 { return posKey(k.Inc, k.Seq) }

func posKey(inc int, seq uint64) uint64 { return uint64(inc)<<40 | seq }

// history is every known event of a run, in stream order.
type history struct {
	events []known
	// epochInc: which incarnation each event-id epoch names, learned from
	// the clients' events (see learnEpochs); current is the last one.
	epochInc map[epoch]int
	current  int
	// conflicts: events NATS acknowledged at one sequence and stored at another.
	conflicts int
	// ackedGone: acknowledged, not in the stream at the end, with no fault of
	// the run removing messages (a durability loss of NATS itself).
	ackedGone int
}

// buildHistory joins what NATS acknowledged with what the stream holds at
// the end (of incarnation current). deleted holds the keys of messages a
// fault deleted on purpose.
func buildHistory(pub []published, readBack []stored, deleted map[uint64]bool, current int) history {
	byN := map[int64]*known{}
	h := history{epochInc: map[epoch]int{}, current: current}
	for i, p := range pub {
		if p.Seq > 0 {
			byN[int64(i+1)] = &known{N: int64(i + 1), Inc: p.Inc, Seq: p.Seq, Subject: p.Subject, Acked: true}
		}
	}
	for _, s := range readBack {
		k := byN[s.N]
		if k == nil {
			k = &known{N: s.N, Inc: current, Seq: s.Seq, Subject: s.Subject}
			byN[s.N] = k
		} else if k.Seq != s.Seq || k.Inc != current {
			h.conflicts++
			k.Seq, k.Inc = s.Seq, current
		}
		k.Stored = true
	}
	for _, k := range byN {
		k.Deleted = deleted[k.key()] && !k.Stored
		if k.Acked && !k.Stored && !k.Deleted {
			h.ackedGone++
		}
		h.events = append(h.events, *k)
	}
	slices.SortFunc(h.events, func(a, b known) int { return cmpU64(a.key(), b.key()) })
	return h
}

// learnEpochs maps each event-id epoch the clients saw to the incarnation
// most of its events belong to; an event whose epoch names another
// incarnation is then an id mismatch.
func (h *history) learnEpochs(records [][]received) {
	inc := make(map[int64]int, len(h.events))
	for _, k := range h.events {
		inc[k.N] = k.Inc
	}
	counts := map[epoch]map[int]int{}
	for _, events := range records {
		for _, e := range events {
			if i, ok := inc[e.N]; ok {
				if counts[e.Epoch] == nil {
					counts[e.Epoch] = map[int]int{}
				}
				counts[e.Epoch][i]++
			}
		}
	}
	for ep, byInc := range counts {
		best, most := 0, -1
		for i, n := range byInc {
			if n > most || n == most && i < best {
				best, most = i, n
			}
		}
		h.epochInc[ep] = best
	}
}

// keyOf is the position an event id names; an epoch no event carried is
// taken as the current incarnation.
func (h history) keyOf(e epoch, seq uint64) uint64 {
	inc, ok := h.epochInc[e]
	if !ok {
		inc = h.current
	}
	return posKey(inc, seq)
}

func cmpU64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// clientCheck is the verdict on one client.
type clientCheck struct {
	Received   int
	Lost       []int64 // expected, never received (nor excused by a true reset)
	Duplicated []int64
	Reordered  []int64
	Unexpected int // events outside the client's subjects, or unknown
	IDMismatch int // the id's sequence is not the stream sequence of the event
	Excused    int // skipped by a reset whose reason was true
	Resets     map[string]int
	FalseReset map[string]int // resets whose reason the stream does not bear out
}

func (c clientCheck) ok() bool {
	return len(c.Lost) == 0 && len(c.Duplicated) == 0 && len(c.Reordered) == 0 && c.Unexpected == 0 &&
		c.IDMismatch == 0 && len(c.FalseReset) == 0
}

// checkClient verifies one client's record against the run's history: from
// its first event on, every event of its subjects exactly once and in stream
// order, except what an explicit reset with a true reason skipped.
func checkClient(h history, topics []string, events []received, resets []resetSeen, replayLimit int) clientCheck {
	out := clientCheck{Received: len(events), Resets: map[string]int{}, FalseReset: map[string]int{}}
	mine := func(subject string) bool { return len(topics) == 0 || slices.Contains(topics, subject) }
	var exp []known
	for _, k := range h.events {
		if mine(k.Subject) {
			exp = append(exp, k)
		}
	}
	pos := make(map[int64]int, len(exp))
	for i, k := range exp {
		pos[k.N] = i
	}
	firstAfter := func(key uint64) int {
		return sort.Search(len(exp), func(i int) bool { return exp[i].key() > key })
	}

	seen := map[int64]bool{}
	missing := map[int]bool{}
	next := -1 // index in exp of the next expected event; -1 before the first event
	var cursorKey uint64
	var cursorEpoch epoch
	r := 0
	applyReset := func(rs resetSeen) {
		out.Resets[rs.Reason]++
		if next < 0 {
			// Before any event: the client starts from here, nothing skipped.
			cursorKey, cursorEpoch = h.keyOf(rs.Epoch, rs.Seq), rs.Epoch
			return
		}
		end := max(firstAfter(h.keyOf(rs.Epoch, rs.Seq)), next)
		skipped := exp[next:end]
		if !resetTrue(h, rs, cursorKey, cursorEpoch, skipped, replayLimit) {
			out.FalseReset[rs.Reason]++
			for i := next; i < end; i++ {
				missing[i] = true
			}
		} else {
			out.Excused += len(skipped)
		}
		next = end
		cursorKey, cursorEpoch = h.keyOf(rs.Epoch, rs.Seq), rs.Epoch
	}
	for i, e := range events {
		for r < len(resets) && resets[r].Before <= i {
			applyReset(resets[r])
			r++
		}
		p, ok := pos[e.N]
		if !ok {
			out.Unexpected++
			continue
		}
		if exp[p].Seq != e.Seq || h.epochInc[e.Epoch] != exp[p].Inc {
			out.IDMismatch++
		}
		cursorKey, cursorEpoch = exp[p].key(), e.Epoch
		switch {
		case seen[e.N]:
			out.Duplicated = append(out.Duplicated, e.N)
			continue
		case next < 0:
			next = p + 1
		case p >= next:
			for j := next; j < p; j++ {
				missing[j] = true
			}
			next = p + 1
		default: // behind the position: late (filling a hole) or before the start
			delete(missing, p)
			out.Reordered = append(out.Reordered, e.N)
		}
		seen[e.N] = true
	}
	for ; r < len(resets); r++ {
		applyReset(resets[r])
	}
	if next >= 0 {
		for j := next; j < len(exp); j++ {
			missing[j] = true
		}
	}
	for j := range missing {
		if exp[j].Deleted {
			continue
		}
		out.Lost = append(out.Lost, exp[j].N)
	}
	slices.Sort(out.Lost)
	return out
}

// resetTrue judges a reset's reason against what the stream shows. from is
// where the client stood (its Last-Event-ID), skipped the client's events the
// reset jumps over.
func resetTrue(h history, rs resetSeen, fromKey uint64, fromEpoch epoch, skipped []known, replayLimit int) bool {
	to := h.keyOf(rs.Epoch, rs.Seq)
	switch rs.Reason {
	case "history-expired":
		// Something after the client's position up to the reset's is gone.
		for _, k := range h.events {
			if k.key() > fromKey && k.key() <= to && !k.Stored && !k.Deleted {
				return true
			}
		}
		return false
	case "too-many-events":
		n := 0
		for _, k := range h.events {
			if k.key() > fromKey && k.key() <= to {
				n++
			}
		}
		return len(skipped) > replayLimit || n > replayLimit
	case "stream-changed":
		return fromEpoch != 0 && rs.Epoch != fromEpoch
	}
	// malformed-id, id-beyond-end: the client only ever echoes the server's ids.
	return false
}
