package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddy-sse/caddy-sse/internal/sseclient"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// publisher sends numbered, timestamped events to one subject with JetStream
// async publish. The in-flight window bounds how many publishes wait for an
// ack; a full window makes the next publish wait rather than queue without
// limit. Each message carries a Nats-Msg-Id, so a retry after a lost ack is
// deduplicated by the stream.
type publisher struct {
	js      jetstream.JetStream
	subject string
	run     string
	pad     []byte // payload padding

	last    atomic.Int64 // highest number handed to NATS; numbers start at 1
	acked   atomic.Int64
	errs    atomic.Int64 // async publish errors (each is retried at flush)
	lost    atomic.Int64 // publishes that failed even after retries
	retryMu sync.Mutex
	retry   []*nats.Msg
}

const publishStallWait = 5 * time.Second

func newPublisher(nc *nats.Conn, subject, run string, window, pad int) (*publisher, error) {
	p := &publisher{subject: subject, run: run, pad: bytes.Repeat([]byte("x"), pad)}
	js, err := jetstream.New(nc,
		jetstream.WithPublishAsyncMaxPending(window),
		jetstream.WithPublishAsyncTimeout(10*time.Second),
		jetstream.WithPublishAsyncAckHandler(func(jetstream.JetStream, *nats.Msg, *jetstream.PubAck) { p.acked.Add(1) }),
		jetstream.WithPublishAsyncErrHandler(func(_ jetstream.JetStream, m *nats.Msg, _ error) {
			p.errs.Add(1)
			p.retryMu.Lock()
			p.retry = append(p.retry, m)
			p.retryMu.Unlock()
		}),
	)
	if err != nil {
		return nil, err
	}
	p.js = js
	return p, nil
}

// next publishes the next number.
func (p *publisher) next(ctx context.Context) error {
	n := p.last.Load() + 1
	data := sseclient.AppendPayload(make([]byte, 0, 64+len(p.pad)), p.run, n, time.Now().UnixNano(), p.pad)
	id := p.run + "-" + strconv.FormatInt(n, 10)
	for {
		_, err := p.js.PublishAsync(p.subject, data, jetstream.WithMsgID(id), jetstream.WithStallWait(publishStallWait))
		if err == nil {
			p.last.Store(n)
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if !errors.Is(err, jetstream.ErrTooManyStalledMsgs) {
			return fmt.Errorf("publish %d: %w", n, err)
		}
	}
}

// paced publishes rate events per second for d, or until stop is closed (nil:
// never). It returns how many it published.
func (p *publisher) paced(ctx context.Context, rate float64, d time.Duration, stop <-chan struct{}) (int64, error) {
	if rate <= 0 || d <= 0 {
		return 0, nil
	}
	total := int64(math.Round(rate * d.Seconds()))
	interval := time.Duration(float64(time.Second) / rate)
	interval = min(max(interval, time.Millisecond), 20*time.Millisecond)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	start := time.Now()
	var sent int64
	for sent < total {
		due := min(total, int64(time.Since(start).Seconds()*rate)+1)
		for ; sent < due; sent++ {
			if err := p.next(ctx); err != nil {
				return sent, err
			}
		}
		if sent >= total {
			break
		}
		select {
		case <-ctx.Done():
			return sent, ctx.Err()
		case <-stop:
			return sent, nil
		case <-tick.C:
		}
	}
	return sent, nil
}

// burst publishes k events as fast as the in-flight window allows.
func (p *publisher) burst(ctx context.Context, k int) error {
	for i := 0; i < k; i++ {
		if err := p.next(ctx); err != nil {
			return err
		}
	}
	return nil
}

// flush waits for every outstanding ack, then republishes failed messages
// synchronously (a few tries each).
func (p *publisher) flush(ctx context.Context) error {
	select {
	case <-p.js.PublishAsyncComplete():
	case <-ctx.Done():
		return ctx.Err()
	}
	p.retryMu.Lock()
	retry := p.retry
	p.retry = nil
	p.retryMu.Unlock()
	for _, m := range retry {
		var err error
		for try := 0; try < 3; try++ {
			if _, err = p.js.PublishMsg(ctx, m); err == nil {
				p.acked.Add(1)
				break
			}
		}
		if err != nil {
			p.lost.Add(1)
		}
	}
	return nil
}

// ensureStream finds the stream capturing subject. When none does and create
// is set (bare-only runs, where no server under test owns the stream), it
// creates a small memory stream for the benchmark.
func ensureStream(ctx context.Context, nc *nats.Conn, subject string, create bool) (string, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return "", err
	}
	name, err := js.StreamNameBySubject(ctx, subject)
	if err == nil {
		return name, nil
	}
	if !errors.Is(err, jetstream.ErrStreamNotFound) {
		return "", fmt.Errorf("look up the stream for subject %q: %w", subject, err)
	}
	if !create {
		return "", fmt.Errorf("no JetStream stream captures subject %q (is the server under test running and configured for it?)", subject)
	}
	name = "SSE_BENCH_" + strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' {
			return r
		}
		return '_'
	}, subject)
	_, err = js.CreateStream(ctx, jetstream.StreamConfig{
		Name:     name,
		Subjects: []string{subject},
		Storage:  jetstream.MemoryStorage,
		MaxBytes: 64 << 20, // bare-only runs replay from the bare ring, not from here
		MaxAge:   time.Hour,
	})
	if err != nil {
		return "", fmt.Errorf("create stream %s for %q: %w", name, subject, err)
	}
	return name, nil
}

// consumerCount reads the stream's consumer count from the JetStream API.
func consumerCount(ctx context.Context, js jetstream.JetStream, stream string) (int, error) {
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return 0, err
	}
	info := s.CachedInfo()
	if info == nil {
		return 0, errors.New("no stream info")
	}
	return info.State.Consumers, nil
}
