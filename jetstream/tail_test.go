package jetstream

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/caddy-sse/caddy-sse/hub"
	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"
)

// The sink's position decides where the tail starts: a resume right after
// it, or a reset (Begin with the stream's end) when it cannot be honoured.
func TestTailStartsFromTheRightPlace(t *testing.T) {
	tests := []struct {
		name string
		// position returns the sink's position before the tail starts, given
		// the stream after 10 publishes (and the purge, if any).
		position  func(st StreamState) (string, uint64)
		purgeKeep uint64 // purge all but this many messages first; 0 = no purge
		wantReset bool   // Begin(epoch, LastSeq) instead of a resume
		wantFirst uint64 // first sequence given to Publish
	}{
		{"fresh sink", func(StreamState) (string, uint64) { return "", 0 }, 0, true, 11},
		{"resume in the middle", func(st StreamState) (string, uint64) { return st.Epoch, 3 }, 0, false, 4},
		{"resume at the end", func(st StreamState) (string, uint64) { return st.Epoch, 10 }, 0, false, 11},
		{"resume at the first kept message", func(st StreamState) (string, uint64) { return st.Epoch, 6 }, 4, false, 7},
		{"events after the position expired", func(st StreamState) (string, uint64) { return st.Epoch, 2 }, 4, true, 11},
		{"other incarnation", func(StreamState) (string, uint64) { return "oldepoch", 5 }, 0, true, 11},
		{"position beyond the stream", func(st StreamState) (string, uint64) { return st.Epoch, 99 }, 0, true, 11},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, c := inProcess(t)
			subject := fmt.Sprintf("start%d.ev", i)
			cfg := testStream(fmt.Sprintf("START%d", i), fmt.Sprintf("start%d.>", i))
			ensure(t, c, cfg)
			for n := 1; n <= 10; n++ {
				publish(t, c, subject, "", fmt.Sprint(n))
			}
			if tt.purgeKeep > 0 {
				if err := jsStream(t, c, cfg.Name).Purge(ctxFor(t), natsjs.WithPurgeKeep(tt.purgeKeep)); err != nil {
					t.Fatal(err)
				}
			}
			st, err := c.StreamState(ctxFor(t), cfg.Name)
			if err != nil {
				t.Fatal(err)
			}
			sink := &recSink{}
			sink.epoch, sink.last = tt.position(st)

			runTail(t, c, TailConfig{Stream: cfg}, sink)
			waitFor(t, "Begin", func() bool { b, _ := sink.snapshot(); return len(b) > 0 })
			publish(t, c, subject, "", "11")
			waitFor(t, "event 11", func() bool { return sink.hasEvent(st.Epoch, 11) })

			begins, events := sink.snapshot()
			wantBegin := beginCall{st.Epoch, st.LastSeq, false}
			if !tt.wantReset {
				_, last := tt.position(st)
				wantBegin = beginCall{st.Epoch, last, true}
			}
			if len(begins) != 1 || begins[0] != wantBegin {
				t.Fatalf("Begin calls %+v, want [%+v]", begins, wantBegin)
			}
			if got, want := seqs(events), seqRange(tt.wantFirst, 11); !equalSeqs(got, want) {
				t.Fatalf("published %v, want %v", got, want)
			}
		})
	}
}

func TestTailDeliversEventsInOrder(t *testing.T) {
	_, c := inProcess(t)
	cfg := TailConfig{Stream: testStream("ORD", "ord.>"), EventHeader: "Sse-Event"}
	sink := &recSink{}
	runTail(t, c, cfg, sink)
	waitFor(t, "Begin", func() bool { return len(sink.resets()) == 1 })

	const n = 500
	for i := 1; i <= n; i++ {
		eventType := ""
		if i%2 == 0 {
			eventType = "even"
		}
		publish(t, c, fmt.Sprintf("ord.%d", i%7), eventType, fmt.Sprint(i))
	}
	st, _ := c.StreamState(ctxFor(t), "ORD")
	waitFor(t, "all events", func() bool { return sink.hasEvent(st.Epoch, n) })
	_, events := sink.snapshot()
	if got := seqs(events); !equalSeqs(got, seqRange(1, n)) {
		t.Fatalf("sequences out of order or duplicated: %v", got)
	}
	for _, e := range events {
		wantType := ""
		if e.Seq%2 == 0 {
			wantType = "even"
		}
		if e.Data != fmt.Sprint(e.Seq) || e.Subject != fmt.Sprintf("ord.%d", e.Seq%7) || e.EventType != wantType {
			t.Fatalf("event %+v does not match what was published", e)
		}
	}
}

