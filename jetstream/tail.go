package jetstream

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	natsjs "github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
)

// Sink receives the stream's events from a tail. *hub.Hub satisfies it.
// Calls never overlap, but they may come from different goroutines: each
// consumer the tail builds delivers on its own.
type Sink interface {
	Position() (epoch string, last uint64)
	Begin(epoch string, lastSeq uint64)
	Publish(seq uint64, subject, eventType string, data []byte)
}

// TailConfig says which stream to follow and which message header carries
// the SSE event type.
type TailConfig struct {
	Stream      StreamConfig
	EventHeader string
}

const (
	tailCheckEvery     = 5 * time.Second // how often the stream's incarnation is checked
	tailRequestTimeout = 10 * time.Second
	tailHeartbeat      = 5 * time.Second // a silent consumer is noticed after twice this
	tailInactive       = time.Minute     // server drops a consumer we failed to delete
	tailMinBackoff     = 250 * time.Millisecond
	tailMaxBackoff     = 15 * time.Second
	tailHealthyAfter   = 30 * time.Second // a run this long resets the backoff
	tailStopTimeout    = 5 * time.Second
)

// Reasons a tail run ends and restarts.
var (
	errStreamRecreated = errors.New("stream was deleted and created again")
	errHistoryExpired  = errors.New("events expired before the tail read them")
	errDeliveryGap     = errors.New("consumer skipped deliveries")
	errConnectionLost  = errors.New("connection to NATS was lost")
)

// Tail feeds sink with every message of the stream until ctx is done or the
// connection is closed. It is an ordered consumer run by hand: one
// ephemeral consumer at a time, starting at a known sequence (never "deliver
// new"), rebuilt from the last sequence delivered whenever anything goes
// wrong (server restart, reconnect, skipped delivery, missed heartbeats,
// deleted consumer). Each rebuild first checks the stream's incarnation and
// first sequence, and calls sink.Begin to restart the sink when the stream
// was recreated or the events after the sink's position are gone.
//
// When Tail returns, sink is no longer called.
func (c *Conn) Tail(ctx context.Context, cfg TailConfig, sink Sink) {
	t := &tail{conn: c, cfg: cfg, sink: sink, log: c.log.With(zap.String("stream", cfg.Stream.Name))}
	t.loop(ctx)
}

type tail struct {
	conn *Conn
	cfg  TailConfig
	sink Sink
	log  *zap.Logger

	// The last message given to the sink (or the stream's end at a restart)
	// and its timestamp, kept across runs to judge a gap at the next begin.
	lastSeq  uint64
	lastRead time.Time
}

func (t *tail) loop(ctx context.Context) {
	backoff := tailMinBackoff
	for {
		connEpoch, err := t.conn.waitConnected(ctx)
		if err != nil {
			if ctx.Err() == nil {
				t.log.Warn("tail stopped: NATS connection closed")
			}
			return
		}
		began := time.Now()
		err = t.run(ctx, connEpoch)
		if ctx.Err() != nil {
			t.log.Info("tail stopped")
			return
		}
		if time.Since(began) >= tailHealthyAfter {
			backoff = tailMinBackoff
		}
		wait := jitter(backoff)
		t.log.Warn("tail interrupted, restarting", zap.Error(err), zap.Duration("retry_in", wait))
		if !sleepCtx(ctx, wait) {
			t.log.Info("tail stopped")
			return
		}
		backoff = min(2*backoff, tailMaxBackoff)
	}
}

