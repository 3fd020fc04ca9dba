package jetstream

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/caddy-sse/caddy-sse/subject"
	natsjs "github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
)

// rangeReader reads the events matching req.Filters in (req.After,
// req.Upto], a batch at a time, with an ephemeral consumer that it rebuilds
// from the next wanted sequence whenever the consumer cannot be trusted
// (messages lost in flight, a consumer deleted while the caller was slow).
// With AckNone the server counts lost messages as delivered and silently
// skips messages that limits removed ahead of the consumer, so the reader
// checks delivery sequences, stream-sequence jumps and the end of the range
// itself.
type rangeReader struct {
	conn *Conn
	req  ReplayRequest
	// strictHead: the stream's head moving past the next wanted sequence is
	// lost history (a resume). LastN reads a recency window instead, where
	// old events falling off the head change nothing it promised.
	strictHead bool

	checked  bool // the range was checked against the stream (first open)
	cons     natsjs.Consumer
	dseq     uint64    // delivery sequence of the last message received from cons
	pending  uint64    // matching messages cons still has, as of the last message or info
	next     uint64    // first stream sequence not yet read
	lastTime time.Time // when the last message read was stored; zero before the first
	stalls   int       // rebuilds and empty fetches in a row without progress
}

// readBatch returns the next events of the range; done once the range is
// complete. It holds a replay slot only while it talks to JetStream.
func (r *rangeReader) readBatch(ctx context.Context) (batch []Message, done bool, err error) {
	if err := ctx.Err(); err != nil {
		return nil, false, err
	}
	release, err := r.conn.acquireReplay(ctx)
	if err != nil {
		return nil, false, err
	}
	defer release()
	if err := r.conn.connected(); err != nil {
		return nil, false, err
	}
	if r.cons == nil {
		if done, err := r.open(ctx); err != nil || done {
			return nil, done, err
		}
	}
	if r.pending == 0 {
		return nil, true, r.checkEnd(ctx)
	}
	return r.fetch(ctx)
}

// open checks the stream and creates a consumer starting at r.next; done
// when there is nothing left to read.
func (r *rangeReader) open(ctx context.Context) (done bool, err error) {
	state, err := r.conn.StreamState(ctx, r.req.Stream)
	if err != nil {
		return false, err
	}
	if r.req.Epoch != "" && state.Epoch != r.req.Epoch {
		return false, ErrStreamChanged
	}
	first := !r.checked
	if first {
		r.checked = true
		if r.req.After > state.LastSeq {
			return false, ErrBeyondEnd
		}
	}
	if r.next > r.req.Upto {
		return true, nil
	}
	if r.headPassed(state) {
		return false, ErrHistoryGone
	}
	cons, err := r.conn.createReader(ctx, r.req.Stream, r.req.Filters, r.next)
	if err != nil {
		return false, err
	}
	// The stream may have been recreated between reading its state and
	// creating the consumer, and the server starts a consumer at the first
	// stored message when the one asked for is gone: both are checked on the
	// state read after the consumer exists.
	after, err := r.conn.StreamState(ctx, r.req.Stream)
	if err == nil && after.Epoch != state.Epoch {
		err = ErrStreamChanged
	}
	info := cons.CachedInfo()
	if err == nil && info.Delivered.Stream+1 > r.next && r.headPassed(after) {
		err = ErrHistoryGone
	}
	if err == nil && first && r.req.Limit > 0 && info.NumPending > uint64(r.req.Limit) {
		err = ErrTooMany
	}
	if err != nil {
		r.conn.dropConsumer(r.req.Stream, info.Name)
		return false, err
	}
	r.cons, r.dseq, r.pending = cons, 0, info.NumPending
	return false, nil
}

