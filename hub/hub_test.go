package hub

import (
	"errors"
	"fmt"
	"slices"
	"testing"
)

// newTestHub returns a hub that has begun at seq 0 of epoch "ep".
func newTestHub(t testing.TB, cfg Config) *Hub {
	t.Helper()
	h := New(cfg)
	h.Begin("ep", 0)
	return h
}

// publishRange publishes seqs from..to on subject.
func publishRange(h *Hub, from, to uint64, subject string) {
	for seq := from; seq <= to; seq++ {
		h.Publish(seq, subject, "", fmt.Appendf(nil, "%d", seq))
	}
}

func seqsOf(events []*Event) []uint64 {
	out := []uint64{}
	for _, e := range events {
		out = append(out, e.Seq)
	}
	return out
}

func seqRange(from, to uint64) []uint64 {
	out := []uint64{}
	for s := from; s <= to; s++ {
		out = append(out, s)
	}
	return out
}

func mustSubscribe(t testing.TB, h *Hub, queue int, patterns ...string) (*Subscription, uint64) {
	t.Helper()
	sub, last, err := h.Subscribe(patterns, queue)
	if err != nil {
		t.Fatalf("Subscribe(%q): %v", patterns, err)
	}
	return sub, last
}

func isDone(s *Subscription) bool {
	select {
	case <-s.Done():
		return true
	default:
		return false
	}
}

func TestHandoverSplitsAtLast(t *testing.T) {
	for _, tc := range []struct {
		before, after uint64 // events published before and after Subscribe
	}{{0, 0}, {0, 5}, {5, 0}, {5, 5}, {100, 1}} {
		t.Run(fmt.Sprintf("%d+%d", tc.before, tc.after), func(t *testing.T) {
			h := newTestHub(t, Config{})
			publishRange(h, 1, tc.before, "a")
			sub, last := mustSubscribe(t, h, 0, "a")
			if last != tc.before {
				t.Fatalf("last = %d, want %d", last, tc.before)
			}
			publishRange(h, tc.before+1, tc.before+tc.after, "a")
			live := seqsOf(sub.Drain(nil))
			replay, covered, _ := h.Since(nil, []string{"a"}, 0, last, 0)
			if !covered {
				t.Fatal("history does not cover the replay")
			}
			if got := append(seqsOf(replay), live...); !slices.Equal(got, seqRange(1, tc.before+tc.after)) {
				t.Fatalf("replay %v + live %v is not 1..%d", seqsOf(replay), live, tc.before+tc.after)
			}
		})
	}
}

func TestPublishIgnores(t *testing.T) {
	h := New(Config{})
	sub, _ := mustSubscribe(t, h, 0, ">")
	h.Publish(1, "a", "", nil) // before Begin: no epoch yet
	if st := h.Stats(); st.Published != 0 {
		t.Fatalf("published before Begin: %+v", st)
	}
	h.Begin("ep", 10)
	if !errors.Is(sub.Err(), ErrRestarted) {
		t.Fatalf("subscription made before Begin: Err = %v", sub.Err())
	}
	sub, _ = mustSubscribe(t, h, 0, ">")
	for _, seq := range []uint64{5, 10, 11, 11, 9, 12} {
		h.Publish(seq, "a", "", nil)
	}
	if got := seqsOf(sub.Drain(nil)); !slices.Equal(got, []uint64{11, 12}) {
		t.Fatalf("delivered %v, want duplicates and old seqs ignored", got)
	}
	if _, last := h.Position(); last != 12 {
		t.Fatalf("Position last = %d", last)
	}
}

func TestEventFrameUsesEpoch(t *testing.T) {
	h := New(Config{})
	h.Begin("k3x9", 41)
	sub, _ := mustSubscribe(t, h, 0, "a.*")
	h.Publish(42, "a.b", "upd", []byte("x\ny"))
	events := sub.Drain(nil)
	want := "id: k3x9-42\nevent: upd\ndata: x\ndata: y\n\n"
	if len(events) != 1 || string(events[0].Frame) != want || events[0].Subject != "a.b" {
		t.Fatalf("got %+v, want one frame %q", events, want)
	}
	if sub.Epoch() != "k3x9" {
		t.Fatalf("Epoch = %q", sub.Epoch())
	}
}

