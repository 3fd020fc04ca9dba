package hub

// eventRing is a bounded FIFO of events: both the hub's history and every
// subscription's queue are built on it. It is not safe for concurrent use;
// its owner holds the lock.
//
// Storage starts small and doubles up to the capacity, so an idle client does
// not pay for a queue it never fills (tens of thousands of idle clients are
// the common case), while a busy one stops allocating once it has grown.
type eventRing struct {
	buf   []*Event
	head  int // index of the oldest event in buf
	n     int
	limit int // capacity: the most events the ring holds
}

// initialRingStorage is the storage a new ring starts with.
const initialRingStorage = 8

func newEventRing(capacity int) eventRing {
	return eventRing{buf: make([]*Event, min(capacity, initialRingStorage)), limit: capacity}
}

func (r *eventRing) len() int   { return r.n }
func (r *eventRing) full() bool { return r.n == r.limit }

// grow doubles the storage (up to limit), keeping the events in order.
func (r *eventRing) grow() {
	buf := make([]*Event, min(max(2*len(r.buf), 1), r.limit))
	for i := 0; i < r.n; i++ {
		buf[i] = r.at(i)
	}
	r.buf, r.head = buf, 0
}

// at returns the i-th oldest event, 0 <= i < len().
func (r *eventRing) at(i int) *Event {
	i += r.head
	if i >= len(r.buf) {
		i -= len(r.buf)
	}
	return r.buf[i]
}

// push appends e; the caller makes room first (full() is false).
func (r *eventRing) push(e *Event) {
	if r.n == len(r.buf) {
		r.grow()
	}
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
