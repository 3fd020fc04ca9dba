package hub

import (
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/caddy-sse/caddy-sse/subject"
)

const (
	defaultRingSize  = 8192
	defaultRingBytes = 64 << 20
	defaultQueueSize = 1024
)

// Config sizes the hub's history of recent events.
type Config struct {
	// RingSize is how many recent events are kept for replay. Default 8192.
	RingSize int
	// RingBytes caps the frame bytes kept; the oldest events are evicted
	// first. Default 64 MiB.
	RingBytes int
}

// Hub dispatches the events of one stream to subscriptions and keeps the
// most recent ones for replay.
//
// Locking: feedMu serialises the feed side (Begin, Publish, Close) and owns
// the publish scratch slices; mu guards the index, the history, the position
// and the subscription set. Publish holds mu only to record the event and
// collect the matching subscriptions, then queues outside it, so readers
// (Subscribe, Since, Last) wait at most for a trie walk.
type Hub struct {
	ready chan struct{}

	feedMu     sync.Mutex
	matches    []*Subscription // reused by Publish: no allocation per delivery
	overflowed []*Subscription

	mu        sync.RWMutex
	epoch     string
	last      uint64 // last sequence dispatched or given to Begin
	begun     bool
	closed    bool
	history   history
	index     index
	subs      []*Subscription // every registered subscription, for Begin/Close
	published uint64
	restarts  uint64 // Begin calls that broke the sequence: replays in progress check it

	delivered atomic.Uint64
	overflows atomic.Uint64
}

// New returns an empty hub; it is Ready after its first Begin.
func New(cfg Config) *Hub {
	if cfg.RingSize <= 0 {
		cfg.RingSize = defaultRingSize
	}
	if cfg.RingBytes <= 0 {
		cfg.RingBytes = defaultRingBytes
	}
	return &Hub{
		ready:   make(chan struct{}),
		history: newHistory(cfg.RingSize, cfg.RingBytes),
		index:   newIndex(),
	}
}

// Ready is closed once the feed called Begin: before that the hub knows no
// epoch, so ids it would encode are meaningless.
func (h *Hub) Ready() <-chan struct{} { return h.ready }

// Position returns the current epoch and the last sequence dispatched (or
// given to Begin). The feed uses it to resume where it stopped.
func (h *Hub) Position() (epoch string, last uint64) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.epoch, h.last
}

// Begin tells the hub where the feed (re)starts: the next event will be
// lastSeq+1 of epoch.
//
// When that continues the current position it is a resume and nothing
// changes. Otherwise the live sequence is broken (first call, recreated
// stream, or lost messages): the history is emptied and every subscription
// ends with ErrRestarted, so its client reconnects and gets a replay or a
// reset instead of a silent gap.
func (h *Hub) Begin(epoch string, lastSeq uint64) {
	h.feedMu.Lock()
	defer h.feedMu.Unlock()
	if h.begun && epoch == h.epoch && lastSeq == h.last {
		return
	}
	h.mu.Lock()
	first := !h.begun
	h.begun = true
	h.epoch, h.last = epoch, lastSeq
	h.history.reset(lastSeq)
	h.restarts++
	h.dropAllLocked(ErrRestarted)
	h.mu.Unlock()
	if first {
		close(h.ready)
	}
}

// Trim tells the hub that the stream no longer holds the events before
// firstSeq (purged, deleted, expired or superseded on a KV-style stream).
// They leave the history, so a resume from before firstSeq-1 is not covered
// by Since or Last and goes to JetStream, which answers that history is
// gone. It is not a restart: the position, the epoch and the subscriptions
// are unchanged, and events already queued to a client still reach it.
// A firstSeq at or below what the history already gave up does nothing;
// one beyond the position is kept, so events published later do not look
// contiguous with the range that is gone.
func (h *Hub) Trim(firstSeq uint64) {
	h.feedMu.Lock()
	defer h.feedMu.Unlock()
	if !h.begun {
		return
	}
	h.mu.Lock()
	h.history.trim(firstSeq)
	h.mu.Unlock()
}

// dropAllLocked unregisters and ends every subscription. Ending them under
// mu means nobody can see the new position while an old subscription still
// looks open (see Subscription.Epoch); it is O(1) per subscription.
func (h *Hub) dropAllLocked(err error) {
	for _, s := range h.subs {
		s.setPos = -1
		s.entries = nil
		s.end(err)
	}
	clear(h.subs)
	h.subs = h.subs[:0]
	h.index = newIndex()
}