// A NATS server restart (file storage, same store, same port) must neither
// lose nor duplicate an event.
func TestTailSurvivesServerRestart(t *testing.T) {
	dir := t.TempDir()
	e := startServer(t, EmbeddedConfig{Listen: "127.0.0.1:0", StoreDir: dir})
	url := e.ClientURL()
	c := connect(t, ConnConfig{URLs: []string{url}})
	waitConnected(t, c)
	cfg := TailConfig{Stream: testStream("RESTART", "rs.>")}
	sink := &recSink{}
	runTail(t, c, cfg, sink)
	waitFor(t, "Begin", func() bool { return len(sink.resets()) == 1 })
	epoch, _ := sink.Position()

	next := 1
	publishSome := func(k int) {
		for range k {
			if seq := publish(t, c, "rs.x", "", fmt.Sprint(next)); seq != uint64(next) {
				t.Fatalf("publish %d landed at seq %d", next, seq)
			}
			next++
		}
	}
	for round := range 2 {
		publishSome(20)
		waitFor(t, "events before the restart", func() bool { return sink.hasEvent(epoch, uint64(next-1)) })
		e.Shutdown()
		// Until the client has seen the connection drop it still reports
		// connected, and a publish written to the dead socket is lost.
		waitFor(t, "the client to notice the shutdown", func() bool { return !c.nc.IsConnected() })
		e = startServer(t, EmbeddedConfig{Listen: url[len("nats://"):], StoreDir: dir})
		if e.ClientURL() != url {
			t.Fatalf("round %d: restarted server at %s, want %s", round, e.ClientURL(), url)
		}
		waitConnected(t, c)
	}
	publishSome(20)
	waitFor(t, "events after the restarts", func() bool { return sink.hasEvent(epoch, uint64(next-1)) })

	begins, events := sink.snapshot()
	if got := seqs(events); !equalSeqs(got, seqRange(1, uint64(next-1))) {
		t.Fatalf("events lost, duplicated or reordered across restarts: %v", got)
	}
	for _, b := range begins[1:] {
		if !b.Resume {
			t.Fatalf("restart reset the sink: Begin calls %+v", begins)
		}
	}
	for _, ev := range events {
		if ev.Epoch != epoch {
			t.Fatalf("event %+v under another epoch than %s (stream creation time not kept?)", ev, epoch)
		}
	}
}

// The tail begins once the server comes up, without anyone restarting it.
func TestTailWaitsForServer(t *testing.T) {
	probe := startServer(t, EmbeddedConfig{Listen: "127.0.0.1:0"})
	url := probe.ClientURL()
	probe.Shutdown()

	c := connect(t, ConnConfig{URLs: []string{url}})
	sink := &recSink{}
	runTail(t, c, TailConfig{Stream: testStream("LATE", "late.>")}, sink)

	startServer(t, EmbeddedConfig{Listen: url[len("nats://"):]})
	waitFor(t, "Begin after the server came up", func() bool { return len(sink.resets()) == 1 })
	publish(t, c, "late.x", "", "1")
	epoch, _ := sink.Position()
	waitFor(t, "event 1", func() bool { return sink.hasEvent(epoch, 1) })
}