func TestMultiPatternDedupe(t *testing.T) {
	for _, tc := range []struct {
		patterns []string
		subjects []string // published in order, seq 1..
		want     []uint64
	}{
		{[]string{"a.*", "*.b"}, []string{"a.b", "a.c", "c.b", "c.c"}, []uint64{1, 2, 3}},
		{[]string{"a.*.c", "a.b.*", "*.b.c"}, []string{"a.b.c", "a.x.c", "x.x.x"}, []uint64{1, 2}},
		{[]string{"x.>", "*.y", "x.y"}, []string{"x.y", "x.y.z", "q.y"}, []uint64{1, 2, 3}},
		{[]string{"a", "a", "a"}, []string{"a", "b", "a"}, []uint64{1, 3}},
		{[]string{">", "a.*", "a.b"}, []string{"a.b", "z"}, []uint64{1, 2}},
	} {
		t.Run(fmt.Sprint(tc.patterns), func(t *testing.T) {
			h := newTestHub(t, Config{})
			sub, _ := mustSubscribe(t, h, 0, tc.patterns...)
			for i, s := range tc.subjects {
				h.Publish(uint64(i+1), s, "", nil)
			}
			if got := seqsOf(sub.Drain(nil)); !slices.Equal(got, tc.want) {
				t.Fatalf("delivered %v, want %v", got, tc.want)
			}
			if st := h.Stats(); st.Delivered != uint64(len(tc.want)) {
				t.Fatalf("Stats.Delivered = %d, want %d", st.Delivered, len(tc.want))
			}
		})
	}
}

