package session

import (
	"context"
	"errors"
	"math/rand/v2"
	"net/http"
	"time"

	"github.com/caddy-sse/caddy-sse/eventid"
	"github.com/caddy-sse/caddy-sse/hub"
	"github.com/caddy-sse/caddy-sse/sse"
)

// Serve answers one EventSource request: headers and a first comment at once, then the resume point, then live
// events until the client leaves, falls behind, or cfg.Stop ends the session. It returns why the session
// ended; the response has started by then, so the caller must not write a status of its own.
func Serve(ctx context.Context, w http.ResponseWriter, cfg *Config, c *Client) error {
	s := &session{
		cfg:      cfg,
		client:   c,
		ctx:      ctx,
		out:      newWire(w, cfg.WriteTimeout, c),
		stopping: cfg.Stop,
	}
	err := s.open()
	if err == nil {
		err = s.run()
	}
	if s.heartbeat != nil {
		s.heartbeat.Stop()
	}
	if s.lifetime != nil {
		s.lifetime.Stop()
	}
	if errors.Is(err, ErrTakenOver) {
		return err // the writer pool holds it now, with timers of its own; its end is reported there
	}
	if cfg.Hooks.Ended != nil {
		cfg.Hooks.Ended(c, err)
	}
	if c.Ended != nil {
		c.Ended(err)
	}
	return err
}

// session is one open event stream. Everything it writes is written by the goroutine running Serve.
type session struct {
	cfg    *Config
	client *Client
	ctx    context.Context
	out    wire // by value: one allocation less per session

	sub   *hub.Subscription
	epoch string // the stream incarnation of the subscription: every id this session writes belongs to it
	last  uint64 // the handover point: replays end here, the subscription's queue starts after it

	heartbeat  *time.Timer
	heartbeatC <-chan time.Time // nil when heartbeats are off
	lifetime   *time.Timer
	lifetimeC  <-chan time.Time // nil without MaxLifetime
	lifetimeAt time.Time        // when the lifetime timer fires
	stopping   <-chan struct{}  // cfg.Stop until it is seen closed, then nil
	closing    <-chan time.Time // after a reload: when this session ends
	liveBatch  []*hub.Event     // reused for drains
}

// SetHeaders sets the headers of an event stream response.
func SetHeaders(h http.Header) {
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	h.Del("Content-Length")
}

func (s *session) open() error {
	SetHeaders(s.out.w.Header())
	s.out.w.WriteHeader(http.StatusOK)
	// The first comment pushes the headers out through any encoder, and retry: tells the browser how long to
	// wait before it reconnects.
	s.out.scratch = sse.AppendComment(s.out.scratch[:0], "ok")
	s.out.scratch = sse.AppendRetry(s.out.scratch, s.cfg.Retry)
	if s.cfg.ConnectEvent != "" {
		s.out.scratch = sse.AppendEvent(s.out.scratch, "", s.cfg.ConnectEvent, []byte("{}"))
	}
	if err := s.out.writeNow(s.out.scratch); err != nil {
		return err
	}
	if d := s.cfg.MaxLifetime; d > 0 {
		jittered := time.Duration(float64(d) * (1 - lifetimeJitter + 2*lifetimeJitter*rand.Float64()))
		s.lifetime = time.NewTimer(jittered)
		s.lifetimeAt = time.Now().Add(jittered)
		s.lifetimeC = s.lifetime.C
	}
	if s.cfg.Heartbeat > 0 {
		s.heartbeat = time.NewTimer(s.cfg.Heartbeat)
		s.heartbeatC = s.heartbeat.C
	}
	return nil
}

func (s *session) run() error {
	if err := s.waitReady(); err != nil {
		return err
	}
	sub, last, err := s.cfg.Feed.Subscribe(s.client.Patterns, s.cfg.Buffer)
	if err != nil {
		return err
	}
	defer func() {
		if !s.client.takenOver {
			sub.Close()
		}
	}()
	// The subscription's epoch, not the feed's current one: if the stream restarts meanwhile, the hub ends the
	// subscription, and nothing of the new incarnation is stamped with an old cursor's meaning.
	s.sub, s.epoch, s.last = sub, sub.Epoch(), last
	if err := s.resume(); err != nil {
		return err
	}
	return s.live()
}

// waitReady holds the stream open (with heartbeats) until the feed knows the stream's position, e.g. while
// NATS is still unreachable after Caddy started.
func (s *session) waitReady() error {
	_, err := s.next(awaited{ready: s.cfg.Feed.Ready()})
	return err
}

// heartbeatDue runs when the heartbeat timer fires. The timer is re-armed only here, not after every write (a
// timer update per delivery costs more than reading the clock): a comment goes out only if nothing was written
// for a whole interval.
func (s *session) heartbeatDue() error {
	interval := s.cfg.Heartbeat
	if idle := time.Since(s.out.lastWrite); idle < interval {
		s.heartbeat.Reset(interval - idle)
		return nil
	}
	if err := s.sendHeartbeat(); err != nil {
		return err
	}
	s.heartbeat.Reset(interval)
	return nil
}

// sendHeartbeat writes a comment, or with HeartbeatEvent a named event without an id: a page sees it (an
// EventSource hides comments) and its Last-Event-ID stays as it is.
func (s *session) sendHeartbeat() error {
	s.out.scratch = s.cfg.appendHeartbeat(s.out.scratch[:0])
	return s.out.writeNow(s.out.scratch)
}

// endByCaller sends the caller's final event, if any, and ends the session.
func (s *session) endByCaller() error {
	if b := s.client.appendFinal(s.out.scratch[:0]); len(b) > 0 {
		s.out.scratch = b
		if err := s.out.writeNow(b); err != nil {
			return err
		}
	}
	return ErrEnded
}

// stopSeen runs when cfg.Stop is closed: an exit ends the session at once; a reload keeps it serving for a
// random part of CloseDelay, so reconnects to the new config are spread out.
func (s *session) stopSeen() error {
	s.stopping = nil
	d := s.cfg.stopDelay()
	if d == 0 {
		return ErrStopped
	}
	s.closing = time.After(d)
	return nil
}

// reset tells the client its cursor cannot be honoured. The event carries the handover point as its id, so the
// browser's next reconnect resumes from here instead of repeating the reset.
func (s *session) reset(reason Reason) error {
	if s.cfg.Hooks.Reset != nil {
		s.cfg.Hooks.Reset(s.client, reason)
	}
	data := []byte(`{"reason":"` + string(reason) + `"}`)
	s.out.scratch = sse.AppendEvent(s.out.scratch[:0], eventid.Format(s.epoch, s.last), s.cfg.ResetEvent, data)
	return s.out.writeNow(s.out.scratch)
}
