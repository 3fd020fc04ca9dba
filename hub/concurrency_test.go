package hub

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"testing"

	"github.com/caddy-sse/caddy-sse/eventid"
)

// seqChecker verifies one subscriber's view: strictly increasing sequences,
// only matching subjects, and no matching event skipped in between.
type seqChecker struct {
	t        *testing.T
	name     string
	patterns []string
	subjects []string // subjects[seq] as published
	prev     uint64
}

func (c *seqChecker) next(e *Event) bool {
	if e.Seq <= c.prev {
		c.t.Errorf("%s: seq %d after %d (duplicate or reordered)", c.name, e.Seq, c.prev)
		return false
	}
	if e.Subject != c.subjects[e.Seq] || !matchAny(c.patterns, e.Subject) {
		c.t.Errorf("%s: seq %d subject %q does not belong to %q", c.name, e.Seq, e.Subject, c.patterns)
		return false
	}
	if !bytes.HasPrefix(e.Frame, []byte("id: "+eventid.Format("ep", e.Seq)+"\n")) {
		c.t.Errorf("%s: seq %d has frame %q", c.name, e.Seq, e.Frame)
		return false
	}
	return c.noneMissingUpTo(e.Seq-1) && c.advance(e.Seq)
}

func (c *seqChecker) advance(seq uint64) bool { c.prev = seq; return true }

// noneMissingUpTo reports whether no event in (prev, upto] matches.
func (c *seqChecker) noneMissingUpTo(upto uint64) bool {
	for s := c.prev + 1; s <= upto; s++ {
		if matchAny(c.patterns, c.subjects[s]) {
			c.t.Errorf("%s: seq %d (%s) missing between %d and %d", c.name, s, c.subjects[s], c.prev, upto)
			return false
		}
	}
	return true
}

// TestConcurrentSubscribers runs the feed against subscribers that keep
// subscribing, replaying the handover from the history, draining, skipping
// and closing, plus a reader of Since/Last/Stats. Every subscription must
// see exactly the matching events after its last, in order, until it ends.
// With trims, the feed also drops old history the way a purge would: a
// history replay must then be complete or not covered, and no subscription
// ends.
func TestConcurrentSubscribers(t *testing.T) {
	for _, trimKeep := range []int{0, 300} {
		t.Run(fmt.Sprintf("trim keeping %d", trimKeep), func(t *testing.T) { testConcurrentSubscribers(t, trimKeep) })
	}
}

func testConcurrentSubscribers(t *testing.T, trimKeep int) {
	events := 20000
	if testing.Short() {
		events = 4000
	}
	rng := rand.New(rand.NewPCG(7, 7))
	kinds := []string{"msg", "join", "leave.now"}
	subjects := make([]string, events+1)
	for seq := 1; seq <= events; seq++ {
		subjects[seq] = fmt.Sprintf("room.%d.%s", rng.IntN(8), kinds[rng.IntN(len(kinds))])
	}
	patternSets := [][]string{
		{"room.1.*"},
		{"room.*.msg"},
		{"room.2.msg", "room.3.>"},
		{">"},
		{"room.*.msg", "room.1.*", "*.1.>"}, // overlapping: dedupe under load
		{"room.5.join"},
		{"room.*.leave.*"},
	}

	h := New(Config{RingSize: 512})
	h.Begin("ep", 0)
	pubDone := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(pubDone)
		for seq := 1; seq <= events; seq++ {
			h.Publish(uint64(seq), subjects[seq], "", []byte("x"))
			if trimKeep > 0 && seq%100 == 0 && seq > trimKeep {
				h.Trim(uint64(seq - trimKeep))
			}
			if seq%32 == 0 {
				runtime.Gosched() // let subscribers interleave on a small machine
			}
		}
	})
	wg.Go(func() { // readers share the lock with the feed
		var buf []*Event
		for {
			select {
			case <-pubDone:
				return
			default:
			}
			_, last := h.Position()
			buf, _, _ = h.Since(buf[:0], []string{"room.*.msg"}, last-min(last, 300), last, 100)
			buf, _ = h.Last(buf[:0], []string{"room.1.*"}, 10, last)
			h.Stats()
		}
	})
	var completed sync.Map // subscriptions that lived to the end of the feed
	for w := range 8 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			for round := 0; ; round++ {
				select {
				case <-pubDone:
					return
				default:
				}
				name := fmt.Sprintf("worker %d round %d", w, round)
				if runSubscriber(t, h, rng, name, patternSets[rng.IntN(len(patternSets))], subjects, pubDone) {
					completed.Store(name, true)
				}
			}
		})
	}
	wg.Wait()
	if st := h.Stats(); st.Published != uint64(events) || st.Subscriptions != 0 {
		t.Fatalf("Stats after the run = %+v", st)
	}
	n := 0
	completed.Range(func(any, any) bool { n++; return true })
	t.Logf("%d subscriptions checked to the end of the feed; %d overflowed", n, h.Stats().Overflows)
}

// runSubscriber lives one subscription. It reports whether the subscription
// was open when the feed finished and was checked to the very end.
func runSubscriber(t *testing.T, h *Hub, rng *rand.Rand, name string, patterns, subjects []string, pubDone <-chan struct{}) bool {
	queue := 32 << rng.IntN(7) // 32..2048: small queues overflow now and then
	sub, last, err := h.Subscribe(patterns, queue)
	if err != nil {
		t.Errorf("%s: Subscribe: %v", name, err)
		return false
	}
	defer sub.Close()

	// Handover: history replay of (cursor, last] must be complete too.
	cursor := last - min(last, uint64(rng.IntN(400)))
	if replay, covered, _ := h.Since(nil, patterns, cursor, last, 0); covered {
		rc := &seqChecker{t: t, name: name + " replay", patterns: patterns, subjects: subjects, prev: cursor}
		for _, e := range replay {
			if !rc.next(e) {
				return false
			}
		}
		rc.noneMissingUpTo(last)
	}

	c := &seqChecker{t: t, name: name, patterns: patterns, subjects: subjects, prev: last}
	drain := func(buf []*Event) ([]*Event, bool) {
		buf = sub.Drain(buf[:0])
		for _, e := range buf {
			if !c.next(e) {
				return buf, false
			}
		}
		return buf, true
	}
	var buf []*Event
	ok := true
	for budget := rng.IntN(4000); budget > 0 && ok; {
		select {
		case <-sub.Notify():
			buf, ok = drain(buf)
			budget -= len(buf)
			if rng.IntN(50) == 0 {
				skip := c.prev + uint64(rng.IntN(20))
				sub.SkipThrough(skip)
				c.prev = max(c.prev, skip)
			}
		case <-sub.Done():
			if !errors.Is(sub.Err(), ErrOverflow) {
				t.Errorf("%s: ended with %v", name, sub.Err())
			}
			return false
		case <-pubDone:
			if _, ok := drain(buf); !ok || sub.Err() != nil {
				return false
			}
			return c.noneMissingUpTo(uint64(len(subjects) - 1))
		}
	}
	return false
}
