package jetstream

import (
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddy-sse/caddy-sse/hub"
	natsjs "github.com/nats-io/nats.go/jetstream"
)

// beginCounter is a real hub that counts Begin calls.
type beginCounter struct {
	*hub.Hub
	begins atomic.Int32
}

func (b *beginCounter) Begin(epoch string, last uint64) {
	b.begins.Add(1)
	b.Hub.Begin(epoch, last)
}

// When the stream's head moves past events the hub holds (purge, DeleteMsg
// of the oldest message, supersession on a KV-style stream), the hub drops
// them from its history, so a resume from before them goes to JetStream,
// and nothing is reset: no Begin, no subscription cut.
func TestTailTrimsHubHistory(t *testing.T) {
	tests := []struct {
		name    string
		cfg     natsjs.StreamConfig
		subject func(n int) string
		remove  func(t *testing.T, s natsjs.Stream)
		first   uint64 // the stream's first sequence afterwards
	}{
		{"purge keeping three", natsjs.StreamConfig{Name: "TRP", Subjects: []string{"trp.>"}},
			func(int) string { return "trp.x" },
			func(t *testing.T, s natsjs.Stream) {
				if err := s.Purge(ctxFor(t), natsjs.WithPurgeKeep(3)); err != nil {
					t.Fatal(err)
				}
			}, 8},
		{"purge of everything", natsjs.StreamConfig{Name: "TRA", Subjects: []string{"tra.>"}},
			func(int) string { return "tra.x" },
			func(t *testing.T, s natsjs.Stream) {
				if err := s.Purge(ctxFor(t)); err != nil {
					t.Fatal(err)
				}
			}, 11},
		{"oldest message deleted", natsjs.StreamConfig{Name: "TRD", Subjects: []string{"trd.>"}},
			func(int) string { return "trd.x" },
			func(t *testing.T, s natsjs.Stream) {
				if err := s.DeleteMsg(ctxFor(t), 1); err != nil {
					t.Fatal(err)
				}
			}, 2},
		{"KV supersession", natsjs.StreamConfig{Name: "TRK", Subjects: []string{"trk.>"}, MaxMsgsPerSubject: 1},
			func(n int) string { return fmt.Sprint("trk.", n%2) }, nil, 9},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel() // each waits for the tail's periodic stream check
			c, _ := userStream(t, tt.cfg)
			h := &beginCounter{Hub: hub.New(hub.Config{})}
			runTail(t, c, TailConfig{Stream: StreamConfig{Name: tt.cfg.Name}}, h)
			select {
			case <-h.Ready():
			case <-time.After(waitLong):
				t.Fatal("the hub never began")
			}
			sub, _, err := h.Subscribe([]string{">"}, 0)
			if err != nil {
				t.Fatal(err)
			}
			for n := 1; n <= 10; n++ {
				publish(t, c, tt.subject(n), "", fmt.Sprint(n))
			}
			waitFor(t, "the hub to hold 1..10", func() bool { _, last := h.Position(); return last == 10 })
			if tt.remove != nil {
				tt.remove(t, jsStream(t, c, tt.cfg.Name))
			}
			if st, err := c.StreamState(ctxFor(t), tt.cfg.Name); err != nil || st.FirstSeq != tt.first {
				t.Fatalf("stream state %+v, %v: want first sequence %d", st, err, tt.first)
			}

			// A cursor just before the range JetStream no longer holds.
			gone := tt.first - 2
			waitFor(t, "the hub to drop what the stream no longer holds", func() bool {
				_, covered, _ := h.Since(nil, []string{">"}, gone, 10, 0)
				return !covered
			})
			if events, covered, _ := h.Since(nil, []string{">"}, tt.first-1, 10, 0); tt.first <= 10 &&
				(!covered || !slices.Equal(eventSeqs(events), seqRange(tt.first, 10))) {
				t.Errorf("history after the trim: %v, covered %v; want %d..10", eventSeqs(events), covered, tt.first)
			}
			next := publish(t, c, tt.subject(11), "", "11")
			waitFor(t, "the next event", func() bool { _, last := h.Position(); return last == next })
			if n := h.begins.Load(); n != 1 {
				t.Errorf("the hub was reset: %d Begin calls", n)
			}
			if err := sub.Err(); err != nil {
				t.Errorf("the subscription was cut: %v", err)
			}
			got := eventSeqs(sub.Drain(nil))
			want := append(seqRange(1, 10), next)
			if tt.cfg.MaxMsgsPerSubject > 0 {
				// What was superseded before the tail read it never reaches
				// the hub; the newest values do, in order.
				want = append(seqRange(tt.first, 10), next)
				got = got[max(len(got)-len(want), 0):]
			}
			if !slices.Equal(got, want) {
				t.Errorf("subscription got %v, want %v", got, want)
			}
		})
	}
}

func eventSeqs(events []*hub.Event) []uint64 {
	out := make([]uint64, len(events))
	for i, e := range events {
		out[i] = e.Seq
	}
	return out
}