// fetch reads one batch from the consumer.
func (r *rangeReader) fetch(ctx context.Context) ([]Message, bool, error) {
	// A fetch that expires on the server before the client stops listening
	// cannot lose messages in flight, which a no-wait fetch timing out on a
	// busy machine could.
	msgs, err := r.cons.Fetch(int(min(r.pending, replayBatch)), natsjs.FetchMaxWait(replayFetchWait))
	if err != nil {
		return nil, false, r.rebuild(fmt.Errorf("jetstream: replay fetch: %w", err))
	}
	var (
		out        []Message
		done, lost bool
		got        int
		jumpAt     = -1 // index in out of the first event after a sequence jump
		jumpAfter  uint64
		jumpTime   time.Time
	)
	for msg := range msgs.Messages() {
		got++
		if done || lost {
			continue // drain the batch
		}
		md, err := msg.Metadata()
		if err != nil {
			return out, false, fmt.Errorf("jetstream: replay message: %w", err)
		}
		if md.Sequence.Consumer != r.dseq+1 {
			lost = true // in flight: the rebuild reads them again
			continue
		}
		r.dseq, r.pending = md.Sequence.Consumer, md.NumPending
		seq := md.Sequence.Stream
		if seq < r.next {
			continue
		}
		if seq > r.next && jumpAt < 0 {
			jumpAt, jumpAfter, jumpTime = len(out), r.next-1, r.lastTime
		}
		if seq > r.req.Upto {
			done = true
			continue
		}
		m := Message{Seq: seq, Subject: msg.Subject(), Data: msg.Data()}
		if r.req.EventHeader != "" {
			m.EventType = msg.Headers().Get(r.req.EventHeader)
		}
		out = append(out, m)
		r.next, r.lastTime = seq+1, md.Timestamp
		done = seq == r.req.Upto
	}
	if err := msgs.Error(); err != nil && !done {
		lost = true
		r.conn.log.Debug("replay fetch failed; rebuilding the consumer", zap.String("stream", r.req.Stream), zap.Error(err))
	}
	if got == 0 && !lost {
		// Nothing came. Either the server sent what it had and some of it
		// never arrived (delivered count ahead of what we received), or
		// nothing is pending any more, or the server is slow.
		info, err := r.cons.Info(ctx)
		if err != nil {
			return nil, false, r.rebuild(fmt.Errorf("jetstream: replay consumer: %w", err))
		}
		if info.Delivered.Consumer > r.dseq {
			lost = true
		} else if r.pending = info.NumPending; r.pending > 0 {
			if r.stalls++; r.stalls > replayEmptyRetries {
				return nil, false, fmt.Errorf("jetstream: replay of %q stalled with %d messages pending", r.req.Stream, r.pending)
			}
			return nil, false, nil
		}
	}
	if len(out) > 0 {
		r.stalls = 0
	}
	if jumpAt >= 0 {
		if err := r.checkJump(ctx, jumpAfter, jumpTime); err != nil {
			return out[:jumpAt], false, err
		}
	}
	if lost && !done {
		return out, false, r.rebuild(errDeliveryGap)
	}
	if !done && r.pending == 0 {
		return out, true, r.checkEnd(ctx)
	}
	return out, done, nil
}

// checkJump decides whether sequences skipped after `after` were other
// subjects or deleted messages (harmless) or history that limits removed
// before the reader got to it.
func (r *rangeReader) checkJump(ctx context.Context, after uint64, lastTime time.Time) error {
	state, err := r.conn.StreamState(ctx, r.req.Stream)
	switch {
	case err != nil:
		return err
	case r.req.Epoch != "" && state.Epoch != r.req.Epoch:
		return ErrStreamChanged
	case r.strictHead && state.FirstSeq > after+1 && historyLost(state, after, lastTime, time.Now()):
		return ErrHistoryGone
	}
	return nil
}

// checkEnd is called when the consumer has nothing more pending before the
// range's end: the rest of the range held no matching events, unless the
// head moved past the reader and took them.
func (r *rangeReader) checkEnd(ctx context.Context) error {
	if r.next > r.req.Upto {
		return nil
	}
	return r.checkJump(ctx, r.next-1, r.lastTime)
}

// headPassed: the stream no longer starts at or before the next wanted
// sequence, and that lost events the range needs.
func (r *rangeReader) headPassed(state StreamState) bool {
	return r.strictHead && state.FirstSeq > r.next && historyLost(state, r.next-1, r.lastTime, time.Now())
}

// rebuild drops the consumer so that the next read opens a new one at
// r.next; cause is returned once rebuilds stop making progress.
func (r *rangeReader) rebuild(cause error) error {
	r.dropAsync()
	if r.stalls++; r.stalls > replayReopens {
		return cause
	}
	return nil
}

func (r *rangeReader) dropAsync() {
	if r.cons == nil {
		return
	}
	name := r.cons.CachedInfo().Name
	r.cons = nil
	go r.conn.dropConsumer(r.req.Stream, name)
}

// close deletes the consumer, also when the caller's context is done.
func (r *rangeReader) close() {
	if r.cons != nil {
		r.conn.dropConsumer(r.req.Stream, r.cons.CachedInfo().Name)
		r.cons = nil
	}
}

func (c *Conn) createReader(ctx context.Context, stream string, filters []string, start uint64) (natsjs.Consumer, error) {
	cfg := natsjs.ConsumerConfig{
		Description:       "caddy-sse replay",
		DeliverPolicy:     natsjs.DeliverByStartSequencePolicy,
		OptStartSeq:       start,
		AckPolicy:         natsjs.AckNonePolicy,
		InactiveThreshold: replayInactive,
		MemoryStorage:     true,
		Replicas:          1,
	}
	if f := subject.Minimal(filters); len(f) == 1 {
		cfg.FilterSubject = f[0]
	} else {
		cfg.FilterSubjects = f
	}
	c.readersCreated.Add(1)
	cons, err := c.js.CreateConsumer(ctx, stream, cfg)
	if errors.Is(err, natsjs.ErrStreamNotFound) {
		return nil, fmt.Errorf("%w: %q", ErrNoStream, stream)
	}
	if err != nil {
		return nil, fmt.Errorf("jetstream: replay consumer on %q: %w", stream, err)
	}
	return cons, nil
}

// countMatching is how many messages matching filters the stream holds from
// start on.
func (c *Conn) countMatching(ctx context.Context, stream string, filters []string, start uint64) (uint64, error) {
	cons, err := c.createReader(ctx, stream, filters, start)
	if err != nil {
		return 0, err
	}
	info := cons.CachedInfo()
	c.dropConsumer(stream, info.Name)
	return info.NumPending, nil
}
