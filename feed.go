package caddysse

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/caddy-sse/caddy-sse/eventid"
	"github.com/caddy-sse/caddy-sse/hub"
	"github.com/caddy-sse/caddy-sse/jetstream"
	"github.com/caddy-sse/caddy-sse/session"
	"github.com/caddy-sse/caddy-sse/sse"
)

// feed is one stream tailed once per process, fanned out by its hub. Routes that share a NATS server, a stream
// and an event header share one feed.
type feed struct {
	key    string
	conn   *sharedConn
	hub    *hub.Hub
	tail   jetstream.TailConfig
	logger *zap.Logger

	mu       sync.Mutex
	subjects []string // subjects the stream must capture, from every route that uses this feed
	started  bool

	once   sync.Once
	cancel context.CancelFunc
	done   chan struct{}

	state tailState // what the tail last reported, for the admin view
}

// tailState is the tail's last report: following the stream, or interrupted and why.
type tailState struct {
	mu      sync.Mutex
	running bool
	lastErr string
	since   time.Time
}

func (s *tailState) report(running bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.running, s.since = running, time.Now()
	if err != nil {
		s.lastErr = err.Error()
	}
}

func (s *tailState) read() (running bool, lastErr string, since time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.running, s.lastErr, s.since
}

// feedKey includes the stream options, so a reload that changes them builds a new feed, which checks the
// existing stream against them (see jetstream.Conn.EnsureStream).
func feedKey(conn string, stream jetstream.StreamConfig, eventHeader string) string {
	o := optionsOf(stream)
	b, _ := json.Marshal([]any{conn, stream.Name, eventHeader, o.replicas, o.maxAge, o.maxBytes, o.memory})
	return string(b)
}

func acquireFeed(n *NATSConfig, app *App, stream jetstream.StreamConfig, eventHeader string) (*feed, error) {
	ck := connKey(n)
	key := feedKey(ck, stream, eventHeader)
	val, loaded, err := feedPool.LoadOrNew(key, func() (caddy.Destructor, error) {
		conn, err := acquireConn(n, app)
		if err != nil {
			return nil, err
		}
		f := &feed{
			key:      key,
			conn:     conn,
			hub:      hub.New(hub.Config{}),
			tail:     jetstream.TailConfig{Stream: stream, EventHeader: eventHeader},
			subjects: stream.Subjects,
			logger:   caddy.Log().Named("sse.feed").With(zap.String("stream", stream.Name)),
			done:     make(chan struct{}),
		}
		f.tail.Report = f.state.report
		feeds.add(f)
		return f, nil
	})
	if err != nil {
		return nil, err
	}
	f := val.(*feed)
	if loaded {
		f.want(stream.Subjects)
	}
	return f, nil
}

// want records subjects a newly provisioned route needs; if the feed is running, the stream is updated to
// capture them (streams created by caddy-sse only; see jetstream.Conn.EnsureStream).
func (f *feed) want(subjects []string) {
	f.mu.Lock()
	merged, changed := mergeSubjects(f.subjects, subjects)
	f.subjects = merged
	started := f.started
	f.mu.Unlock()
	if !changed || !started {
		return // a feed that has not started yet creates the stream with every subject
	}
	conn, err := f.conn.get()
	if err != nil {
		return
	}
	cfg := f.streamConfig()
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := conn.EnsureStream(ctx, cfg); err != nil {
			f.logger.Warn("could not add subjects to the stream; they are added when the feed next restarts",
				zap.Strings("subjects", cfg.Subjects), zap.Error(err))
		}
	}()
}

func (f *feed) streamConfig() jetstream.StreamConfig {
	f.mu.Lock()
	defer f.mu.Unlock()
	cfg := f.tail.Stream
	cfg.Subjects = append([]string(nil), f.subjects...)
	return cfg
}

// start begins tailing; later calls do nothing. It fails only for what no retry can mend (an unreadable
// credentials file, an embedded server that cannot listen): NATS being unreachable is retried in the background.
func (f *feed) start() error {
	var startErr error
	f.once.Do(func() {
		conn, err := f.conn.get()
		if err != nil {
			startErr = fmt.Errorf("sse: stream %q: %w", f.tail.Stream.Name, err)
			close(f.done)
			return
		}
		ctx, cancel := context.WithCancel(context.Background())
		f.cancel = cancel
		tail := f.tail
		f.mu.Lock()
		f.started = true // under the same lock as the subjects read, so want never misses a subject
		tail.Stream.Subjects = append([]string(nil), f.subjects...)
		f.mu.Unlock()
		go func() {
			defer close(f.done)
			conn.Tail(ctx, tail, f.hub)
		}()
		f.logger.Info("feed started", zap.Strings("subjects", tail.Stream.Subjects))
	})
	return startErr
}

