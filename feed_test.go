package caddysse

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/caddy-sse/caddy-sse/hub"
	"github.com/caddy-sse/caddy-sse/jetstream"
	"github.com/caddy-sse/caddy-sse/session"
)

// TestResetFor: every JetStream answer about history becomes its documented reset reason; other errors
// (NATS down, a client write failing) stay errors that end the session.
func TestResetFor(t *testing.T) {
	other := errors.New("write: broken pipe")
	cases := []struct {
		err  error
		want session.Reason // "" when it is no reset
	}{
		{fmt.Errorf("replay: %w", jetstream.ErrHistoryGone), session.ReasonHistoryExpired},
		{jetstream.ErrTooMany, session.ReasonTooManyEvents},
		{jetstream.ErrBeyondEnd, session.ReasonIDBeyondEnd},
		{fmt.Errorf("replay: %w", jetstream.ErrStreamChanged), session.ReasonStreamChanged},
		{jetstream.ErrNotConnected, ""},
		{other, ""},
		{nil, ""},
	}
	for _, tc := range cases {
		got := resetFor(tc.err)
		var r *session.ResetError
		switch {
		case tc.want == "" && got != tc.err:
			t.Errorf("resetFor(%v) = %v, want it unchanged", tc.err, got)
		case tc.want != "" && (!errors.As(got, &r) || r.Reason != tc.want || !errors.Is(got, tc.err)):
			t.Errorf("resetFor(%v) = %v, want a %s reset wrapping it", tc.err, got, tc.want)
		}
	}
}

// TestFeedServesFromMemory: ranges the hub still holds are answered without NATS (this feed has none).
func TestFeedServesFromMemory(t *testing.T) {
	f := &feed{hub: hub.New(hub.Config{}), tail: jetstream.TailConfig{Stream: jetstream.StreamConfig{Name: "S"}}}
	f.hub.Begin("e1", 0)
	for seq := uint64(1); seq <= 5; seq++ {
		f.hub.Publish(seq, "a.x", "", []byte(fmt.Sprint(seq)))
	}
	seqs := func(fn func(func(session.Batch) error) error) ([]uint64, error) {
		var got []uint64
		err := fn(func(b session.Batch) error {
			if b.Epoch != "e1" {
				t.Errorf("batch of epoch %q, want e1", b.Epoch)
			}
			for _, e := range b.Events {
				got = append(got, e.Seq)
			}
			return nil
		})
		return got, err
	}
	req := session.ReplayRequest{Epoch: "e1", Patterns: []string{"a.>"}, After: 2, Upto: 5, Limit: 10}

	got, err := seqs(func(fn func(session.Batch) error) error {
		src, err := f.Replay(context.Background(), req, fn)
		if src != session.SourceMemory {
			t.Errorf("source %q, want memory", src)
		}
		return err
	})
	if err != nil || !slices.Equal(got, []uint64{3, 4, 5}) {
		t.Fatalf("Replay (2,5]: %v %v, want 3 4 5", got, err)
	}

	got, err = seqs(func(fn func(session.Batch) error) error { return f.LastN(context.Background(), req, 2, fn) })
	if err != nil || !slices.Equal(got, []uint64{4, 5}) {
		t.Fatalf("LastN 2: %v %v, want 4 5", got, err)
	}

	req.Limit = 2
	_, err = f.Replay(context.Background(), req, func(session.Batch) error { return nil })
	var r *session.ResetError
	if !errors.As(err, &r) || r.Reason != session.ReasonTooManyEvents {
		t.Fatalf("Replay over the limit: %v, want a too-many-events reset", err)
	}
}
