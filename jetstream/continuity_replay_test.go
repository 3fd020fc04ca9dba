package jetstream

import (
	"errors"
	"testing"

	natsjs "github.com/nats-io/nats.go/jetstream"
)

// replayDuring replays (after, upto] of stream with one caller's own read
// (paced by its callback, as a lone client's is) and runs meddle once,
// inside the callback, when the first batch has been received. It returns
// the sequences received and the replay's error.
func replayDuring(t *testing.T, c *Conn, req ReplayRequest, meddle func()) ([]uint64, error) {
	t.Helper()
	var got []uint64
	meddled := false
	err := c.privateReplay(ctxFor(t), req, func(batch []Message) error {
		for _, m := range batch {
			got = append(got, m.Seq)
		}
		if !meddled {
			meddled = true
			meddle()
		}
		return nil
	})
	return got, err
}

// contiguousFrom reports whether seqs are from, from+1, ... without a hole.
func contiguousFrom(seqs []uint64, from uint64) bool {
	for i, s := range seqs {
		if s != from+uint64(i) {
			return false
		}
	}
	return true
}

// Limits can remove messages just ahead of a replay's consumer; the server
// then skips them without a word and the delivery sequence stays unbroken.
// The reader must see the stream-sequence jump for what it is.
func TestReplayNoticesHistoryRemovedWhileReading(t *testing.T) {
	_, c := inProcess(t)
	ensure(t, c, StreamConfig{Name: "LIM", Subjects: []string{"lim.>"}, MaxBytes: 1 << 20, MaxMsgs: 300})
	fillStream(t, c, 300, "lim.x")
	got, err := replayDuring(t, c, ReplayRequest{Stream: "LIM", After: 0, Upto: 300}, func() {
		fillStream(t, c, 200, "lim.x") // evicts 1..200 while the replay is past 128 only
	})
	if !errors.Is(err, ErrHistoryGone) {
		t.Fatalf("Replay = %v with %d events, want ErrHistoryGone", err, len(got))
	}
	if !contiguousFrom(got, 1) || len(got) > 200 {
		t.Fatalf("events before the reset are not a gapless prefix: %v", got)
	}
	if n := consumerCount(t, c, "LIM"); n != 0 {
		t.Fatalf("%d consumers left behind", n)
	}
}

// The same when the removed messages were the last of the range: the
// consumer then has nothing pending and a naive reader reports success.
func TestReplayNoticesHistoryPurgedAtTheEndOfTheRange(t *testing.T) {
	_, c := inProcess(t)
	ensure(t, c, testStream("END", "end.>"))
	fillStream(t, c, 200, "end.x")
	got, err := replayDuring(t, c, ReplayRequest{Stream: "END", After: 0, Upto: 200}, func() {
		if err := jsStream(t, c, "END").Purge(ctxFor(t)); err != nil {
			t.Fatal(err)
		}
	})
	if !errors.Is(err, ErrHistoryGone) {
		t.Fatalf("Replay = %v with %d events, want ErrHistoryGone", err, len(got))
	}
	if !contiguousFrom(got, 1) {
		t.Fatalf("events before the reset are not a gapless prefix: %v", got)
	}
}

// Jumps over other subjects and over deleted messages are not lost history.
func TestReplayJumpsThatLoseNothing(t *testing.T) {
	_, c := inProcess(t)
	ensure(t, c, testStream("JMP", "jmp.>"))
	all := publishSparse(t, c, 400, 3, "jmp.common", "jmp.rare")
	s := jsStream(t, c, "JMP")
	for _, seq := range []uint64{150, 151, 152, 300} {
		if err := s.DeleteMsg(ctxFor(t), seq); err != nil {
			t.Fatal(err)
		}
	}
	var want []published
	for _, p := range expect(all, []string{"jmp.rare"}, 0, 400) {
		if p.Seq != 150 && p.Seq != 151 && p.Seq != 152 && p.Seq != 300 {
			want = append(want, p)
		}
	}
	got, err := collect(t, func(fn func([]Message) error) error {
		return c.Replay(ctxFor(t), ReplayRequest{Stream: "JMP", Filters: []string{"jmp.rare"}, After: 0, Upto: 400}, fn)
	})
	if err != nil {
		t.Fatalf("Replay: %v", err)
	}
	if !sameEvents(got, want) {
		t.Fatalf("got  %v\nwant %v", got, want)
	}
}

// With AckNone, messages the server sent but the reader never received
// count as delivered. Another client fetching from the replay's consumer is
// what the server sees when they are lost in flight.
func TestReplayRereadsMessagesLostInFlight(t *testing.T) {
	tests := []struct {
		name  string
		total int
		steal int
	}{
		{"the last messages of the range", 200, 72},
		{"messages in the middle of the range", 400, 50},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, c := inProcess(t)
			ensure(t, c, testStream("FLY", "fly.>"))
			fillStream(t, c, tt.total, "fly.x")
			got, err := replayDuring(t, c, ReplayRequest{Stream: "FLY", After: 0, Upto: uint64(tt.total)}, func() {
				stealFromReplayConsumer(t, c, "FLY", tt.steal)
			})
			if err != nil {
				t.Fatalf("Replay: %v", err)
			}
			if len(got) != tt.total || !contiguousFrom(got, 1) {
				t.Fatalf("got %d events %v, want 1..%d", len(got), got, tt.total)
			}
			if n := consumerCount(t, c, "FLY"); n != 0 {
				t.Fatalf("%d consumers left behind", n)
			}
		})
	}
}