// natsConn is the connection for replays and publishing; errNoNATS when the feed could not connect.
func (f *feed) natsConn() (*jetstream.Conn, error) {
	c, err := f.conn.get()
	if c == nil {
		return nil, fmt.Errorf("%w: %w", errNoNATS, err)
	}
	return c, nil
}

// published says where a published event landed: its stream, sequence and the incarnation that stored it.
type published struct {
	stream string
	seq    uint64
	epoch  string // empty when stream is not the feed's
}

// publish stores one event on subject, with eventType in the feed's event header. The hub's epoch can lag a
// recreated stream by seconds, so the stream is asked before and after: the same incarnation on both sides
// holds the event.
func (f *feed) publish(ctx context.Context, subject, eventType string, data []byte) (published, error) {
	conn, err := f.natsConn()
	if err != nil {
		return published{}, err
	}
	name := f.tail.Stream.Name
	before, err := conn.StreamState(ctx, name)
	if err != nil {
		return published{}, fmt.Errorf("sse: reading stream %q: %w", name, err)
	}
	stream, seq, err := conn.Publish(ctx, subject, f.tail.EventHeader, eventType, data)
	if err != nil {
		return published{}, fmt.Errorf("sse: publishing to %q: %w", subject, err)
	}
	pub := published{stream: stream, seq: seq}
	if stream != name {
		return pub, nil
	}
	after, err := conn.StreamState(ctx, name)
	if err != nil {
		return published{}, fmt.Errorf("sse: reading stream %q: %w", name, err)
	}
	if after.Epoch != before.Epoch {
		return published{}, fmt.Errorf("sse: stream %q was recreated while publishing; the event (seq %d) may be lost, publish it again", name, seq)
	}
	pub.epoch = after.Epoch
	return pub, nil
}

func (f *feed) Destruct() error {
	f.once.Do(func() { close(f.done) })
	if f.cancel != nil {
		f.cancel()
	}
	<-f.done
	f.hub.Close()
	feeds.retire(f)
	_, err := connPool.Delete(f.conn.key)
	f.logger.Info("feed stopped")
	return err
}

// errNoNATS: JetStream is needed (replay, publish) but cannot be reached. A session ends and the client keeps
// its Last-Event-ID and retries.
var errNoNATS = errors.New("sse: NATS connection unavailable")

// The feed is the sessions' only way to events (session.Feed): live from the hub, history from the hub's memory
// when it still holds the range, else from JetStream.
var _ session.Feed = (*feed)(nil)

func (f *feed) Ready() <-chan struct{} { return f.hub.Ready() }

func (f *feed) Subscribe(patterns []string, queueSize int) (*hub.Subscription, uint64, error) {
	return f.hub.Subscribe(patterns, queueSize)
}

// Replay serves (req.After, req.Upto] from memory when the hub still holds all of it, else from JetStream.
func (f *feed) Replay(ctx context.Context, req session.ReplayRequest, fn func(session.Batch) error) (session.Source, error) {
	if req.FromOldest {
		state, err := f.streamState(ctx, req.Epoch)
		if err != nil {
			return "", err
		}
		req.After = max(state.FirstSeq, 1) - 1
	}
	if req.After >= req.Upto {
		return "", nil
	}
	events, covered, overLimit := f.hub.Since(nil, req.Patterns, req.After, req.Upto, req.Limit)
	if covered {
		if overLimit {
			return session.SourceMemory, session.Reset(session.ReasonTooManyEvents, nil)
		}
		if len(events) == 0 {
			return session.SourceMemory, nil
		}
		return session.SourceMemory, fn(session.Batch{Epoch: req.Epoch, Events: events})
	}
	conn, err := f.natsConn()
	if err != nil {
		return session.SourceStorage, err
	}
	// Concurrent replays of one range share one JetStream read (see jetstream.Conn.Replay), which encodes each
	// frame once for all of them.
	jreq := f.replayRequest(req)
	jreq.Prepare = func(m jetstream.Message) any { return storedEvent(req.Epoch, m) }
	err = conn.Replay(ctx, jreq, storageBatches(req.Epoch, fn))
	return session.SourceStorage, resetFor(err)
}