func TestMinimalPatterns(t *testing.T) {
	for _, tc := range []struct {
		in, want []string
	}{
		{[]string{"a"}, []string{"a"}},
		{[]string{"a", "a"}, []string{"a"}},
		{[]string{"a.b", "a.*"}, []string{"a.*"}},
		{[]string{"a.*", "*.b"}, []string{"a.*", "*.b"}},
		{[]string{"a.b", "a.>", ">", "x"}, []string{">"}},
		{[]string{"a.*", "a.*", "a.b"}, []string{"a.*"}},
	} {
		got, err := minimalPatterns(tc.in)
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("minimalPatterns(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestSubscribeBadPattern(t *testing.T) {
	h := newTestHub(t, Config{})
	for _, patterns := range [][]string{nil, {}, {""}, {"a", "a..b"}, {"a.>.b"}, {"a b"}} {
		sub, _, err := h.Subscribe(patterns, 0)
		if !errors.Is(err, ErrBadPattern) || sub != nil {
			t.Errorf("Subscribe(%q) = %v, %v; want ErrBadPattern", patterns, sub, err)
		}
	}
	if n := h.Stats().Subscriptions; n != 0 {
		t.Fatalf("%d subscriptions registered by failed calls", n)
	}
}

func TestOverflow(t *testing.T) {
	h := newTestHub(t, Config{})
	slow, _ := mustSubscribe(t, h, 3, "a")
	fast, _ := mustSubscribe(t, h, 3, "a")
	publishRange(h, 1, 3, "a")
	if got := seqsOf(fast.Drain(nil)); !slices.Equal(got, []uint64{1, 2, 3}) {
		t.Fatalf("fast got %v", got)
	}
	if isDone(slow) {
		t.Fatal("a full queue already ended the subscription")
	}
	publishRange(h, 4, 5, "a")
	if !isDone(slow) || !errors.Is(slow.Err(), ErrOverflow) {
		t.Fatalf("slow subscription: done=%v err=%v, want ErrOverflow", isDone(slow), slow.Err())
	}
	if got := slow.Drain(nil); len(got) != 0 {
		t.Fatalf("ended subscription still drains %v", seqsOf(got))
	}
	if got := seqsOf(fast.Drain(nil)); !slices.Equal(got, []uint64{4, 5}) || fast.Err() != nil {
		t.Fatalf("fast got %v, err %v: one slow client must not affect another", got, fast.Err())
	}
	st := h.Stats()
	if st.Overflows != 1 || st.Subscriptions != 1 || st.Delivered != 3+3+2 {
		t.Fatalf("Stats = %+v", st)
	}
	slow.Close() // already unregistered: harmless
	if !errors.Is(slow.Err(), ErrOverflow) {
		t.Fatalf("Close replaced the reason: %v", slow.Err())
	}
}

func TestNotify(t *testing.T) {
	h := newTestHub(t, Config{})
	sub, _ := mustSubscribe(t, h, 0, "a")
	select {
	case <-sub.Notify():
		t.Fatal("signalled before any event")
	default:
	}
	publishRange(h, 1, 3, "a") // three events, one pending signal
	h.Publish(4, "b", "", nil)
	<-sub.Notify()
	select {
	case <-sub.Notify():
		t.Fatal("more than one signal pending")
	default:
	}
	if got := seqsOf(sub.Drain(nil)); !slices.Equal(got, []uint64{1, 2, 3}) {
		t.Fatalf("drained %v", got)
	}
}

func TestSkipThrough(t *testing.T) {
	h := newTestHub(t, Config{})
	sub, _ := mustSubscribe(t, h, 0, "a")
	publishRange(h, 1, 5, "a")
	sub.SkipThrough(3)
	if got := seqsOf(sub.Drain(nil)); !slices.Equal(got, []uint64{4, 5}) {
		t.Fatalf("after SkipThrough(3) drained %v", got)
	}
	sub.SkipThrough(10)
	publishRange(h, 6, 12, "a")
	sub.SkipThrough(2) // going back changes nothing
	if got := seqsOf(sub.Drain(nil)); !slices.Equal(got, []uint64{11, 12}) {
		t.Fatalf("after SkipThrough(10) drained %v", got)
	}
}

func TestBegin(t *testing.T) {
	for _, tc := range []struct {
		name      string
		epoch     string
		last      uint64
		restarted bool
	}{
		{"resume", "ep", 5, false},
		{"new epoch", "ep2", 5, true},
		{"gap forward", "ep", 9, true},
		{"went back", "ep", 3, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := New(Config{})
			select {
			case <-h.Ready():
				t.Fatal("ready before Begin")
			default:
			}
			h.Begin("ep", 0)
			<-h.Ready()
			publishRange(h, 1, 5, "a")
			sub, _ := mustSubscribe(t, h, 0, "a")

			h.Begin(tc.epoch, tc.last)

			epoch, last := h.Position()
			if epoch != tc.epoch || last != tc.last {
				t.Fatalf("Position = %q, %d", epoch, last)
			}
			if isDone(sub) != tc.restarted || (tc.restarted && !errors.Is(sub.Err(), ErrRestarted)) {
				t.Fatalf("subscription done=%v err=%v, want restarted=%v", isDone(sub), sub.Err(), tc.restarted)
			}
			st := h.Stats()
			if tc.restarted && (st.RingLen != 0 || st.RingBytes != 0 || st.Subscriptions != 0) {
				t.Fatalf("restart kept state: %+v", st)
			}
			if !tc.restarted && (st.RingLen != 5 || st.Subscriptions != 1) {
				t.Fatalf("resume lost state: %+v", st)
			}
			// The history must not answer for what happened before the restart.
			_, covered, _ := h.Since(nil, []string{"a"}, 0, tc.last, 0)
			if covered != (!tc.restarted || tc.last == 0) {
				t.Fatalf("Since(0, %d) covered = %v", tc.last, covered)
			}
			// Live events continue after the new position.
			sub2, l2 := mustSubscribe(t, h, 0, "a")
			h.Publish(tc.last+1, "a", "", nil)
			if got := seqsOf(sub2.Drain(nil)); l2 != tc.last || !slices.Equal(got, []uint64{tc.last + 1}) {
				t.Fatalf("after Begin: last %d, drained %v", l2, got)
			}
		})
	}
}

func TestSubscriptionClose(t *testing.T) {
	h := newTestHub(t, Config{})
	keep, _ := mustSubscribe(t, h, 0, "a.*")
	subs := make([]*Subscription, 5)
	for i := range subs {
		subs[i], _ = mustSubscribe(t, h, 0, "a.*", fmt.Sprintf("user.%d.>", i))
	}
	for _, s := range subs {
		s.Close()
		s.Close() // idempotent
		if !isDone(s) || !errors.Is(s.Err(), ErrClosed) {
			t.Fatalf("closed subscription: done=%v err=%v", isDone(s), s.Err())
		}
	}
	publishRange(h, 1, 2, "a.b")
	if got := seqsOf(keep.Drain(nil)); !slices.Equal(got, []uint64{1, 2}) {
		t.Fatalf("remaining subscription got %v", got)
	}
	if st := h.Stats(); st.Subscriptions != 1 || st.Delivered != 2 {
		t.Fatalf("Stats = %+v", st)
	}
	keep.Close()
	if r := h.index.root; len(r.literal) != 0 || r.starChild != nil {
		t.Fatal("index not pruned after every subscription closed")
	}
}

func TestHubClose(t *testing.T) {
	h := newTestHub(t, Config{})
	sub, _ := mustSubscribe(t, h, 0, ">")
	publishRange(h, 1, 2, "a")
	h.Close()
	h.Close()
	if !isDone(sub) || !errors.Is(sub.Err(), ErrClosed) {
		t.Fatalf("subscription: done=%v err=%v", isDone(sub), sub.Err())
	}
	if s, _, err := h.Subscribe([]string{">"}, 0); !errors.Is(err, ErrClosed) || s != nil {
		t.Fatalf("Subscribe after Close: %v, %v", s, err)
	}
	h.Publish(3, "a", "", nil)
	if _, last := h.Position(); last != 2 {
		t.Fatalf("Publish after Close moved the position to %d", last)
	}
	if events, covered, _ := h.Since(nil, []string{">"}, 0, 2, 0); !covered || len(events) != 2 {
		t.Fatalf("history after Close: %v, %v", seqsOf(events), covered)
	}
}

func TestRingCaps(t *testing.T) {
	// Seqs 11.. all have two digits, so every frame has the same size.
	frame := len(newEvent("ep", 11, "", "", []byte("0123456789")).Frame)
	for _, tc := range []struct {
		name      string
		cfg       Config
		published uint64
		wantLen   int
		wantFirst uint64
		wantFloor uint64
	}{
		{"count cap", Config{RingSize: 4}, 10, 4, 17, 16},
		{"byte cap", Config{RingBytes: 3 * frame}, 10, 3, 18, 17},
		{"both, bytes first", Config{RingSize: 5, RingBytes: 2 * frame}, 10, 2, 19, 18},
		{"under caps", Config{RingSize: 20}, 10, 10, 11, 10},
		{"huge event kept alone", Config{RingBytes: 10}, 3, 1, 13, 12},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := New(tc.cfg)
			h.Begin("ep", 10)
			for seq := uint64(11); seq < 11+tc.published; seq++ {
				h.Publish(seq, "a", "", []byte("0123456789"))
			}
			st := h.Stats()
			if st.RingLen != tc.wantLen || st.RingBytes != tc.wantLen*frame {
				t.Fatalf("Stats = %+v, want %d events of %d bytes", st, tc.wantLen, frame)
			}
			if first := h.history.events.at(0).Seq; first != tc.wantFirst || h.history.floor != tc.wantFloor {
				t.Fatalf("history starts at %d with floor %d, want %d and %d", first, h.history.floor, tc.wantFirst, tc.wantFloor)
			}
		})
	}
}