// A deleted and recreated stream restarts its sequences; the tail must say
// so with Begin and a new epoch, and never pass the new stream's events off
// under the old epoch.
func TestTailDetectsRecreatedStream(t *testing.T) {
	tests := []struct {
		name string
		// recreate deletes the stream and maybe creates it again with some
		// messages; returns how many messages the new stream has.
		recreate func(t *testing.T, c *Conn, cfg StreamConfig) uint64
	}{
		{"deleted; the tail recreates it", func(t *testing.T, c *Conn, cfg StreamConfig) uint64 {
			if err := c.js.DeleteStream(ctxFor(t), cfg.Name); err != nil {
				t.Fatal(err)
			}
			return 0
		}},
		{"deleted and recreated with new messages at once", func(t *testing.T, c *Conn, cfg StreamConfig) uint64 {
			if err := c.js.DeleteStream(ctxFor(t), cfg.Name); err != nil {
				t.Fatal(err)
			}
			// The running tail recreates the stream too: when both create it at the same moment, the server
			// can refuse one ("error creating store for stream"). The stream exists either way after a retry.
			waitFor(t, "the stream recreated", func() bool {
				_, err := c.EnsureStream(ctxFor(t), cfg)
				return err == nil
			})
			for i := range 8 {
				publish(t, c, "rc.x", "", fmt.Sprint("new", i))
			}
			return 8
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, c := inProcess(t)
			cfg := testStream("RC", "rc.>")
			sink := &recSink{}
			runTail(t, c, TailConfig{Stream: cfg}, sink)
			waitFor(t, "Begin", func() bool { return len(sink.resets()) == 1 })
			oldEpoch, _ := sink.Position()
			for i := range 3 {
				publish(t, c, "rc.x", "", fmt.Sprint("old", i))
			}
			waitFor(t, "old events", func() bool { return sink.hasEvent(oldEpoch, 3) })

			// Stream creation times are in microseconds: make sure the new
			// one differs even on a coarse clock.
			time.Sleep(2 * time.Millisecond)
			newCount := tt.recreate(t, c, cfg)
			waitFor(t, "Begin with a new epoch", func() bool { return len(sink.resets()) == 2 })
			reset := sink.resets()[1]
			if reset.Epoch == oldEpoch {
				t.Fatalf("second Begin kept the old epoch: %+v", reset)
			}
			seq := publish(t, c, "rc.x", "", "after")
			if seq != newCount+1 {
				t.Fatalf("new stream published at %d, want %d", seq, newCount+1)
			}
			waitFor(t, "event after recreation", func() bool { return sink.hasEvent(reset.Epoch, seq) })

			_, events := sink.snapshot()
			for _, e := range events {
				if e.Epoch == oldEpoch && e.Data[:3] != "old" {
					t.Fatalf("event of the new stream published under the old epoch: %+v", e)
				}
			}
		})
	}
}

// Tail leaves nothing running behind it: no goroutine, no consumer, no
// sink call after it returned.
func TestTailStopsCleanly(t *testing.T) {
	_, c := inProcess(t)
	cfg := testStream("STOP", "stop.>")
	ensure(t, c, cfg)
	time.Sleep(100 * time.Millisecond) // let connection goroutines settle
	before := runtime.NumGoroutine()

	for round := range 3 {
		sink := &recSink{}
		stop := runTail(t, c, TailConfig{Stream: cfg}, sink)
		waitFor(t, "Begin", func() bool { return len(sink.resets()) == 1 })
		seq := publish(t, c, "stop.x", "", fmt.Sprint(round))
		epoch, _ := sink.Position()
		waitFor(t, "the event", func() bool { return sink.hasEvent(epoch, seq) })
		stop()
		publish(t, c, "stop.x", "", "after stop")
		if consumerCount(t, c, cfg.Name) != 0 {
			t.Fatalf("round %d: the tail's consumer outlived it", round)
		}
		sink.mu.Lock()
		late := sink.late
		sink.mu.Unlock()
		if late != 0 {
			t.Fatalf("round %d: sink called %d times after Tail returned", round, late)
		}
	}
	waitFor(t, "goroutines to wind down", func() bool { return runtime.NumGoroutine() <= before })
}