// Publish dispatches the event seq. The frame is encoded once, recorded in
// the history and queued, as the same *Event, to every subscription with a
// matching pattern (once, however many of its patterns match). A sequence
// not above the last one is a duplicate and ignored, as is anything before
// the first Begin or after Close. It never blocks on a subscriber.
//
// Calls are serialised by feedMu: the feed's calls never overlap but may come
// from different goroutines (each consumer the tail builds delivers on its own).
func (h *Hub) Publish(seq uint64, subject, eventType string, data []byte) {
	h.feedMu.Lock()
	defer h.feedMu.Unlock()
	// epoch, last, begun and closed only change under feedMu: no mu needed.
	if !h.begun || h.closed || seq <= h.last {
		return
	}
	e := newEvent(h.epoch, seq, subject, eventType, data) // outside mu: payloads can be big

	h.mu.Lock()
	h.history.add(e)
	h.last = seq
	h.published++
	matches := h.index.collect(h.matches[:0], subject, seq)
	h.mu.Unlock()

	// A subscription that is closed meanwhile just refuses the event; one
	// made meanwhile saw last == seq and must not get it.
	var delivered uint64
	overflowed := h.overflowed[:0]
	for _, s := range matches {
		queued, full := s.offer(e)
		if queued {
			delivered++
		}
		if full {
			overflowed = append(overflowed, s)
		}
	}
	h.delivered.Add(delivered)
	if len(overflowed) > 0 {
		h.overflows.Add(uint64(len(overflowed)))
		h.mu.Lock()
		for _, s := range overflowed {
			h.unregisterLocked(s)
		}
		h.mu.Unlock()
	}
	clear(matches) // do not keep closed subscriptions alive
	clear(overflowed)
	h.matches, h.overflowed = matches[:0], overflowed[:0]
}

// Subscribe registers a subscription for patterns and returns last, the
// handover point: every event dispatched later (Seq > last) that matches
// any pattern is queued exactly once, and no event <= last ever is. The
// caller replays (cursor, last] itself (Since, Last or JetStream), then
// drains the subscription.
//
// queueSize bounds the events waiting for the client (default 1024 when
// <= 0). Patterns must be valid (ErrBadPattern); after Close, Subscribe
// returns ErrClosed.
func (h *Hub) Subscribe(patterns []string, queueSize int) (sub *Subscription, last uint64, err error) {
	patterns, err = minimalPatterns(patterns)
	if err != nil {
		return nil, 0, err
	}
	if queueSize <= 0 {
		queueSize = defaultQueueSize
	}
	// Allocate before taking the lock.
	s := &Subscription{
		hub:     h,
		notify:  make(chan struct{}, 1),
		done:    make(chan struct{}),
		entries: make([]entry, 0, len(patterns)),
		queue:   newEventRing(queueSize),
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, 0, ErrClosed
	}
	s.epoch = h.epoch
	s.through = h.last
	for _, p := range patterns {
		h.index.insert(s, p)
	}
	s.setPos = len(h.subs)
	h.subs = append(h.subs, s)
	return s, h.last, nil
}

// minimalPatterns validates patterns and drops those another one already
// covers (including duplicates), so the index holds fewer entries. Events
// matching several of the remaining patterns are still deduplicated.
func minimalPatterns(patterns []string) ([]string, error) {
	if len(patterns) == 0 {
		return nil, fmt.Errorf("%w: no patterns", ErrBadPattern)
	}
	for _, p := range patterns {
		if !subject.ValidPattern(p) {
			return nil, fmt.Errorf("%w: %q", ErrBadPattern, p)
		}
	}
	return subject.Minimal(patterns), nil
}

// unregister removes s from the index and the subscription set, if still
// there.
func (h *Hub) unregister(s *Subscription) {
	h.mu.Lock()
	h.unregisterLocked(s)
	h.mu.Unlock()
}

func (h *Hub) unregisterLocked(s *Subscription) {
	if s.setPos < 0 {
		return
	}
	h.index.remove(s)
	last := len(h.subs) - 1
	moved := h.subs[last]
	h.subs[s.setPos] = moved
	moved.setPos = s.setPos
	h.subs[last] = nil
	h.subs = h.subs[:last]
	s.setPos = -1
}

// Close ends every subscription with ErrClosed; later Subscribe calls fail
// with ErrClosed and Publish does nothing. The history stays readable.
func (h *Hub) Close() {
	h.feedMu.Lock()
	defer h.feedMu.Unlock()
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	h.closed = true
	h.dropAllLocked(ErrClosed)
}

// Stats is a snapshot of the hub's counters.
type Stats struct {
	Subscriptions int    // open subscriptions
	Published     uint64 // events dispatched
	Delivered     uint64 // events queued to subscriptions, summed over them
	Overflows     uint64 // subscriptions ended by ErrOverflow
	RingLen       int    // events in the history
	RingBytes     int    // frame bytes in the history
}

// Stats returns the current counters.
func (h *Hub) Stats() Stats {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return Stats{
		Subscriptions: len(h.subs),
		Published:     h.published,
		Delivered:     h.delivered.Load(),
		Overflows:     h.overflows.Load(),
		RingLen:       h.history.events.len(),
		RingBytes:     h.history.bytes,
	}
}
