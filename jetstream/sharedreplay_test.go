package jetstream

import (
	"errors"
	"fmt"
	"sync"
	"testing"
)

// Many clients replaying the same range at once share one read: one consumer, whatever their number, and each
// gets every event once, in order.
func TestConcurrentReplaysShareOneRead(t *testing.T) {
	_, c := inProcess(t)
	ensure(t, c, testStream("SH", "sh.>"))
	all := fillStream(t, c, 1000, "sh.a", "sh.b")
	want := expect(all, []string{"sh.a"}, 100, 1000)

	before := c.readersCreated.Load()
	const clients = 200
	start := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for i := range clients {
		wg.Go(func() {
			<-start
			// Later clients ask for a little more, as clients subscribing a moment later do.
			upto := uint64(1000 - clients + i)
			got, err := collect(t, func(fn func([]Message) error) error {
				return c.Replay(ctxFor(t), ReplayRequest{Stream: "SH", Filters: []string{"sh.a"}, After: 100, Upto: upto, EventHeader: "Sse-Event"}, fn)
			})
			if err != nil {
				errs <- err
				return
			}
			if w := expect(want, []string{"sh.a"}, 100, upto); !sameEvents(got, w) {
				errs <- fmt.Errorf("client %d: %d events, want %d", i, len(got), len(w))
			}
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	// One shared read, plus at most a few for clients whose upto the read had passed when they joined.
	if n := c.readersCreated.Load() - before; n > 5 {
		t.Fatalf("%d consumers created for %d clients of one range, want a handful at most", n, clients)
	}
	waitFor(t, "no consumer left behind", func() bool { return consumerCount(t, c, "SH") == 0 })
}

// Clients that share a read share its answer too: history gone in the middle of the range is a reset for the
// clients whose range reaches the hole, not for those whose range ends before it.
func TestSharedReadHistoryGone(t *testing.T) {
	_, c := inProcess(t)
	ensure(t, c, StreamConfig{Name: "SG", Subjects: []string{"sg.>"}, MaxBytes: 1 << 20, MaxMsgs: 300})
	fillStream(t, c, 300, "sg.x")
	s := c.joinRead(ReplayRequest{Stream: "SG", After: 0, Upto: 300})
	defer c.leaveRead(s)
	// Stand-in for a read that found the hole after 128 events (see TestReplayNoticesHistoryRemovedWhileReading).
	waitFor(t, "the shared read to finish", func() bool { s.mu.Lock(); defer s.mu.Unlock(); return s.done })
	s.mu.Lock()
	s.msgs = s.msgs[:128]
	s.err, s.errAfter = ErrHistoryGone, s.msgs[127].Seq
	s.mu.Unlock()

	for _, tt := range []struct {
		upto uint64
		want error
	}{{100, nil}, {128, nil}, {129, ErrHistoryGone}, {300, ErrHistoryGone}} {
		got, err := collect(t, func(fn func([]Message) error) error {
			return c.Replay(ctxFor(t), ReplayRequest{Stream: "SG", After: 0, Upto: tt.upto}, fn)
		})
		if !errors.Is(err, tt.want) || (tt.want == nil && err != nil) {
			t.Errorf("upto %d: %v, want %v", tt.upto, err, tt.want)
		}
		if n := min(tt.upto, 128); uint64(len(got)) != n {
			t.Errorf("upto %d: %d events, want %d", tt.upto, len(got), n)
		}
	}
}

// A client that leaves does not end the read for the others.
func TestSharedReadOutlivesItsFirstClient(t *testing.T) {
	_, c := inProcess(t)
	ensure(t, c, testStream("SO", "so.>"))
	fillStream(t, c, 500, "so.x")
	first := errors.New("first client went away")
	err := c.Replay(ctxFor(t), ReplayRequest{Stream: "SO", After: 0, Upto: 500}, func([]Message) error { return first })
	if !errors.Is(err, first) {
		t.Fatalf("first client: %v", err)
	}
	got, err := collect(t, func(fn func([]Message) error) error {
		return c.Replay(ctxFor(t), ReplayRequest{Stream: "SO", After: 0, Upto: 500}, fn)
	})
	if err != nil || len(got) != 500 {
		t.Fatalf("second client: %d events, %v; want 500", len(got), err)
	}
}

// A shared read that fails for a reason of its own does not end its clients' replays: each follows a new
// read from where the failed one stopped, a few times at most. An answer about the range itself is final.
func TestSharedReadFailureIsRetried(t *testing.T) {
	_, c := inProcess(t)
	ensure(t, c, testStream("SR", "sr.>"))
	fillStream(t, c, 300, "sr.x")
	transient := errors.New("jetstream: replay fetch: nats: timeout")
	for _, tt := range []struct {
		name    string
		err     error
		kept    int // events the failed read got
		retries int
		want    error
		events  int
	}{
		{"retried", transient, 128, 3, nil, 300},
		{"retried from the start", transient, 0, 3, nil, 300},
		{"no retries left", transient, 128, 0, transient, 128},
		{"history gone", ErrHistoryGone, 128, 3, ErrHistoryGone, 128},
	} {
		t.Run(tt.name, func(t *testing.T) {
			req := ReplayRequest{Stream: "SR", After: 0, Upto: 300}
			s := c.joinRead(req)
			defer c.leaveRead(s)
			waitFor(t, "the shared read to finish", func() bool { s.mu.Lock(); defer s.mu.Unlock(); return s.done })
			// Stand-in for a read that failed after tt.kept events.
			s.mu.Lock()
			s.msgs = s.msgs[:tt.kept]
			s.err, s.errAfter, s.joinable = tt.err, 0, false
			if tt.kept > 0 {
				s.errAfter = s.msgs[tt.kept-1].Seq
			}
			s.mu.Unlock()
			got, err := collect(t, func(fn func([]Message) error) error {
				return c.follow(ctxFor(t), req, s, fn, tt.retries)
			})
			if !errors.Is(err, tt.want) || (tt.want == nil && err != nil) {
				t.Fatalf("%v, want %v", err, tt.want)
			}
			if len(got) != tt.events {
				t.Fatalf("%d events, want %d", len(got), tt.events)
			}
			for i, p := range got {
				if p.Seq != uint64(i+1) {
					t.Fatalf("event %d is seq %d", i, p.Seq)
				}
			}
		})
	}
}