// Cancelling the context while the server is down ends the tail too.
func TestTailStopsWhileDisconnected(t *testing.T) {
	probe := startServer(t, EmbeddedConfig{Listen: "127.0.0.1:0"})
	url := probe.ClientURL()
	probe.Shutdown()
	c := connect(t, ConnConfig{URLs: []string{url}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.Tail(ctx, TailConfig{Stream: testStream("DOWN", "down.>")}, &recSink{})
	}()
	cancel()
	select {
	case <-done:
	case <-time.After(waitLong):
		t.Fatal("Tail ignored its context while waiting for the server")
	}
}

// The hub is the sink the tail feeds in production.
var _ Sink = (*hub.Hub)(nil)

// fakeMsg is a delivered message with just what the tail reads.
type fakeMsg struct {
	natsjs.Msg // nil: other methods are not used
	stream     uint64
	delivery   uint64
}

func (m fakeMsg) Metadata() (*natsjs.MsgMetadata, error) {
	return &natsjs.MsgMetadata{Sequence: natsjs.SequencePair{Stream: m.stream, Consumer: m.delivery}}, nil
}
func (m fakeMsg) Data() []byte         { return []byte(fmt.Sprint(m.stream)) }
func (m fakeMsg) Headers() nats.Header { return nil }
func (m fakeMsg) Subject() string      { return "gap.x" }

// Skipped sequences are fine when messages were deleted from the middle of
// the stream, and end the run when the stream's head moved past them or the
// consumer skipped a delivery.
func TestTailHandlerGaps(t *testing.T) {
	tests := []struct {
		name      string
		prepare   func(t *testing.T, s natsjs.Stream) // on a stream holding 1..10
		deliver   []fakeMsg                           // the handler has seen stream seq 5, delivery 0
		wantSeqs  []uint64
		wantError error
	}{
		{"contiguous", nil, []fakeMsg{{nil, 6, 1}, {nil, 7, 2}}, []uint64{6, 7}, nil},
		{"duplicate is dropped", nil, []fakeMsg{{nil, 5, 1}, {nil, 6, 2}}, []uint64{6}, nil},
		{"deleted message in the middle", func(t *testing.T, s natsjs.Stream) {
			if err := s.DeleteMsg(ctxFor(t), 6); err != nil {
				t.Fatal(err)
			}
		}, []fakeMsg{{nil, 7, 1}, {nil, 8, 2}}, []uint64{7, 8}, nil},
		{"head of the stream moved past the position", func(t *testing.T, s natsjs.Stream) {
			if err := s.Purge(ctxFor(t), natsjs.WithPurgeKeep(3)); err != nil {
				t.Fatal(err)
			}
		}, []fakeMsg{{nil, 8, 1}, {nil, 9, 2}}, nil, errHistoryExpired},
		{"skipped delivery", nil, []fakeMsg{{nil, 6, 1}, {nil, 8, 3}, {nil, 9, 4}}, []uint64{6}, errDeliveryGap},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, c := inProcess(t)
			cfg := testStream(fmt.Sprint("GAP", i), fmt.Sprint("gap", i, ".>"))
			st := ensure(t, c, cfg)
			for n := range 10 {
				publish(t, c, fmt.Sprint("gap", i, ".x"), "", fmt.Sprint(n))
			}
			if tt.prepare != nil {
				tt.prepare(t, jsStream(t, c, cfg.Name))
			}
			sink := &recSink{epoch: st.Epoch, last: 5}
			tl := &tail{conn: c, cfg: TailConfig{Stream: cfg}, sink: sink, log: c.log}
			h := &tailHandler{tail: tl, ctx: ctxFor(t), epoch: st.Epoch, last: 5, failed: make(chan error, 1)}
			for _, m := range tt.deliver {
				h.handle(m)
			}
			_, events := sink.snapshot()
			if got := seqs(events); len(got)+len(tt.wantSeqs) > 0 && !equalSeqs(got, tt.wantSeqs) {
				t.Fatalf("published %v, want %v", got, tt.wantSeqs)
			}
			var err error
			select {
			case err = <-h.failed:
			default:
			}
			if !errors.Is(err, tt.wantError) || (tt.wantError == nil && err != nil) {
				t.Fatalf("run ended with %v, want %v", err, tt.wantError)
			}
		})
	}
}
