package faults

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"github.com/caddy-sse/caddy-sse/internal/sseclient"
	"github.com/nats-io/nats.go/jetstream"
)

// readBack reads every message of this run still in the stream, in order,
// with an ordered consumer (the suite's own, after the clients are done). A
// cluster just through faults may refuse for a moment: it retries for a
// minute.
func readBack(ctx context.Context, js jetstream.JetStream, stream, run string) ([]stored, error) {
	deadline := time.Now().Add(time.Minute)
	for {
		out, err := readBackOnce(ctx, js, stream, run)
		if err == nil || time.Now().After(deadline) || ctx.Err() != nil {
			return out, err
		}
		sleepCtx(ctx, time.Second)
	}
}

func readBackOnce(ctx context.Context, js jetstream.JetStream, stream, run string) ([]stored, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return nil, err
	}
	info := s.CachedInfo()
	last := info.State.LastSeq
	if info.State.Msgs == 0 {
		return nil, nil
	}
	cons, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverAllPolicy})
	if err != nil {
		return nil, err
	}
	tag := []byte(run)
	var out []stored
	for {
		batch, err := cons.Fetch(1000, jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			return nil, err
		}
		got := 0
		var seq uint64
		for m := range batch.Messages() {
			got++
			md, err := m.Metadata()
			if err != nil {
				return nil, err
			}
			seq = md.Sequence.Stream
			if r, n, _, ok := sseclient.ParsePayload(m.Data()); ok && bytes.Equal(r, tag) {
				out = append(out, stored{Seq: seq, Subject: m.Subject(), N: n})
			}
		}
		if err := batch.Error(); err != nil {
			return nil, err
		}
		if seq >= last {
			return out, nil
		}
		if got == 0 {
			return nil, fmt.Errorf("read-back stopped at %d of %d", seq, last)
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
	}
}
