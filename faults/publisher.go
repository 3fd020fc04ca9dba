package faults

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/caddy-sse/caddy-sse/internal/sseclient"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// published is what the publisher knows of one event: number n is at index
// n-1. Seq is the stream sequence NATS acknowledged (0: never acknowledged).
type published struct {
	Subject string
	At      int64 // first attempt, unix ns
	Seq     uint64
	Inc     int   // the stream incarnation that acknowledged it
	AckAt   int64 // when the acknowledgement came, unix ns
}

// publisher sends numbered events round-robin over the topics at a steady
// rate, straight to the cluster (not through the link proxies), and keeps
// retrying each one under the same Nats-Msg-Id until NATS acknowledges it:
// the stream deduplicates a retry whose first attempt was stored.
type publisher struct {
	js     jetstream.JetStream
	run    string
	topics []string

	// gate: the publishing loop holds it shared while it sends; a fault
	// that recreates the stream holds it exclusively.
	gate sync.RWMutex

	mu    sync.Mutex
	sent  []published
	retry []int64
	errs  int64
	inc   int // the stream's incarnation: acknowledgements from now on are from it
}

const msgIDSep = ":"

func newPublisher(nc *nats.Conn, run string, topics []string) (*publisher, error) {
	p := &publisher{run: run, topics: topics, inc: 1}
	js, err := jetstream.New(nc,
		jetstream.WithPublishAsyncMaxPending(8192),
		jetstream.WithPublishAsyncTimeout(3*time.Second),
		jetstream.WithPublishAsyncAckHandler(func(_ jetstream.JetStream, m *nats.Msg, ack *jetstream.PubAck) {
			if n := p.number(m); n > 0 {
				p.mu.Lock()
				if p.sent[n-1].Seq == 0 {
					p.sent[n-1].Seq, p.sent[n-1].AckAt, p.sent[n-1].Inc = ack.Sequence, time.Now().UnixNano(), p.inc
				}
				p.mu.Unlock()
			}
		}),
		jetstream.WithPublishAsyncErrHandler(func(_ jetstream.JetStream, m *nats.Msg, _ error) {
			if n := p.number(m); n > 0 {
				p.mu.Lock()
				p.errs++
				p.retry = append(p.retry, n)
				p.mu.Unlock()
			}
		}),
	)
	if err != nil {
		return nil, err
	}
	p.js = js
	return p, nil
}

func (p *publisher) number(m *nats.Msg) int64 {
	id := m.Header.Get(jetstream.MsgIDHeader)
	_, num, ok := strings.Cut(id, msgIDSep)
	if !ok {
		return 0
	}
	n, _ := strconv.ParseInt(num, 10, 64)
	p.mu.Lock()
	defer p.mu.Unlock()
	if n < 1 || n > int64(len(p.sent)) {
		return 0
	}
	return n
}

func (p *publisher) message(n int64) *nats.Msg {
	p.mu.Lock()
	rec := p.sent[n-1]
	p.mu.Unlock()
	m := nats.NewMsg(rec.Subject)
	m.Data = sseclient.AppendPayload(nil, p.run, n, rec.At, nil)
	m.Header.Set(jetstream.MsgIDHeader, p.run+msgIDSep+strconv.FormatInt(n, 10))
	return m
}

// publish publishes rate events per second until ctx ends, retrying failed ones.
func (p *publisher) publish(ctx context.Context, rate float64) {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	start := time.Now()
	var count int64
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		p.gate.RLock()
		for due := int64(time.Since(start).Seconds() * rate); count < due; count++ {
			p.send(ctx, p.add(p.topics[int(count)%len(p.topics)]))
		}
		p.mu.Lock()
		retry := p.retry
		p.retry = nil
		p.mu.Unlock()
		for _, r := range retry {
			p.send(ctx, r)
		}
		p.gate.RUnlock()
	}
}

// add numbers the next event, to subject.
func (p *publisher) add(subject string) int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.sent = append(p.sent, published{Subject: subject, At: time.Now().UnixNano()})
	return int64(len(p.sent))
}

// burst publishes k events to subject as fast as the async window allows.
func (p *publisher) burst(ctx context.Context, subject string, k int) {
	p.gate.RLock()
	defer p.gate.RUnlock()
	for range k {
		if ctx.Err() != nil {
			return
		}
		p.send(ctx, p.add(subject))
	}
}

// pause stops publishing and waits (bounded) for every outstanding
// acknowledgement, so none straddles a change of the stream.
func (p *publisher) pause(ctx context.Context) {
	p.gate.Lock()
	select {
	case <-p.js.PublishAsyncComplete():
	case <-time.After(10 * time.Second):
	case <-ctx.Done():
	}
}

// resume publishes again; acknowledgements come from incarnation inc.
func (p *publisher) resume(inc int) {
	p.mu.Lock()
	p.inc = inc
	p.mu.Unlock()
	p.gate.Unlock()
}

func (p *publisher) send(ctx context.Context, n int64) {
	_, err := p.js.PublishMsgAsync(p.message(n), jetstream.WithStallWait(time.Second))
	if err != nil && ctx.Err() == nil {
		p.mu.Lock()
		p.errs++
		p.retry = append(p.retry, n)
		p.mu.Unlock()
	}
}

// settle keeps retrying until every event is acknowledged or limit passes.
func (p *publisher) settle(ctx context.Context, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		select {
		case <-p.js.PublishAsyncComplete():
		case <-time.After(time.Until(deadline)):
		case <-ctx.Done():
			return ctx.Err()
		}
		p.mu.Lock()
		retry := p.retry
		p.retry = nil
		unacked := 0
		for _, s := range p.sent {
			if s.Seq == 0 {
				unacked++
			}
		}
		p.mu.Unlock()
		if unacked == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return errors.New(strconv.Itoa(unacked) + " events never acknowledged")
		}
		for _, r := range retry {
			p.send(ctx, r)
		}
		sleepCtx(ctx, 100*time.Millisecond)
	}
}

func (p *publisher) snapshot() []published {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]published(nil), p.sent...)
}

// publishedAt is when event n was first sent (unix ns), 0 if unknown.
func (p *publisher) publishedAt(n int64) int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	if n < 1 || n > int64(len(p.sent)) {
		return 0
	}
	return p.sent[n-1].At
}
