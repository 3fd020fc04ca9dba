package jetstream

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	natsjs "github.com/nats-io/nats.go/jetstream"
)

// published remembers what a test stored, as the reference for replays.
type published struct {
	Seq       uint64
	Subject   string
	EventType string
	Data      string
}

// fillStream stores n events on subjects cycling through subjects; every
// third one has an event type.
func fillStream(t *testing.T, c *Conn, n int, subjects ...string) []published {
	t.Helper()
	var out []published
	for i := 1; i <= n; i++ {
		p := published{Subject: subjects[i%len(subjects)], Data: fmt.Sprint("event ", i)}
		if i%3 == 0 {
			p.EventType = "third"
		}
		p.Seq = publish(t, c, p.Subject, p.EventType, p.Data)
		out = append(out, p)
	}
	return out
}

// expect picks the reference events for filters in (after, upto].
func expect(all []published, filters []string, after, upto uint64) []published {
	var out []published
	for _, p := range all {
		if p.Seq <= after || p.Seq > upto {
			continue
		}
		for _, f := range append(filters[:len(filters):len(filters)], fallbackAll(filters)...) {
			if matches(f, p.Subject) {
				out = append(out, p)
				break
			}
		}
	}
	return out
}

func fallbackAll(filters []string) []string {
	if len(filters) == 0 {
		return []string{">"}
	}
	return nil
}

func collect(t *testing.T, run func(fn func([]Message) error) error) ([]published, error) {
	t.Helper()
	var got []published
	err := run(func(batch []Message) error {
		if len(batch) == 0 {
			t.Error("callback called with an empty batch")
		}
		for _, m := range batch {
			got = append(got, published{m.Seq, m.Subject, m.EventType, string(m.Data)})
		}
		return nil
	})
	return got, err
}

func sameEvents(a, b []published) bool { return fmt.Sprint(a) == fmt.Sprint(b) }

var replaySubjects = []string{"ev.a.x", "ev.b.y", "ev.a.y", "ev.c.x.z", "ev.b.x"}

func TestReplayRanges(t *testing.T) {
	_, c := inProcess(t)
	ensure(t, c, testStream("RP", "ev.>"))
	all := fillStream(t, c, 40, replaySubjects...)

	tests := []struct {
		name        string
		filters     []string
		after, upto uint64
	}{
		{"everything", nil, 0, 40},
		{"one literal subject", []string{"ev.a.x"}, 5, 25},
		{"single-token wildcard", []string{"ev.a.*"}, 0, 40},
		{"several filters with wildcards", []string{"ev.a.*", "ev.c.>"}, 3, 20},
		{"filter covered by another", []string{"ev.>", "ev.a.x"}, 10, 30},
		{"duplicate filters", []string{"ev.b.y", "ev.b.y"}, 0, 40},
		{"partially overlapping filters", []string{"ev.*.x", "ev.a.*"}, 0, 40},
		{"range ends at one event", []string{"ev.>"}, 17, 18},
		{"empty range", nil, 12, 12},
		{"upto past the end", []string{"ev.b.*"}, 25, 99},
		{"filter matching nothing", []string{"other.>"}, 0, 40},
		{"cursor at the end", nil, 40, 40},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := collect(t, func(fn func([]Message) error) error {
				return c.Replay(ctxFor(t), ReplayRequest{Stream: "RP", Filters: tt.filters, After: tt.after, Upto: tt.upto, EventHeader: "Sse-Event"}, fn)
			})
			if err != nil {
				t.Fatalf("Replay: %v", err)
			}
			if want := expect(all, tt.filters, tt.after, tt.upto); !sameEvents(got, want) {
				t.Fatalf("got  %v\nwant %v", got, want)
			}
			if n := consumerCount(t, c, "RP"); n != 0 {
				t.Fatalf("%d consumers left behind", n)
			}
		})
	}
}