// stealFromReplayConsumer fetches n messages from the stream's only
// consumer, the replay's.
func stealFromReplayConsumer(t *testing.T, c *Conn, stream string, n int) {
	t.Helper()
	names := jsStream(t, c, stream).ConsumerNames(ctxFor(t))
	var consumers []string
	for name := range names.Name() {
		consumers = append(consumers, name)
	}
	if len(consumers) != 1 {
		t.Fatalf("want one replay consumer, found %v", consumers)
	}
	cons, err := c.js.Consumer(ctxFor(t), stream, consumers[0])
	if err != nil {
		t.Fatal(err)
	}
	batch, err := cons.Fetch(n)
	if err != nil {
		t.Fatal(err)
	}
	stolen := 0
	for range batch.Messages() {
		stolen++
	}
	if stolen != n {
		t.Fatalf("stole %d messages, want %d", stolen, n)
	}
}

// A cursor belongs to one incarnation of the stream. Until the tail notices
// that the stream was deleted and created again, replays must not hand out
// the new stream's events under the old epoch.
func TestReplayChecksTheStreamIncarnation(t *testing.T) {
	_, c := inProcess(t)
	cfg := testStream("INC", "inc.>")
	old := ensure(t, c, cfg)
	fillStream(t, c, 300, "inc.x")

	recreate := func() {
		t.Helper()
		if err := c.js.DeleteStream(ctxFor(t), "INC"); err != nil {
			t.Fatal(err)
		}
		ensure(t, c, cfg)
		fillStream(t, c, 300, "inc.x")
	}

	// Recreated while the replay reads.
	got, err := replayDuring(t, c, ReplayRequest{Stream: "INC", Epoch: old.Epoch, After: 0, Upto: 300}, recreate)
	if !errors.Is(err, ErrStreamChanged) {
		t.Fatalf("Replay across a recreation = %v with %d events, want ErrStreamChanged", err, len(got))
	}
	if !contiguousFrom(got, 1) || len(got) > replayBatch {
		t.Fatalf("events of the old incarnation: %v", got)
	}

	// Recreated before the replay starts.
	for _, read := range []struct {
		name string
		run  func(fn func([]Message) error) error
	}{
		{"Replay", func(fn func([]Message) error) error {
			return c.Replay(ctxFor(t), ReplayRequest{Stream: "INC", Epoch: old.Epoch, After: 10, Upto: 20}, fn)
		}},
		{"LastN", func(fn func([]Message) error) error {
			return c.LastN(ctxFor(t), ReplayRequest{Stream: "INC", Epoch: old.Epoch, Upto: 20}, 5, fn)
		}},
	} {
		got, err := collect(t, read.run)
		if !errors.Is(err, ErrStreamChanged) || len(got) != 0 {
			t.Errorf("%s on a recreated stream = %d events, %v; want none and ErrStreamChanged", read.name, len(got), err)
		}
	}
	current, err := c.StreamState(ctxFor(t), "INC")
	if err != nil {
		t.Fatal(err)
	}
	fresh, err := collect(t, func(fn func([]Message) error) error {
		return c.Replay(ctxFor(t), ReplayRequest{Stream: "INC", Epoch: current.Epoch, After: 10, Upto: 20}, fn)
	})
	if err != nil || len(fresh) != 10 {
		t.Fatalf("Replay with the current epoch = %d events, %v; want 10", len(fresh), err)
	}
}

// A replay consumer deleted while the client was slow (inactivity, an
// operator) is rebuilt where the reader stopped.
func TestReplaySurvivesItsConsumerBeingDeleted(t *testing.T) {
	_, c := inProcess(t)
	ensure(t, c, testStream("DEL", "del.>"))
	fillStream(t, c, 300, "del.x")
	got, err := replayDuring(t, c, ReplayRequest{Stream: "DEL", After: 0, Upto: 300}, func() {
		s := jsStream(t, c, "DEL")
		for name := range s.ConsumerNames(ctxFor(t)).Name() {
			if err := s.DeleteConsumer(ctxFor(t), name); err != nil && !errors.Is(err, natsjs.ErrConsumerNotFound) {
				t.Fatal(err)
			}
		}
	})
	if err != nil || len(got) != 300 || !contiguousFrom(got, 1) {
		t.Fatalf("Replay = %d events, %v; want 1..300", len(got), err)
	}
}

// On a KV-style stream (a per-subject limit) a head that moved past the
// cursor is supersession: the replay gives the latest values, not a reset.
func TestReplayOnKVStyleStreamIsNotAReset(t *testing.T) {
	_, c := inProcess(t)
	if _, err := c.js.CreateStream(ctxFor(t), natsjs.StreamConfig{
		Name: "KVR", Subjects: []string{"kvr.>"}, MaxMsgsPerSubject: 1,
	}); err != nil {
		t.Fatal(err)
	}
	keys := []string{"kvr.a", "kvr.b", "kvr.c", "kvr.d", "kvr.e"}
	for range 10 {
		fillStream(t, c, len(keys), keys...)
	}
	got, err := replayDuring(t, c, ReplayRequest{Stream: "KVR", After: 10, Upto: 50}, func() {})
	if err != nil {
		t.Fatalf("Replay on a KV-style stream: %v", err)
	}
	if !contiguousFrom(got, 46) || len(got) != 5 {
		t.Fatalf("got %v, want the latest value of each key (46..50)", got)
	}
}