// LastN serves the n most recent events up to req.Upto from memory when the hub holds them, else from JetStream.
func (f *feed) LastN(ctx context.Context, req session.ReplayRequest, n int, fn func(session.Batch) error) error {
	events, covered := f.hub.Last(nil, req.Patterns, n, req.Upto)
	if covered {
		if len(events) == 0 {
			return nil
		}
		return fn(session.Batch{Epoch: req.Epoch, Events: events})
	}
	conn, err := f.natsConn()
	if err != nil {
		return err
	}
	req.After = 0
	return resetFor(conn.LastN(ctx, f.replayRequest(req), n, storageBatches(req.Epoch, fn)))
}

// CheckAhead asks the stream whether it holds seq in epoch: a client may have seen an event on a node that is
// ahead of this one.
func (f *feed) CheckAhead(ctx context.Context, epoch string, seq uint64) error {
	state, err := f.streamState(ctx, epoch)
	if err != nil {
		return err
	}
	if seq > state.LastSeq {
		return session.Reset(session.ReasonIDBeyondEnd, nil)
	}
	return nil
}

// streamState asks JetStream where the stream stands: errNoNATS while it cannot be reached, a stream-changed
// reset when it is no longer the incarnation epoch.
func (f *feed) streamState(ctx context.Context, epoch string) (jetstream.StreamState, error) {
	conn, err := f.natsConn()
	if err != nil {
		return jetstream.StreamState{}, err
	}
	state, err := conn.StreamState(ctx, f.tail.Stream.Name)
	if err != nil {
		return state, fmt.Errorf("%w: %w", errNoNATS, err)
	}
	if state.Epoch != epoch {
		return state, session.Reset(session.ReasonStreamChanged, nil)
	}
	return state, nil
}

func (f *feed) replayRequest(req session.ReplayRequest) jetstream.ReplayRequest {
	return jetstream.ReplayRequest{
		Stream:      f.tail.Stream.Name,
		Epoch:       req.Epoch,
		Filters:     req.Patterns,
		After:       req.After,
		Upto:        req.Upto,
		Limit:       req.Limit,
		EventHeader: f.tail.EventHeader,
	}
}

// storedEvent encodes a stored event's frame with an id of epoch, as the session would for a stored message.
func storedEvent(epoch string, m jetstream.Message) *hub.Event {
	return &hub.Event{Seq: m.Seq, Subject: m.Subject,
		Frame: sse.AppendEvent(nil, eventid.Format(epoch, m.Seq), m.EventType, m.Data)}
}

// storageBatches hands JetStream's batches to a session. JetStream checked that it read epoch, the
// incarnation the session's ids belong to, so the ids are written with it. Events prepared by storedEvent go
// as they are; others are encoded by the session.
func storageBatches(epoch string, fn func(session.Batch) error) func([]jetstream.Message) error {
	var msgs []session.Message
	var events []*hub.Event
	return func(batch []jetstream.Message) error {
		if len(batch) > 0 && batch[0].Prepared != nil {
			events = events[:0]
			for _, m := range batch {
				events = append(events, m.Prepared.(*hub.Event))
			}
			err := fn(session.Batch{Epoch: epoch, Events: events})
			clear(events) // fn returns once the session wrote them
			return err
		}
		msgs = msgs[:0]
		for _, m := range batch {
			msgs = append(msgs, session.Message{Seq: m.Seq, Type: m.EventType, Data: m.Data})
		}
		err := fn(session.Batch{Epoch: epoch, Messages: msgs})
		clear(msgs) // fn returns once the session wrote them
		return err
	}
}

// resetFor turns JetStream's answers about history into the session's reset reasons.
func resetFor(err error) error {
	switch {
	case errors.Is(err, jetstream.ErrHistoryGone):
		return session.Reset(session.ReasonHistoryExpired, err)
	case errors.Is(err, jetstream.ErrTooMany):
		return session.Reset(session.ReasonTooManyEvents, err)
	case errors.Is(err, jetstream.ErrBeyondEnd):
		return session.Reset(session.ReasonIDBeyondEnd, err)
	case errors.Is(err, jetstream.ErrStreamChanged):
		return session.Reset(session.ReasonStreamChanged, err)
	}
	return err
}
