package hub

import "slices"

// Since and Last serve replays from the history. They scan under the read
// lock, which is bounded by the history size and only delays the feed, never
// another reader. Their events may belong to a newer epoch than the caller's
// subscription if the feed restarted meanwhile: check the subscription's Err
// after calling them (Begin ends subscriptions before the history changes).

// Since appends to dst the history events with after < Seq <= upto that match
// any of patterns, in order.
//
// covered is false when the history cannot answer for the whole range: it
// no longer holds seq after+1 (evicted, or from before Begin), upto is
// beyond the last dispatched event, or the hub has not begun. The caller
// then reads JetStream. overLimit is true when more than limit events match
// (limit <= 0: no limit). In both cases dst is returned unchanged.
func (h *Hub) Since(dst []*Event, patterns []string, after, upto uint64, limit int) (events []*Event, covered, overLimit bool) {
	if after >= upto {
		return dst, true, false
	}
	h.mu.RLock()
	defer h.mu.RUnlock()
	if !h.begun || after < h.history.floor || upto > h.last {
		return dst, false, false
	}
	start := len(dst)
	r := &h.history.events
	for i := r.search(after); i < r.len(); i++ {
		e := r.at(i)
		if e.Seq > upto {
			break
		}
		if !matchAny(patterns, e.Subject) {
			continue
		}
		if limit > 0 && len(dst)-start == limit {
			return dst[:start], true, true
		}
		dst = append(dst, e)
	}
	return dst, true, false
}

// Last appends to dst the n most recent history events with Seq <= upto that
// match any of patterns, in order.
//
// covered is false when fewer than n were found and the history does not
// reach back to the start of the stream (it evicted events, or began after
// the first one), when upto is beyond the last dispatched event, or before
// Begin. dst is then returned unchanged and the caller reads JetStream.
func (h *Hub) Last(dst []*Event, patterns []string, n int, upto uint64) (events []*Event, covered bool) {
	if n <= 0 {
		return dst, true
	}
	h.mu.RLock()
	defer h.mu.RUnlock()
	if !h.begun || upto > h.last {
		return dst, false
	}
	start := len(dst)
	r := &h.history.events
	for i := r.search(upto) - 1; i >= 0 && len(dst)-start < n; i-- {
		if e := r.at(i); matchAny(patterns, e.Subject) {
			dst = append(dst, e)
		}
	}
	if len(dst)-start < n && h.history.floor != 0 {
		return dst[:start], false
	}
	slices.Reverse(dst[start:])
	return dst, true
}

func matchAny(patterns []string, subject string) bool {
	for _, p := range patterns {
		if Match(p, subject) {
			return true
		}
	}
	return false
}
