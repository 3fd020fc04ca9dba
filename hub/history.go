package hub

// history is the hub's in-memory tail of recent events, used to serve
// replays without a JetStream round trip. It holds every event dispatched
// with floor < Seq <= last: "covered" answers in Since and Last are
// decided by comparing a cursor with floor.
type history struct {
	events   eventRing
	bytes    int // frame bytes held
	maxBytes int
	floor    uint64 // highest Seq evicted, the position given to Begin, or a trim's first sequence - 1
}

func newHistory(size, maxBytes int) history {
	return history{events: newEventRing(size), maxBytes: maxBytes}
}

// add appends e, evicting the oldest events while the count or byte cap
// would be exceeded. The newest event is always kept, even if it alone is
// larger than maxBytes, so the history never has a hole at its end.
func (h *history) add(e *Event) {
	for h.events.len() > 0 && (h.events.full() || h.bytes+len(e.Frame) > h.maxBytes) {
		old := h.events.popFront()
		h.bytes -= len(old.Frame)
		h.floor = old.Seq
	}
	h.events.push(e)
	h.bytes += len(e.Frame)
}

// reset empties the history; events up to floor are only in JetStream.
func (h *history) reset(floor uint64) {
	h.events.reset()
	h.bytes = 0
	h.floor = floor
}

// trim drops the events before firstSeq and raises floor to firstSeq-1, so
// that a cursor before firstSeq-1 is no longer covered even when the
// history held nothing there.
func (h *history) trim(firstSeq uint64) {
	if firstSeq == 0 || firstSeq-1 <= h.floor {
		return
	}
	for h.events.len() > 0 && h.events.at(0).Seq < firstSeq {
		old := h.events.popFront()
		h.bytes -= len(old.Frame)
	}
	h.floor = firstSeq - 1
}