func TestStats(t *testing.T) {
	h := newTestHub(t, Config{})
	mustSubscribe(t, h, 0, "a")
	mustSubscribe(t, h, 0, "a", "b")
	mustSubscribe(t, h, 0, "c")
	h.Publish(1, "a", "", []byte("x"))
	h.Publish(2, "b", "", []byte("y"))
	want := Stats{Subscriptions: 3, Published: 2, Delivered: 3, RingLen: 2, RingBytes: 2 * len("id: ep-1\ndata: x\n\n")}
	if got := h.Stats(); got != want {
		t.Fatalf("Stats = %+v, want %+v", got, want)
	}
}

func TestPublishDoesNotAllocatePerDelivery(t *testing.T) {
	for _, subs := range []int{1, 100} {
		h := newTestHub(t, Config{RingSize: 16})
		all := make([]*Subscription, subs)
		for i := range all {
			all[i], _ = mustSubscribe(t, h, 1<<12, "room.*", "room.1", ">")
		}
		data := []byte(`{"n":1}`)
		seq := uint64(0)
		// Queues start small and grow to their working size once; after that a delivery allocates nothing.
		for range 256 {
			seq++
			h.Publish(seq, "room.1", "", data)
		}
		for _, s := range all {
			s.Drain(nil)
		}
		allocs := testing.AllocsPerRun(200, func() {
			seq++
			h.Publish(seq, "room.1", "", data)
		})
		if allocs > 2 { // the Event and its frame; nothing per subscriber
			t.Errorf("%d subscribers: %v allocations per Publish", subs, allocs)
		}
		for _, s := range all {
			if s.Err() != nil || len(s.Drain(nil)) != 201 {
				t.Fatalf("subscriber missed events: %v", s.Err())
			}
		}
	}
}
