package hub

// eventRing is a fixed-capacity FIFO of events. Its storage is allocated
// once, so pushing never allocates: both the hub's history and every
// subscription's queue are built on it. It is not safe for concurrent use;
// its owner holds the lock.
type eventRing struct {
	buf  []*Event
	head int // index of the oldest event in buf
	n    int
}

func newEventRing(capacity int) eventRing {
	return eventRing{buf: make([]*Event, capacity)}
}

func (r *eventRing) len() int   { return r.n }
func (r *eventRing) full() bool { return r.n == len(r.buf) }

// at returns the i-th oldest event, 0 <= i < len().
func (r *eventRing) at(i int) *Event {
	i += r.head
	if i >= len(r.buf) {
		i -= len(r.buf)
	}
	return r.buf[i]
}

// push appends e; the caller makes room first.
func (r *eventRing) push(e *Event) {
	i := r.head + r.n
	if i >= len(r.buf) {
		i -= len(r.buf)
	}
	r.buf[i] = e
	r.n++
}

// popFront removes and returns the oldest event. The slot is cleared so the
// ring does not keep evicted frames alive.
func (r *eventRing) popFront() *Event {
	e := r.buf[r.head]
	r.buf[r.head] = nil
	r.head++
	if r.head == len(r.buf) {
		r.head = 0
	}
	r.n--
	return e
}

// drainTo appends the events in order to dst and empties the ring.
func (r *eventRing) drainTo(dst []*Event) []*Event {
	for r.n > 0 {
		dst = append(dst, r.popFront())
	}
	r.head = 0
	return dst
}

// reset empties the ring, dropping references.
func (r *eventRing) reset() {
	clear(r.buf)
	r.head, r.n = 0, 0
}

// search returns the index of the first event with Seq > seq, or len() when
// there is none. Events are in increasing Seq order.
func (r *eventRing) search(seq uint64) int {
	lo, hi := 0, r.n
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if r.at(mid).Seq <= seq {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo
}
