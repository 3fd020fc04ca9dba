package caddysse

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/caddy-sse/caddy-sse/session"
)

// A replay from JetStream hands the session frames encoded once per read, and they are byte for byte the
// frames a replay from memory writes for the same events: ids, types, multi-line and empty data alike.
func TestFeedStoredFramesMatchMemory(t *testing.T) {
	const total = 3000
	f, _, state, ctx := splitFeed(t, total, func(i int) (string, []byte) {
		switch i % 4 {
		case 0:
			return "", []byte(fmt.Sprint(i))
		case 1:
			return "update", []byte(fmt.Sprintf("line %d\r\nnext\rlast", i))
		case 2:
			return "empty", nil
		default:
			return "", []byte(fmt.Sprintf("{\"n\":%d}\n", i))
		}
	})
	last := state.LastSeq + total
	floor := last - 2000 // the memory holds (floor, last]

	stored := map[uint64][]byte{}
	_, err := f.Replay(ctx, session.ReplayRequest{Epoch: state.Epoch, Patterns: []string{"split.>"}, After: state.LastSeq + 10, Upto: last},
		func(b session.Batch) error {
			if len(b.Messages) > 0 {
				return fmt.Errorf("%d stored events left for the session to encode", len(b.Messages))
			}
			for _, e := range b.Events {
				stored[e.Seq] = e.Frame
			}
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	if len(stored) != total-10 {
		t.Fatalf("%d events from JetStream, want %d", len(stored), total-10)
	}
	mem, covered, _ := f.hub.Since(nil, []string{"split.>"}, floor, last, 0)
	if !covered || len(mem) != 2000 {
		t.Fatalf("memory: covered %v, %d events", covered, len(mem))
	}
	for _, e := range mem {
		if !bytes.Equal(stored[e.Seq], e.Frame) {
			t.Fatalf("seq %d: from JetStream %q, from memory %q", e.Seq, stored[e.Seq], e.Frame)
		}
	}
}