func TestReplayErrors(t *testing.T) {
	_, c := inProcess(t)
	ensure(t, c, testStream("RE", "re.>"))
	fillStream(t, c, 30, "re.a", "re.b")
	// A stream that evicts by count: only the last 5 of 12 are kept.
	ensure(t, c, StreamConfig{Name: "RE5", Subjects: []string{"re5.>"}, MaxBytes: 1 << 20, MaxMsgs: 5})
	fillStream(t, c, 12, "re5.x")
	// A purged stream: all but the last 10 of 30 removed.
	ensure(t, c, testStream("REP", "rep.>"))
	fillStream(t, c, 30, "rep.x")
	if err := jsStream(t, c, "REP").Purge(ctxFor(t), natsjs.WithPurgeKeep(10)); err != nil {
		t.Fatal(err)
	}
	errFn := errors.New("client went away")

	tests := []struct {
		name string
		req  ReplayRequest
		fn   func([]Message) error
		want error
	}{
		{"beyond the end", ReplayRequest{Stream: "RE", After: 31, Upto: 40}, nil, ErrBeyondEnd},
		{"beyond the end with an empty range", ReplayRequest{Stream: "RE", After: 35, Upto: 35}, nil, ErrBeyondEnd},
		{"too many", ReplayRequest{Stream: "RE", After: 0, Upto: 30, Limit: 29}, nil, ErrTooMany},
		{"too many counts to the stream's end", ReplayRequest{Stream: "RE", After: 0, Upto: 5, Limit: 29}, nil, ErrTooMany},
		{"too many with a filter", ReplayRequest{Stream: "RE", Filters: []string{"re.a"}, After: 0, Upto: 30, Limit: 14}, nil, ErrTooMany},
		{"exactly the limit", ReplayRequest{Stream: "RE", Filters: []string{"re.a"}, After: 0, Upto: 30, Limit: 15}, nil, nil},
		{"evicted by MaxMsgs", ReplayRequest{Stream: "RE5", After: 3, Upto: 12}, nil, ErrHistoryGone},
		{"first kept message is next", ReplayRequest{Stream: "RE5", After: 7, Upto: 12}, nil, nil},
		{"purged", ReplayRequest{Stream: "REP", After: 5, Upto: 30}, nil, ErrHistoryGone},
		{"purged but nothing to replay", ReplayRequest{Stream: "REP", After: 5, Upto: 5}, nil, nil},
		{"right after the purge point", ReplayRequest{Stream: "REP", After: 20, Upto: 30}, nil, nil},
		{"fn error is returned as is", ReplayRequest{Stream: "RE", After: 0, Upto: 30}, func([]Message) error { return errFn }, errFn},
		{"missing stream", ReplayRequest{Stream: "NOPE", After: 0, Upto: 3}, nil, ErrNoStream},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			called := 0
			fn := tt.fn
			if fn == nil {
				fn = func([]Message) error { called++; return nil }
			}
			err := c.Replay(ctxFor(t), tt.req, fn)
			if !errors.Is(err, tt.want) || (tt.want == nil && err != nil) {
				t.Fatalf("Replay = %v, want %v", err, tt.want)
			}
			if tt.want != nil && tt.fn == nil && called != 0 {
				t.Fatalf("fn called %d times before %v", called, err)
			}
			if tt.req.Stream != "NOPE" {
				// A read that a client left stops at its next batch and deletes its consumer.
				waitFor(t, "no consumer left behind", func() bool { return consumerCount(t, c, tt.req.Stream) == 0 })
			}
		})
	}
}

// The server moves a consumer asked to start before the first stored
// message up to it; the reader relies on that to notice history that
// expired after its own check.
func TestConsumerStartsAtTheFirstStoredMessage(t *testing.T) {
	_, c := inProcess(t)
	ensure(t, c, StreamConfig{Name: "RS", Subjects: []string{"rs.>"}, MaxBytes: 1 << 20, MaxMsgs: 4})
	fillStream(t, c, 10, "rs.x", "rs.y")
	cons, err := c.createReader(ctxFor(t), "RS", []string{"rs.x"}, 2)
	if err != nil {
		t.Fatal(err)
	}
	info := cons.CachedInfo()
	defer c.dropConsumer("RS", info.Name)
	if start := info.Delivered.Stream + 1; start != 7 || info.NumPending != 2 {
		t.Fatalf("consumer starts at %d with %d pending, want 7 and 2", start, info.NumPending)
	}
}

