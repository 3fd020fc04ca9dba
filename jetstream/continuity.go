package jetstream

import "time"

// clockSkew is how far the NATS server's clock, which stamps messages, may
// be ahead of ours when expiry by MaxAge is ruled out.
const clockSkew = 5 * time.Second

// historyLost judges a jump in stream sequences: a reader that has seen
// everything up to stream sequence after finds the next message further on,
// or finds the stream's first sequence beyond after+1. It reports whether
// messages the reader had not seen were removed from the head of the stream
// in a way that loses history. The caller has already checked the epoch;
// lastRead is the timestamp of the message at after (zero if none was read)
// and now is the local time.
//
// Only the head matters. While st.FirstSeq <= after+1, nothing the reader
// has not seen was taken from the head (MaxAge, MaxMsgs, MaxBytes and purges
// remove the oldest messages), so the skipped sequences were deleted one by
// one, superseded, or belong to subjects the reader does not follow.
//
// When the head moved past the reader, a stream with a per-subject limit
// (KV style) explains it by supersession: a newer message on the same
// subject replaced the old ones, and JetStream no longer holds what was
// replaced. That is normal, unless another limit could have removed them as
// well:
//   - MaxAge, unless the skipped messages are provably too young: they were
//     stored after lastRead (and after the stream was created), so none has
//     expired while that time plus MaxAge is still ahead of now, allowing
//     for clock skew;
//   - MaxMsgs or MaxBytes with DiscardOld, when the stream is at or near the
//     limit (near: a tenth of it, or two average messages of bytes).
//
// A purge of a KV-style stream cannot be told from supersession; both mean
// JetStream no longer holds those entries, which is what a KV reader expects.
func historyLost(st StreamState, after uint64, lastRead, now time.Time) bool {
	switch {
	case st.FirstSeq <= after+1:
		return false
	case !supersedes(st) || mayHaveExpired(st, lastRead, now):
		return true
	case st.DiscardNew:
		return false
	}
	return nearLimit(st.Msgs, st.MaxMsgs, 1) || nearLimit(st.Bytes, st.MaxBytes, averageSize(st))
}

// headMovesAreHarmless reports whether historyLost is false for any first
// sequence and any counts, given st's limits: a KV-style stream whose
// MaxMsgs and MaxBytes never remove messages (unlimited, or DiscardNew) and
// whose MaxAge is ruled out. Limits change only when someone updates the
// stream, so a recent state answers without asking the server again.
func headMovesAreHarmless(st StreamState, lastRead, now time.Time) bool {
	return supersedes(st) && !mayHaveExpired(st, lastRead, now) &&
		(st.DiscardNew || (st.MaxMsgs <= 0 && st.MaxBytes <= 0))
}

// supersedes reports whether a newer message on a subject removes older
// ones (a per-subject limit that does not refuse new messages).
func supersedes(st StreamState) bool {
	return st.MaxMsgsPerSubject > 0 && !st.DiscardNewPerSubject
}

// mayHaveExpired reports whether MaxAge could have removed messages stored
// after lastRead (and after the stream was created) by now.
func mayHaveExpired(st StreamState, lastRead, now time.Time) bool {
	if st.MaxAge <= 0 {
		return false
	}
	since := lastRead
	if since.Before(st.Created) {
		since = st.Created
	}
	return !since.Add(st.MaxAge).After(now.Add(clockSkew))
}

// nearLimit reports whether held is within a tenth of limit, or within two
// units of size of it (a message count's unit is 1, a byte count's an
// average message). A limit of 0 or less is no limit.
func nearLimit(held uint64, limit int64, size uint64) bool {
	if limit <= 0 {
		return false
	}
	headroom := max(uint64(limit)/10, 2*size)
	return held+headroom >= uint64(limit)
}

func averageSize(st StreamState) uint64 {
	if st.Msgs == 0 {
		return 0
	}
	return st.Bytes / st.Msgs
}