// run follows the stream with one consumer until something goes wrong; the
// error says what.
func (t *tail) run(ctx context.Context, connEpoch uint64) error {
	name := t.cfg.Stream.Name
	rctx, cancel := context.WithTimeout(ctx, tailRequestTimeout)
	state, err := t.conn.ensureStream(rctx, t.cfg.Stream)
	cancel()
	if errors.Is(err, errSubjectsNotAdded) {
		err = nil // logged by ensureStream; the stream works for what it has
	}
	if err != nil {
		return err
	}
	start := t.begin(state)

	rctx, cancel = context.WithTimeout(ctx, tailRequestTimeout)
	defer cancel()
	cons, err := t.conn.js.CreateConsumer(rctx, name, natsjs.ConsumerConfig{
		Description:       "caddy-sse live tail",
		DeliverPolicy:     natsjs.DeliverByStartSequencePolicy,
		OptStartSeq:       start,
		AckPolicy:         natsjs.AckNonePolicy,
		InactiveThreshold: tailInactive,
		MemoryStorage:     true,
		Replicas:          1,
	})
	if err != nil {
		return fmt.Errorf("create consumer: %w", err)
	}
	defer t.conn.dropConsumer(name, cons.CachedInfo().Name)

	// The stream may have been recreated between reading its state and
	// creating the consumer: a consumer on the new stream must not feed
	// events under the old epoch.
	if now, err := t.conn.StreamState(rctx, name); err != nil {
		return err
	} else if now.Epoch != state.Epoch {
		return errStreamRecreated
	}

	h := &tailHandler{tail: t, ctx: ctx, epoch: state.Epoch, last: start - 1, lastRead: t.lastReadAt(start - 1), failed: make(chan error, 1)}
	defer h.remember()
	cc, err := cons.Consume(h.handle,
		natsjs.ConsumeErrHandler(func(_ natsjs.ConsumeContext, err error) { h.fail(err) }),
		natsjs.PullHeartbeat(tailHeartbeat))
	if err != nil {
		return fmt.Errorf("consume: %w", err)
	}
	defer h.stop(cc)
	t.log.Info("tail running", zap.String("epoch", state.Epoch), zap.Uint64("start_seq", start))

	check := time.NewTimer(jitter(tailCheckEvery))
	defer check.Stop()
	for {
		changed := t.conn.changes()
		if t.conn.epoch.Load() != connEpoch {
			return errConnectionLost
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-h.failed:
			return err
		case <-changed:
		case <-check.C:
			cctx, cancel := context.WithTimeout(ctx, tailRequestTimeout)
			now, err := t.conn.StreamState(cctx, name)
			cancel()
			switch {
			case errors.Is(err, ErrNoStream):
				return err
			case err != nil:
				// Transient; real trouble also shows up as missed heartbeats
				// or a connection change.
				t.log.Debug("stream check failed", zap.Error(err))
			case now.Epoch != state.Epoch:
				return errStreamRecreated
			}
			check.Reset(jitter(tailCheckEvery))
		}
	}
}

// begin compares the sink's position with the stream and returns the first
// sequence to read. The sink resumes only if it is in the same incarnation
// and no history after its position is lost (a position behind the first
// sequence of a KV-style stream is a resume: what it missed was superseded);
// otherwise it starts over at the end of the stream (clients reconnect and
// replay or get a reset).
func (t *tail) begin(state StreamState) uint64 {
	epoch, last := t.sink.Position()
	fields := []zap.Field{zap.String("epoch", state.Epoch), zap.Uint64("first_seq", state.FirstSeq), zap.Uint64("last_seq", state.LastSeq), zap.Uint64("position", last)}
	switch {
	case epoch == state.Epoch && last <= state.LastSeq && !historyLost(state, last, t.lastReadAt(last), time.Now()):
		t.sink.Begin(epoch, last) // same epoch and position: a resume, nothing is reset
		return last + 1
	case epoch == "":
		t.log.Info("tail starting at the end of the stream", fields...)
	case epoch != state.Epoch:
		t.log.Warn("stream was recreated; restarting from its end", append(fields, zap.String("old_epoch", epoch))...)
	case last > state.LastSeq:
		t.log.Warn("stream ends before the last event seen (messages lost on the server?); restarting from its end", fields...)
	default:
		t.log.Warn("events after the last one seen have expired; restarting from the end of the stream", fields...)
	}
	t.sink.Begin(state.Epoch, state.LastSeq)
	t.lastSeq, t.lastRead = state.LastSeq, state.LastTime
	return state.LastSeq + 1
}