func TestReplayCancelledContext(t *testing.T) {
	_, c := inProcess(t)
	ensure(t, c, testStream("RX", "rx.>"))
	fillStream(t, c, 300, "rx.a")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	calls := 0
	err := c.Replay(ctx, ReplayRequest{Stream: "RX", After: 0, Upto: 300}, func([]Message) error {
		if calls++; calls == 1 {
			cancel()
		}
		return nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Replay = %v after cancel, want context.Canceled", err)
	}
	// The read stops, and deletes its consumer, once nobody follows it.
	waitFor(t, "the replay consumer to be deleted", func() bool { return consumerCount(t, c, "RX") == 0 })
}

// Replay slots bound concurrent reads from JetStream, not clients: a replay
// whose client is slow to take its events holds no slot, and a caller
// waiting for one gives up with its context.
func TestReplaySlotsAreNotHeldByCallbacks(t *testing.T) {
	e := startServer(t, EmbeddedConfig{})
	c := connect(t, ConnConfig{Embedded: e, MaxConcurrentReplays: 1})
	ensure(t, c, testStream("RB", "rb.>"))
	fillStream(t, c, 300, "rb.x")

	slow := make(chan struct{})
	entered := make(chan struct{})
	slowDone := make(chan error, 1)
	go func() {
		first := true
		slowDone <- c.Replay(ctxFor(t), ReplayRequest{Stream: "RB", Upto: 300}, func([]Message) error {
			if first {
				first = false
				close(entered)
				<-slow // a client that takes its time
			}
			return nil
		})
	}()
	<-entered
	// With the only slot free while the slow client writes, another replay
	// runs to its end.
	got, err := collect(t, func(fn func([]Message) error) error {
		return c.Replay(ctxFor(t), ReplayRequest{Stream: "RB", After: 100, Upto: 300}, fn)
	})
	if err != nil || len(got) != 200 {
		t.Fatalf("replay beside a slow one: %d events, %v; want 200", len(got), err)
	}
	close(slow)
	if err := <-slowDone; err != nil {
		t.Fatalf("slow replay: %v", err)
	}

	// A caller that gives up while every slot is taken gets its context error.
	release, err := c.acquireReplay(ctxFor(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	// (After 1: a range no read in memory covers.)
	if err := c.Replay(ctx, ReplayRequest{Stream: "RB", After: 1, Upto: 5}, func([]Message) error { return nil }); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("waiting Replay = %v, want context.DeadlineExceeded", err)
	}
	release()
	waitFor(t, "replay consumers to be deleted", func() bool { return consumerCount(t, c, "RB") == 0 })
}

// publishSparse publishes n events numbered from 1 to common, every every-th of them to rare instead.
func publishSparse(t *testing.T, c *Conn, n, every int, common, rare string) []published {
	t.Helper()
	var all []published
	for i := 1; i <= n; i++ {
		subject := common
		if i%every == 0 {
			subject = rare
		}
		all = append(all, published{Seq: publish(t, c, subject, "", fmt.Sprint(i)), Subject: subject, Data: fmt.Sprint(i)})
	}
	return all
}

func TestLastN(t *testing.T) {
	_, c := inProcess(t)
	ensure(t, c, testStream("LN", "ln.>"))
	// ln.rare is every 37th event of 400: sparse enough to make the probe
	// windows grow several times.
	all := publishSparse(t, c, 400, 37, "ln.common", "ln.rare")
	last := func(filters []string, upto uint64, n int) []published {
		m := expect(all, filters, 0, upto)
		return m[max(len(m)-n, 0):]
	}

	tests := []struct {
		name    string
		filters []string
		upto    uint64
		n       int
	}{
		{"last one", nil, 400, 1},
		{"last few of a dense subject", []string{"ln.common"}, 400, 5},
		{"sparse subject", []string{"ln.rare"}, 400, 3},
		{"more than exist", []string{"ln.rare"}, 400, 50},
		{"upto in the middle", []string{"ln.rare"}, 200, 2},
		{"upto in the middle, everything", nil, 150, 10},
		{"upto past the end", []string{"ln.>"}, 1000, 4},
		{"several filters", []string{"ln.rare", "ln.common"}, 380, 7},
		{"nothing matches", []string{"ln.none"}, 400, 3},
		{"n is zero", nil, 400, 0},
		{"upto before anything matches", []string{"ln.rare"}, 30, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := collect(t, func(fn func([]Message) error) error {
				return c.LastN(ctxFor(t), ReplayRequest{Stream: "LN", Filters: tt.filters, Upto: tt.upto}, tt.n, fn)
			})
			if err != nil {
				t.Fatalf("LastN: %v", err)
			}
			if want := last(tt.filters, tt.upto, tt.n); !sameEvents(got, want) {
				t.Fatalf("got  %v\nwant %v", got, want)
			}
			if n := consumerCount(t, c, "LN"); n != 0 {
				t.Fatalf("%d consumers left behind", n)
			}
		})
	}
}

func TestLastNAfterEviction(t *testing.T) {
	_, c := inProcess(t)
	ensure(t, c, StreamConfig{Name: "LE", Subjects: []string{"le.>"}, MaxBytes: 1 << 20, MaxMsgs: 10})
	all := fillStream(t, c, 25, "le.a", "le.b")
	got, err := collect(t, func(fn func([]Message) error) error {
		return c.LastN(ctxFor(t), ReplayRequest{Stream: "LE", Filters: []string{"le.a"}, Upto: 25, EventHeader: "Sse-Event"}, 100, fn)
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := expect(all, []string{"le.a"}, 15, 25); !sameEvents(got, want) {
		t.Fatalf("got  %v\nwant %v", got, want)
	}
}

// Events published while LastN probes inflate its counts; the result must
// still be exact.
func TestLastNWhilePublishing(t *testing.T) {
	_, c := inProcess(t)
	ensure(t, c, testStream("LP", "lp.>"))
	all := publishSparse(t, c, 200, 23, "lp.common", "lp.rare")
	want := expect(all, []string{"lp.rare"}, 0, 200)[3:] // the last 5 of 8

	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, _, err := c.Publish(ctxFor(t), "lp.rare", "", "", []byte("late")); err != nil {
				t.Error(err)
				return
			}
		}
	})
	for range 20 {
		got, err := collect(t, func(fn func([]Message) error) error {
			return c.LastN(ctxFor(t), ReplayRequest{Stream: "LP", Filters: []string{"lp.rare"}, Upto: 200}, 5, fn)
		})
		if err != nil {
			t.Fatal(err)
		}
		if !sameEvents(got, want) {
			t.Fatalf("got  %v\nwant %v", got, want)
		}
	}
	close(stop)
	wg.Wait()
}

func TestLastNRing(t *testing.T) {
	for _, tt := range []struct{ n, add int }{{1, 0}, {1, 5}, {3, 2}, {3, 3}, {3, 10}, {5, 7}} {
		l := newLastN(tt.n)
		for i := 1; i <= tt.add; i++ {
			l.add(Message{Seq: uint64(i)})
		}
		var got []uint64
		for _, m := range l.ordered() {
			got = append(got, m.Seq)
		}
		var want []uint64
		if tt.add > 0 {
			want = seqRange(uint64(max(tt.add-tt.n+1, 1)), uint64(tt.add))
		}
		if !equalSeqs(got, want) {
			t.Errorf("last %d of %d: %v, want %v", tt.n, tt.add, got, want)
		}
	}
}
