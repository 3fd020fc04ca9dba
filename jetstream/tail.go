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
//
// Begin (re)starts the sink after lastSeq; when that is not its position,
// the live sequence is broken and the sink resets. Trim says the stream no
// longer holds the events before firstSeq (purged, deleted, expired,
// superseded): the sink drops them from any history it keeps, and nothing
// else changes. The tail calls it whenever it reads the stream's state.
type Sink interface {
	Position() (epoch string, last uint64)
	Begin(epoch string, lastSeq uint64)
	Publish(seq uint64, subject, eventType string, data []byte)
	Trim(firstSeq uint64)
}

// TailConfig says which stream to follow and which message header carries
// the SSE event type.
type TailConfig struct {
	Stream      StreamConfig
	EventHeader string
	// Report, if set, is told when the tail starts following and when it is interrupted (with why), for an
	// operator's view of the feed. It must not block.
	Report func(running bool, err error)
}

const (
	tailCheckEvery = 5 * time.Second // how often the stream's incarnation and first sequence are checked
	// tailHeartbeat: a consumer whose server died is noticed after twice
	// this, about a second (nats.go accepts 500ms to 30s; each heartbeat is
	// one small message from the server while the stream is idle).
	tailHeartbeat    = 500 * time.Millisecond
	tailCheckTimeout = 2 * time.Second // one stream-state request: the periodic check, a gap
	tailInactive     = time.Minute     // server drops a consumer we failed to delete
	tailDropTimeout  = 2 * time.Second // deleting an old consumer, in the background
	tailMinBackoff   = 100 * time.Millisecond
	tailMaxBackoff   = 15 * time.Second
	// tailSteadyAfter: a run that consumed this long before failing met a
	// new incident (a server or leader lost), so the next one starts at once
	// instead of backing off.
	tailSteadyAfter = 5 * time.Second
	tailStopTimeout = 5 * time.Second
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
// Recovery is quick: requests are short attempts retried through a leader
// election, the old consumer is deleted in the background, and a rebuild
// after a run that was healthy does not back off.
//
// When Tail returns, sink is no longer called.
func (c *Conn) Tail(ctx context.Context, cfg TailConfig, sink Sink) {
	t := &tail{conn: c, cfg: cfg, sink: sink, log: c.log.With(zap.String("stream", cfg.Stream.Name))}
	t.loop(ctx)
	t.drops.Wait()
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

	drops sync.WaitGroup // consumers being deleted in the background
}

func (t *tail) loop(ctx context.Context) {
	backoff := tailMinBackoff
	for {
		connGen, err := t.conn.waitConnected(ctx)
		if err != nil {
			if ctx.Err() == nil {
				t.log.Warn("tail stopped: NATS connection closed")
			}
			return
		}
		consumed, err := t.run(ctx, connGen)
		if ctx.Err() != nil {
			t.log.Info("tail stopped")
			return
		}
		if consumed >= tailSteadyAfter || errors.Is(err, errConnectionLost) {
			backoff = tailMinBackoff
		}
		wait := jitter(backoff)
		t.log.Warn("tail interrupted, restarting", zap.Error(err), zap.Duration("retry_in", wait))
		t.report(false, err)
		if !sleepCtx(ctx, wait) {
			t.log.Info("tail stopped")
			return
		}
		backoff = min(2*backoff, tailMaxBackoff)
	}
}

// run follows the stream with one consumer until something goes wrong; the
// error says what, and consumed how long the consumer delivered.
func (t *tail) run(ctx context.Context, connGen uint64) (consumed time.Duration, err error) {
	name := t.cfg.Stream.Name
	r := t.retrier(connGen)
	state, err := retry(ctx, r, func(ctx context.Context) (StreamState, error) {
		state, err := t.conn.ensureStream(ctx, t.cfg.Stream)
		if errors.Is(err, errSubjectsNotAdded) {
			err = nil // logged by ensureStream; the stream works for what it has
		}
		return state, err
	})
	if err != nil {
		return 0, err
	}
	start := t.begin(state)

	cons, err := t.createConsumer(ctx, r, start)
	if err != nil {
		return 0, err
	}
	defer t.dropInBackground(cons.CachedInfo().Name)

	// The stream may have been recreated between reading its state and
	// creating the consumer: a consumer on the new stream must not feed
	// events under the old epoch.
	now, err := retry(ctx, r, func(ctx context.Context) (StreamState, error) { return t.conn.StreamState(ctx, name) })
	if err != nil {
		return 0, err
	}
	if now.Epoch != state.Epoch {
		return 0, errStreamRecreated
	}
	t.sink.Trim(now.FirstSeq) // no consumer delivers yet: calls cannot overlap

	h := &tailHandler{tail: t, ctx: ctx, epoch: state.Epoch, last: start - 1, lastRead: t.lastReadAt(start - 1), state: now, failed: make(chan error, 1)}
	defer h.remember()
	cc, err := cons.Consume(h.handle,
		natsjs.ConsumeErrHandler(func(_ natsjs.ConsumeContext, err error) { h.fail(err) }),
		natsjs.PullHeartbeat(tailHeartbeat))
	if err != nil {
		return 0, fmt.Errorf("consume: %w", err)
	}
	defer h.stop(cc)
	began := time.Now()
	t.log.Info("tail running", zap.String("epoch", state.Epoch), zap.Uint64("start_seq", start))
	t.report(true, nil)
	err = t.follow(ctx, connGen, h, state.Epoch)
	return time.Since(began), err
}

// follow waits while the consumer delivers, checking the stream now and
// then, until the run must end.
func (t *tail) follow(ctx context.Context, connGen uint64, h *tailHandler, epoch string) error {
	check := time.NewTimer(jitter(tailCheckEvery))
	defer check.Stop()
	for {
		changed := t.conn.changes()
		if t.conn.generation.Load() != connGen {
			return errConnectionLost
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-h.failed:
			return err
		case <-changed:
		case <-check.C:
			cctx, cancel := context.WithTimeout(ctx, tailCheckTimeout)
			now, err := t.conn.StreamState(cctx, t.cfg.Stream.Name)
			cancel()
			switch {
			case errors.Is(err, ErrNoStream):
				return err
			case err != nil:
				// Transient; real trouble also shows up as missed heartbeats
				// or a connection change.
				t.log.Debug("stream check failed", zap.Error(err))
			case now.Epoch != epoch:
				return errStreamRecreated
			default:
				h.observe(now)
			}
			check.Reset(jitter(tailCheckEvery))
		}
	}
}

// createConsumer creates the run's consumer, starting at start. It is named
// up front so that attempts are idempotent: overlapping or retried ones
// find the consumer another attempt created instead of leaving it to
// expire.
func (t *tail) createConsumer(ctx context.Context, r retrier, start uint64) (natsjs.Consumer, error) {
	stream := t.cfg.Stream.Name
	cfg := natsjs.ConsumerConfig{
		Name:              fmt.Sprintf("caddy-sse-tail-%016x", rand.Uint64()),
		Description:       "caddy-sse live tail",
		DeliverPolicy:     natsjs.DeliverByStartSequencePolicy,
		OptStartSeq:       start,
		AckPolicy:         natsjs.AckNonePolicy,
		InactiveThreshold: tailInactive,
		MemoryStorage:     true,
		Replicas:          1,
	}
	cons, err := retry(ctx, r, func(ctx context.Context) (natsjs.Consumer, error) {
		cons, err := t.conn.js.CreateConsumer(ctx, stream, cfg)
		if errors.Is(err, natsjs.ErrConsumerExists) {
			cons, err = t.conn.js.Consumer(ctx, stream, cfg.Name)
		}
		return cons, err
	})
	if errors.Is(err, natsjs.ErrStreamNotFound) {
		return nil, fmt.Errorf("%w: %q", ErrNoStream, stream)
	}
	if err != nil {
		return nil, fmt.Errorf("create consumer: %w", err)
	}
	return cons, nil
}

// retrier retries the run's requests through a leader election; it stops
// when the connection changes, since the loop then rebuilds anyway.
func (t *tail) retrier(connGen uint64) retrier {
	return retrier{
		stop: func() error {
			if t.conn.generation.Load() != connGen || !t.conn.nc.IsConnected() {
				return errConnectionLost
			}
			return nil
		},
		onRetry: func(failures int, err error) {
			if failures == 1 {
				t.log.Warn("JetStream not answering, retrying", zap.Error(err))
			} else {
				t.log.Debug("JetStream not answering, retrying", zap.Int("failures", failures), zap.Error(err))
			}
		},
	}
}

// dropInBackground deletes a consumer the tail is done with without making
// the next run wait: its server may be the one that just died, and the
// request would only time out. Tail waits for these before it returns.
func (t *tail) dropInBackground(consumer string) {
	t.drops.Add(1)
	go func() {
		defer t.drops.Done()
		t.conn.dropConsumerWithin(t.cfg.Stream.Name, consumer, tailDropTimeout)
	}()
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
		t.sink.Trim(state.FirstSeq)
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

func (t *tail) report(running bool, err error) {
	if t.cfg.Report != nil {
		t.cfg.Report(running, err)
	}
}
