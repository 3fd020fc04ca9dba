package jetstream

import (
	"context"
	"errors"
	"fmt"
	"time"

	natsjs "github.com/nats-io/nats.go/jetstream"
)

// Message is one stored event.
type Message struct {
	Seq       uint64
	Subject   string
	EventType string
	Data      []byte
}

// ReplayRequest selects stored events: those matching any of Filters with
// After < seq <= Upto.
type ReplayRequest struct {
	Stream      string
	Filters     []string // subject patterns; none means every subject
	After, Upto uint64
	Limit       int // more than Limit matching events after After → ErrTooMany; 0 = no limit
	EventHeader string
}

const (
	replayBatch        = 128 // messages per fetch
	replayInactive     = time.Minute
	replayFetchWait    = 5 * time.Second
	replayEmptyRetries = 3 // empty fetches tolerated while the consumer says more is pending
	readerDropTimeout  = 5 * time.Second
)

// Replay calls fn, in sequence order, for every event matching the request.
// It reads with a short-lived ephemeral consumer, deleted when done, and
// holds one of the connection's replay slots meanwhile (waiting for one
// within ctx). A fn error aborts the replay and is returned as is.
//
// ErrBeyondEnd when After is past the stream's last sequence; ErrHistoryGone
// when events after After have expired or been purged; ErrTooMany, before fn
// is called, when more than Limit matching events follow After.
func (c *Conn) Replay(ctx context.Context, req ReplayRequest, fn func(Message) error) error {
	release, err := c.acquireReplay(ctx)
	if err != nil {
		return err
	}
	defer release()

	state, err := c.StreamState(ctx, req.Stream)
	if err != nil {
		return err
	}
	switch {
	case req.After > state.LastSeq:
		return ErrBeyondEnd
	case req.After >= req.Upto:
		return nil
	case req.After+1 < state.FirstSeq:
		return ErrHistoryGone
	}

	r, err := c.openReader(ctx, req.Stream, req.Filters, req.After+1)
	if err != nil {
		return err
	}
	defer r.drop()
	// The server starts a consumer at the first stored message when the one
	// asked for is gone; the check above can race with expiry, this one
	// cannot.
	if r.startSeq > req.After+1 {
		return ErrHistoryGone
	}
	if req.Limit > 0 && r.pending > uint64(req.Limit) {
		return ErrTooMany
	}
	return r.read(ctx, req.Upto, req.EventHeader, fn)
}

// reader is an ephemeral consumer reading part of a stream once.
type reader struct {
	conn     *Conn
	stream   string
	cons     natsjs.Consumer
	startSeq uint64 // where the server actually starts
	pending  uint64 // matching messages from startSeq to the end, at creation
}

func (c *Conn) openReader(ctx context.Context, stream string, filters []string, start uint64) (*reader, error) {
	cfg := natsjs.ConsumerConfig{
		Description:       "caddy-sse replay",
		DeliverPolicy:     natsjs.DeliverByStartSequencePolicy,
		OptStartSeq:       start,
		AckPolicy:         natsjs.AckNonePolicy,
		InactiveThreshold: replayInactive,
		MemoryStorage:     true,
		Replicas:          1,
	}
	if f := minimalFilters(filters); len(f) == 1 {
		cfg.FilterSubject = f[0]
	} else {
		cfg.FilterSubjects = f
	}
	cons, err := c.js.CreateConsumer(ctx, stream, cfg)
	if errors.Is(err, natsjs.ErrStreamNotFound) {
		return nil, fmt.Errorf("%w: %q", ErrNoStream, stream)
	}
	if err != nil {
		return nil, fmt.Errorf("jetstream: replay consumer on %q: %w", stream, err)
	}
	info := cons.CachedInfo()
	return &reader{
		conn:     c,
		stream:   stream,
		cons:     cons,
		startSeq: info.Delivered.Stream + 1,
		pending:  info.NumPending,
	}, nil
}

// drop deletes the consumer, also when the caller's context is done.
func (r *reader) drop() {
	r.conn.dropConsumer(r.stream, r.cons.CachedInfo().Name)
}

