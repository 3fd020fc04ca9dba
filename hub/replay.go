package hub

import (
	"slices"

	"github.com/caddy-sse/caddy-sse/subject"
)

// Since and Last serve replays from the history. Matching a whole history
// against patterns takes a while (~100µs for 8192 events), and the feed
// would wait for it: so they copy event pointers out in chunks under the
// read lock and match with no lock held. Events are immutable, so the copies
// stay valid; between chunks they re-check that the history still continues
// where they stopped (no eviction past them, no restart).
//
// Their events may belong to a newer epoch than a subscription made before
// the call if the feed restarted meanwhile: check that subscription's Err
// after calling them (Begin ends subscriptions before the history changes).

// scanChunk events are copied per lock hold: 2 KiB of pointers on the stack.
const scanChunk = 256

// Floor is the position history starts after: events with a higher sequence, up to the last dispatched, are
// in memory; those at or below it only in JetStream.
func (h *Hub) Floor() uint64 {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.history.floor
}

// Since appends to dst the history events with after < Seq <= upto that match
// any of patterns, in order.
//
// covered is false when the history cannot answer for the whole range: it
// no longer holds seq after+1 (evicted, or from before Begin), upto is
// beyond the last dispatched event, the feed restarted, or the hub has not
// begun. The caller then reads JetStream. overLimit is true when more than
// limit events match (limit <= 0: no limit). In both cases dst is returned
// unchanged.
func (h *Hub) Since(dst []*Event, patterns []string, after, upto uint64, limit int) (events []*Event, covered, overLimit bool) {
	if after >= upto {
		return dst, true, false
	}
	start := len(dst)
	var chunk [scanChunk]*Event
	pos := after // every event <= pos has been looked at

	h.mu.RLock()
	if !h.begun || upto > h.last {
		h.mu.RUnlock()
		return dst, false, false
	}
	restarts := h.restarts
	for {
		if h.restarts != restarts || pos < h.history.floor {
			h.mu.RUnlock()
			return dst[:start], false, false
		}
		r := &h.history.events
		k := 0
		for i := r.search(pos); i < r.len() && k < scanChunk; i++ {
			e := r.at(i)
			if e.Seq > upto {
				break
			}
			chunk[k] = e
			k++
		}
		h.mu.RUnlock()

		for _, e := range chunk[:k] {
			if !matchAny(patterns, e.Subject) {
				continue
			}
			if limit > 0 && len(dst)-start == limit {
				return dst[:start], true, true
			}
			dst = append(dst, e)
		}
		if k < scanChunk {
			return dst, true, false
		}
		pos = chunk[k-1].Seq
		h.mu.RLock()
	}
}

// Last appends to dst the n most recent history events with Seq <= upto that
// match any of patterns, in order.
//
// covered is false when fewer than n were found and the history does not
// reach back to the start of the stream (it evicted events, or began after
// the first one), when upto is beyond the last dispatched event, when the
// feed restarted, or before Begin. dst is then returned unchanged and the
// caller reads JetStream.
func (h *Hub) Last(dst []*Event, patterns []string, n int, upto uint64) (events []*Event, covered bool) {
	if n <= 0 {
		return dst, true
	}
	start := len(dst)
	var chunk [scanChunk]*Event
	below := upto // events > below have been looked at

	h.mu.RLock()
	if !h.begun || upto > h.last {
		h.mu.RUnlock()
		return dst, false
	}
	restarts := h.restarts
	for {
		if h.restarts != restarts {
			h.mu.RUnlock()
			return dst[:start], false
		}
		r := &h.history.events
		end := r.search(below)
		from := max(end-scanChunk, 0)
		for i := from; i < end; i++ {
			chunk[i-from] = r.at(i)
		}
		k := end - from
		// Whether older events exist that the history never held, decided
		// in the same lock hold as "this chunk reaches the oldest event".
		complete := from == 0 && h.history.floor == 0
		h.mu.RUnlock()

		for i := k - 1; i >= 0 && len(dst)-start < n; i-- {
			if e := chunk[i]; matchAny(patterns, e.Subject) {
				dst = append(dst, e)
			}
		}
		switch {
		case len(dst)-start == n || complete:
			slices.Reverse(dst[start:])
			return dst, true
		case from == 0:
			return dst[:start], false
		}
		below = chunk[0].Seq - 1
		h.mu.RLock()
	}
}

func matchAny(patterns []string, subj string) bool {
	for _, p := range patterns {
		if subject.Match(p, subj) {
			return true
		}
	}
	return false
}