// lastReadAt is the timestamp of the message at seq if the tail knows it,
// else zero (historyLost then falls back to the stream's creation time).
func (t *tail) lastReadAt(seq uint64) time.Time {
	if seq == t.lastSeq {
		return t.lastRead
	}
	return time.Time{}
}

// tailHandler receives the consumer's messages and errors.
type tailHandler struct {
	tail  *tail
	ctx   context.Context
	epoch string

	mu       sync.Mutex // held while calling the sink
	stopped  bool
	last     uint64    // stream sequence of the last message given to the sink
	lastRead time.Time // its timestamp
	dseq     uint64    // consumer delivery sequence of the last message seen
	failed   chan error
}

// remember hands the handler's position to the tail for the next run.
func (h *tailHandler) remember() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.tail.lastSeq, h.tail.lastRead = h.last, h.lastRead
}

func (h *tailHandler) handle(msg natsjs.Msg) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.stopped {
		return
	}
	md, err := msg.Metadata()
	if err != nil {
		h.failLocked(err)
		return
	}
	// With AckNone a message lost in flight is never redelivered; a jump in
	// the delivery sequence shows it, and the rebuild reads it again.
	if md.Sequence.Consumer != h.dseq+1 {
		h.failLocked(fmt.Errorf("%w: expected delivery %d, got %d", errDeliveryGap, h.dseq+1, md.Sequence.Consumer))
		return
	}
	h.dseq = md.Sequence.Consumer
	seq := md.Sequence.Stream
	if seq <= h.last {
		return
	}
	if seq != h.last+1 {
		if err := h.checkGap(); err != nil {
			h.failLocked(err)
			return
		}
	}
	var eventType string
	if name := h.tail.cfg.EventHeader; name != "" {
		eventType = msg.Headers().Get(name)
	}
	h.tail.sink.Publish(seq, msg.Subject(), eventType, msg.Data())
	h.last, h.lastRead = seq, md.Timestamp
}

// checkGap decides whether skipped sequences are harmless (deleted or
// superseded messages, see historyLost) or mean lost history: JetStream
// silently moves past expired messages, and a recreated stream restarts its
// sequences.
func (h *tailHandler) checkGap() error {
	ctx, cancel := context.WithTimeout(h.ctx, tailRequestTimeout)
	defer cancel()
	st, err := h.tail.conn.StreamState(ctx, h.tail.cfg.Stream.Name)
	switch {
	case err != nil:
		return err
	case st.Epoch != h.epoch:
		return errStreamRecreated
	case historyLost(st, h.last, h.lastRead, time.Now()):
		return errHistoryExpired
	}
	return nil
}

func (h *tailHandler) fail(err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.failLocked(err)
}

func (h *tailHandler) failLocked(err error) {
	if h.stopped {
		return
	}
	h.stopped = true
	h.failed <- err // cap 1, and only the first failure gets here
}

// stop ends consuming; once it returns the sink is not called again.
func (h *tailHandler) stop(cc natsjs.ConsumeContext) {
	h.mu.Lock()
	h.stopped = true
	h.mu.Unlock()
	cc.Stop()
	// Wait for the library's goroutines so none outlive the tail.
	select {
	case <-cc.Closed():
	case <-time.After(tailStopTimeout):
	}
}

// dropConsumer deletes a consumer we are done with. Best effort: if it
// fails, the server removes the consumer after its inactivity threshold.
func (c *Conn) dropConsumer(stream, consumer string) {
	if !c.nc.IsConnected() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.js.DeleteConsumer(ctx, stream, consumer); err != nil &&
		!errors.Is(err, natsjs.ErrConsumerNotFound) && !errors.Is(err, natsjs.ErrStreamNotFound) {
		c.log.Debug("could not delete consumer", zap.String("stream", stream), zap.String("consumer", consumer), zap.Error(err))
	}
}

// jitter spreads d over [d/2, d) so that nodes restarted together do not
// retry in lockstep.
func jitter(d time.Duration) time.Duration {
	if d < 2 {
		return d
	}
	return d/2 + rand.N(d/2)
}

// sleepCtx waits for d; false when ctx ended first.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-ctx.Done():
		return false
	}
}
