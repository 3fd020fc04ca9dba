package hub

import "sync"

// Subscription is one client's live feed: the events of its patterns that
// the hub dispatched after Subscribe's last, in order, each once.
//
// The hub's publish path only ever does non-blocking work here (store a
// pointer in a preallocated queue, signal a cap-1 channel), so a stuck
// client cannot delay anyone else. When the queue is full the subscription
// ends with ErrOverflow; the client reconnects and replays from its last id.
type Subscription struct {
	hub    *Hub
	notify chan struct{}
	done   chan struct{}

	epoch string // the hub's epoch when subscribed; fixed

	// Guarded by hub.mu.
	entries    []entry // where the patterns sit in the index
	setPos     int     // position in hub.subs, -1 once unregistered
	matchedSeq uint64  // dedupe mark used by index.collect (publish path only)

	mu      sync.Mutex
	wake    func() // replaces the notify signal once set (SetWaker)
	queue   eventRing
	through uint64 // every event with Seq <= through was queued or skipped
	err     error  // non-nil once ended; done is closed at the same time
}

// Epoch is the hub's epoch when the subscription was made. Every event it
// delivers belongs to that epoch: the hub ends subscriptions with
// ErrRestarted, under its lock, before it switches to another one.
func (s *Subscription) Epoch() string { return s.epoch }

// Notify is signalled, without blocking, whenever events are queued. It has
// capacity 1, so one signal may stand for many events: drain everything
// after each receive.
func (s *Subscription) Notify() <-chan struct{} { return s.notify }

// SetWaker makes the subscription call wake instead of signalling Notify: whenever events are queued, and
// once when it ends. wake runs on the publishing goroutine, possibly under the hub's locks, so it must only
// hand the work on (schedule a writer), never call back into the hub or block. Events queued before the
// call are not announced: the caller drains once after setting it.
func (s *Subscription) SetWaker(wake func()) {
	s.mu.Lock()
	s.wake = wake
	ended := s.err != nil
	s.mu.Unlock()
	if ended {
		wake()
	}
}

// Done is closed when the subscription ended; Err says why.
func (s *Subscription) Done() <-chan struct{} { return s.done }

// Err returns ErrOverflow, ErrRestarted or ErrClosed once the subscription
// has ended, and nil while it is open.
func (s *Subscription) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// Drain appends the queued events to dst in order and empties the queue.
// After the subscription ended it returns dst unchanged: what was still
// queued is dropped, since the client must reconnect and replay anyway.
func (s *Subscription) Drain(dst []*Event) []*Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.queue.drainTo(dst)
}

// SkipThrough drops queued events with Seq <= seq and makes sure such events
// are never queued later. A client that replayed past the handover point
// from JetStream uses it to avoid duplicates.
func (s *Subscription) SkipThrough(seq uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.through = max(s.through, seq)
	for s.queue.len() > 0 && s.queue.at(0).Seq <= seq {
		s.queue.popFront()
	}
}

// Close unregisters the subscription; Err then reports ErrClosed unless it
// had already ended. It is idempotent and safe concurrently with Publish:
// an event being dispatched at that moment is simply not queued.
func (s *Subscription) Close() {
	s.hub.unregister(s)
	s.end(ErrClosed)
}

// offer queues e unless the subscription ended or already has it. It
// reports whether e was queued and whether the queue overflowed (the
// subscription has then ended and must be unregistered by the caller).
func (s *Subscription) offer(e *Event) (queued, overflowed bool) {
	s.mu.Lock()
	if s.err != nil || e.Seq <= s.through {
		s.mu.Unlock()
		return false, false
	}
	if s.queue.full() {
		s.endLocked(ErrOverflow)
		s.mu.Unlock()
		return false, true
	}
	s.queue.push(e)
	s.through = e.Seq
	wake := s.wake
	s.mu.Unlock()
	if wake != nil {
		wake()
		return true, false
	}
	select {
	case s.notify <- struct{}{}:
	default: // a signal is already pending
	}
	return true, false
}

// end records why the subscription ended, once.
func (s *Subscription) end(err error) {
	s.mu.Lock()
	s.endLocked(err)
	s.mu.Unlock()
}

func (s *Subscription) endLocked(err error) {
	if s.err != nil {
		return
	}
	s.err = err
	s.queue = eventRing{} // O(1) even for a big queue: the hub may hold its lock
	close(s.done)
	if s.wake != nil {
		s.wake()
	}
}
