package hub

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/caddy-sse/caddy-sse/sse"
)

var benchPayload = []byte(`{"user":"alice","room":"lobby","text":"hello, world","ts":1700000000123}`)

func BenchmarkAppendEvent(b *testing.B) {
	for _, bc := range []struct {
		name string
		data []byte
	}{
		{"json-one-line", benchPayload},
		{"4KiB-one-line", bytes.Repeat([]byte("x"), 4096)},
		{"4KiB-64-lines", bytes.Repeat(append(bytes.Repeat([]byte("y"), 63), '\n'), 64)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(bc.data)))
			var dst []byte
			for b.Loop() {
				dst = sse.AppendEvent(dst[:0], "k3x9fz01-123456", "message", bc.data)
			}
		})
	}
}

// benchPublish publishes to subjects in turn with subscriptions registered
// for patterns. Queues are drained, with the timer stopped, often enough
// never to overflow.
func benchPublish(b *testing.B, patterns [][]string, subjects []string) {
	h := New(Config{})
	h.Begin("k3x9fz01", 0)
	subs := make([]*Subscription, len(patterns))
	for i, p := range patterns {
		subs[i], _ = mustSubscribe(b, h, 1024, p...)
	}
	var buf []*Event
	drainAll := func() {
		for _, s := range subs {
			buf = s.Drain(buf[:0])
		}
	}
	seq := uint64(0)
	// Warm up: grow the publish scratch slices and every queue to its working size (512 events between drains).
	for i := range max(len(subjects), 512) {
		seq++
		h.Publish(seq, subjects[i%len(subjects)], "", benchPayload)
		if i%512 == 511 {
			drainAll()
		}
	}
	drainAll()
	before := h.Stats().Delivered

	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		seq++
		h.Publish(seq, subjects[i%len(subjects)], "", benchPayload)
		if i%512 == 511 {
			b.StopTimer()
			drainAll()
			b.StartTimer()
		}
	}
	b.StopTimer()
	st := h.Stats()
	if st.Overflows != 0 {
		b.Fatalf("%d subscriptions overflowed", st.Overflows)
	}
	deliveries := float64(st.Delivered-before) / float64(b.N)
	b.ReportMetric(deliveries, "deliveries/op")
	if deliveries > 0 {
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/deliveries, "ns/delivery")
	}
}

func BenchmarkPublish(b *testing.B) {
	for _, n := range []struct {
		name string
		subs int
	}{{"1-sub-one-subject", 1}, {"1k-subs-one-subject", 1000}, {"10k-subs-one-subject", 10000}} {
		b.Run(n.name, func(b *testing.B) {
			patterns := make([][]string, n.subs)
			for i := range patterns {
				patterns[i] = []string{"chat.lobby"}
			}
			benchPublish(b, patterns, []string{"chat.lobby"})
		})
	}
	b.Run("10k-distinct-subjects-with-wildcards", func(b *testing.B) {
		const rooms = 10000
		var patterns [][]string
		subjects := make([]string, rooms)
		for i := range rooms {
			subjects[i] = fmt.Sprintf("room.%d.msg", i)
			switch i % 3 { // one subscription per room, in every pattern shape
			case 0:
				patterns = append(patterns, []string{subjects[i]})
			case 1:
				patterns = append(patterns, []string{fmt.Sprintf("room.%d.*", i)})
			case 2:
				patterns = append(patterns, []string{fmt.Sprintf("room.%d.>", i)})
			}
		}
		for range 10 { // dashboards watching every room
			patterns = append(patterns, []string{"room.*.msg"})
		}
		benchPublish(b, patterns, subjects)
	})
}

func BenchmarkSince(b *testing.B) {
	h := New(Config{})
	h.Begin("k3x9fz01", 0)
	const full = defaultRingSize
	for seq := uint64(1); seq <= full+100; seq++ { // wrapped and full
		h.Publish(seq, fmt.Sprintf("room.%d.msg", seq%100), "", benchPayload)
	}
	epochFloor, last := h.history.floor, uint64(full+100)
	for _, bc := range []struct {
		name     string
		patterns []string
		want     int
	}{
		{"whole-ring-1pct-match", []string{"room.7.*"}, full / 100},
		{"whole-ring-all-match", []string{">"}, full},
		{"whole-ring-3-patterns", []string{"room.7.msg", "room.8.*", "room.9.>"}, 3 * full / 100},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			var dst []*Event
			for b.Loop() {
				var covered bool
				dst, covered, _ = h.Since(dst[:0], bc.patterns, epochFloor, last, 0)
				if !covered || len(dst) < bc.want-1 || len(dst) > bc.want+1 {
					b.Fatalf("Since: %d events, covered %v", len(dst), covered)
				}
			}
		})
	}
}

// BenchmarkSubscribeClose: registering and leaving must stay cheap when many
// clients share a subject (swap-remove, no scan).
func BenchmarkSubscribeClose(b *testing.B) {
	h := New(Config{})
	h.Begin("k3x9fz01", 0)
	for range 10000 {
		mustSubscribe(b, h, 16, "chat.lobby")
	}
	patterns := []string{"chat.lobby", "user.42.>"}
	b.ReportAllocs()
	for b.Loop() {
		sub, _, _ := h.Subscribe(patterns, 64)
		sub.Close()
	}
}