// read fetches messages in order and calls visit for each with seq <= upto.
// It ends at upto or when the consumer has nothing more pending.
func (r *reader) read(ctx context.Context, upto uint64, header string, visit func(Message) error) error {
	remaining := r.pending
	var dseq uint64 // delivery sequence of the last message seen
	for empty := 0; remaining > 0; {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := r.conn.connected(); err != nil {
			return err
		}
		// A fetch that expires on the server before the client stops
		// listening cannot lose messages in flight, which a no-wait fetch
		// timing out on a busy machine could.
		batch, err := r.cons.Fetch(int(min(remaining, replayBatch)), natsjs.FetchMaxWait(replayFetchWait))
		if err != nil {
			return fmt.Errorf("jetstream: replay fetch: %w", err)
		}
		got := 0
		for msg := range batch.Messages() {
			got++
			md, err := msg.Metadata()
			if err != nil {
				return fmt.Errorf("jetstream: replay message: %w", err)
			}
			if md.Sequence.Consumer != dseq+1 {
				return fmt.Errorf("jetstream: replay of %q: %w", r.stream, errDeliveryGap)
			}
			dseq = md.Sequence.Consumer
			if md.Sequence.Stream > upto {
				return nil
			}
			m := Message{Seq: md.Sequence.Stream, Subject: msg.Subject(), Data: msg.Data()}
			if header != "" {
				m.EventType = msg.Headers().Get(header)
			}
			if err := visit(m); err != nil {
				return err
			}
			if md.Sequence.Stream == upto {
				return nil
			}
			remaining = md.NumPending
		}
		if err := batch.Error(); err != nil {
			return fmt.Errorf("jetstream: replay fetch: %w", err)
		}
		if got > 0 {
			empty = 0
			continue
		}
		// Nothing came although messages were pending: they expired or were
		// deleted meanwhile (the consumer then has nothing pending), or the
		// server is very slow.
		info, err := r.cons.Info(ctx)
		if err != nil {
			return fmt.Errorf("jetstream: replay consumer: %w", err)
		}
		if empty++; empty > replayEmptyRetries && info.NumPending > 0 {
			return fmt.Errorf("jetstream: replay of %q stalled with %d messages pending", r.stream, info.NumPending)
		}
		remaining = info.NumPending
	}
	return nil
}

// LastN calls fn, in order, for the n most recent events matching
// req.Filters with seq <= req.Upto (req.After is ignored). It finds where
// they start by probing windows that double backwards from Upto, counting
// matches with the consumers' pending counts, then reads the last window,
// keeping only its last n events.
func (c *Conn) LastN(ctx context.Context, req ReplayRequest, n int, fn func(Message) error) error {
	if n <= 0 {
		return nil
	}
	release, err := c.acquireReplay(ctx)
	if err != nil {
		return err
	}
	defer release()

	state, err := c.StreamState(ctx, req.Stream)
	if err != nil {
		return err
	}
	end := min(req.Upto, state.LastSeq)
	first := max(state.FirstSeq, 1)
	if end < first {
		return nil
	}

	// Matches after end also count in a consumer's pending; subtract them.
	var after uint64
	if end < state.LastSeq {
		r, err := c.openReader(ctx, req.Stream, req.Filters, end+1)
		if err != nil {
			return err
		}
		after = r.pending
		r.drop()
	}

	want := uint64(n)
	span := want
	for {
		start := first
		if end-first+1 > span {
			start = end - span + 1
		}
		// Once the window reaches the head of the stream there is nothing
		// older to look at (even if the head moved on meanwhile).
		atHead := start == first
		r, err := c.openReader(ctx, req.Stream, req.Filters, start)
		if err != nil {
			return err
		}
		count := r.pending - min(after, r.pending)
		if count < want && !atHead {
			r.drop()
			span = grow(span, count, want)
			continue
		}
		last := newLastN(n)
		err = r.read(ctx, end, req.EventHeader, func(m Message) error { last.add(m); return nil })
		r.drop()
		if err != nil {
			return err
		}
		// Messages published while probing inflate the counts; if the window
		// turned out short, widen it and read again.
		if last.len() < n && !atHead {
			span = grow(span, uint64(last.len()), want)
			continue
		}
		return last.each(fn)
	}
}

// grow widens a probe window that held count of the want matches needed:
// at least doubling, more when matches are sparse.
func grow(span, count, want uint64) uint64 {
	factor := uint64(2)
	if count == 0 {
		factor = 8
	} else if f := (want + count - 1) / count * 5 / 4; f > factor {
		factor = f
	}
	if span > ^uint64(0)/factor {
		return ^uint64(0)
	}
	return span * factor
}

// lastN keeps the n most recent messages added, in a ring.
type lastN struct {
	n    int
	buf  []Message
	head int // oldest message once the ring is full
}

func newLastN(n int) *lastN { return &lastN{n: n, buf: make([]Message, 0, min(n, 1024))} }

func (l *lastN) add(m Message) {
	if len(l.buf) < l.n {
		l.buf = append(l.buf, m)
		return
	}
	l.buf[l.head] = m
	l.head = (l.head + 1) % l.n
}

func (l *lastN) len() int { return len(l.buf) }

func (l *lastN) each(fn func(Message) error) error {
	for i := range l.buf {
		if err := fn(l.buf[(l.head+i)%len(l.buf)]); err != nil {
			return err
		}
	}
	return nil
}
