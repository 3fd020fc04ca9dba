package caddysse

import (
	"context"
	"errors"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/caddy-sse/caddy-sse/hub"
)

// serveStream answers one EventSource request: headers and a first comment at once, then the resume point,
// then live events until the client leaves, falls behind, or the config is retired.
func (h *Handler) serveStream(w http.ResponseWriter, r *http.Request) error {
	patterns, err := h.clientSubjects(r)
	if err != nil {
		return err
	}
	if h.MaxConnections > 0 { // counted only under a cap: the counter is shared by every stream of the route
		if h.life.open.Add(1) > int64(h.MaxConnections) {
			h.life.open.Add(-1)
			h.turnAway(w)
			return nil
		}
		defer h.life.open.Add(-1)
	}
	h.watchServerShutdown(r)

	c := &sseConn{
		h:      h,
		w:      w,
		rc:     http.NewResponseController(w),
		ctx:    r.Context(),
		hub:    h.feed.hub,
		remote: r.RemoteAddr,
		// On HTTP/2 and HTTP/3 a write deadline is a timer that resets the stream when it fires, even with no
		// write in flight; on HTTP/1 it only bounds the next write. So there it must not outlive the flush.
		clearDeadline: r.ProtoMajor >= 2,
	}
	if iw := caddyIdleWriter(r, w); iw != nil {
		// Caddy already resets a write deadline around every write and flush (and clears it between writes on
		// HTTP/2): give it ours instead of setting a second one per delivery.
		defer iw.Override(time.Duration(h.WriteTimeout), 0, 0)()
		c.deadlinesByCaddy = true
	}
	cursor, hasCursor := readCursor(r, h.LastEventIDParam)
	if err := c.open(); err != nil {
		return nil // the client is gone before the first byte
	}
	err = c.run(patterns, cursor, hasCursor)
	h.noteStreamEnd(r, err)
	h.logger.Debug("stream ended", zap.String("remote", c.remote), zap.Error(err))
	return nil // the response has started: an error here would only make Caddy write a second status line
}

// sseConn is one open event stream.
type sseConn struct {
	h      *Handler
	w      http.ResponseWriter
	rc     *http.ResponseController
	ctx    context.Context
	hub    *hub.Hub
	remote string // for debug logs; a per-connection logger would cost memory on every idle stream
	epoch  string // the stream incarnation this connection's subscription belongs to
	// clearDeadline: remove the write deadline after each flush (HTTP/2 and HTTP/3).
	clearDeadline bool
	// deadlinesByCaddy: Caddy's idle-timeout writer applies WriteTimeout around each write; send sets none.
	deadlinesByCaddy bool
	scratch          []byte       // frames written once: comments, retry, reset, JetStream replays
	batch            []*hub.Event // reused for drains and ring replays
	chunk            *[]byte      // frames waiting to be sent together; from chunkPool, held only while writing
	lastWrite        time.Time    // when bytes last went out, for heartbeats
}

// errStopped ends a stream because its config is retired or Caddy is exiting.
var errStopped = errors.New("sse: handler stopping")

func (c *sseConn) open() error {
	hdr := c.w.Header()
	hdr.Set("Content-Type", "text/event-stream")
	hdr.Set("Cache-Control", "no-cache")
	hdr.Set("X-Accel-Buffering", "no")
	hdr.Del("Content-Length")
	c.w.WriteHeader(http.StatusOK)
	// The first comment pushes the headers out through any encoder, and retry: tells the browser how long to
	// wait before it reconnects.
	c.scratch = hub.AppendComment(c.scratch[:0], "ok")
	c.scratch = hub.AppendRetry(c.scratch, time.Duration(c.h.Retry))
	return c.writeNow(c.scratch)
}

func (c *sseConn) run(patterns []string, cursor string, hasCursor bool) error {
	if err := c.waitReady(); err != nil {
		return err
	}
	sub, last, err := c.hub.Subscribe(patterns, c.h.Buffer)
	if err != nil {
		return err
	}
	defer sub.Close()
	if err := c.catchUp(sub, patterns, last, cursor, hasCursor); err != nil {
		return err
	}
	return c.live(sub)
}

// waitReady holds the stream open (with heartbeats) until the feed knows the stream's position, e.g. while
// NATS is still unreachable after Caddy started.
func (c *sseConn) waitReady() error {
	select {
	case <-c.hub.Ready():
		return nil
	default:
	}
	heartbeat := time.NewTicker(time.Duration(c.h.Heartbeat))
	defer heartbeat.Stop()
	for {
		select {
		case <-c.hub.Ready():
			return nil
		case <-heartbeat.C:
			if err := c.heartbeat(); err != nil {
				return err
			}
		case <-c.ctx.Done():
			return c.ctx.Err()
		case <-c.h.life.stopping:
			return errStopped
		}
	}
}

// live writes queued events as they come. Several queued events are written together and flushed once.
func (c *sseConn) live(sub *hub.Subscription) error {
	heartbeat := time.NewTimer(time.Duration(c.h.Heartbeat))
	defer heartbeat.Stop()
	var closeTimer <-chan time.Time
	stopping := c.h.life.stopping
	for {
		select {
		case <-sub.Notify():
			c.batch = sub.Drain(c.batch[:0])
			err := c.writeEvents(c.batch)
			clear(c.batch) // let the ring free old frames
			if err != nil {
				return err
			}
		case <-heartbeat.C:
			// The timer is re-armed only here, not after every write (a timer update per delivery costs more
			// than reading the clock): a comment goes out only if nothing was written for a whole interval.
			interval := time.Duration(c.h.Heartbeat)
			if idle := time.Since(c.lastWrite); idle < interval {
				heartbeat.Reset(interval - idle)
				continue
			}
			if err := c.heartbeat(); err != nil {
				return err
			}
			heartbeat.Reset(interval)
		case <-sub.Done():
			return sub.Err()
		case <-c.ctx.Done():
			return c.ctx.Err()
		case <-stopping:
			if caddy.Exiting() {
				return errStopped
			}
			// A reload: keep serving for a random part of CloseDelay, so reconnects are spread out.
			stopping = nil
			closeTimer = time.After(rand.N(time.Duration(c.h.CloseDelay)) + time.Millisecond)
		case <-closeTimer:
			return errStopped
		}
	}
}

func (c *sseConn) heartbeat() error {
	return c.writeNow(hub.AppendComment(c.scratch[:0], ""))
}

// turnAway answers a client over MaxConnections. A browser's EventSource gives up for good on any status other
// than 200, so the answer is an empty event stream with a jittered retry: the client comes back later, keeping
// its Last-Event-ID. Retry-After says the same to other clients.
func (h *Handler) turnAway(w http.ResponseWriter) {
	base := max(time.Duration(h.Retry), time.Second)
	backoff := 2*base + rand.N(4*base)
	hdr := w.Header()
	hdr.Set("Content-Type", "text/event-stream")
	hdr.Set("Cache-Control", "no-cache")
	hdr.Set("X-Accel-Buffering", "no")
	hdr.Set("Retry-After", strconv.Itoa(int(backoff.Round(time.Second)/time.Second)))
	w.WriteHeader(http.StatusOK)
	b := hub.AppendRetry(nil, backoff)
	b = hub.AppendComment(b, "over capacity, retry later")
	_, _ = w.Write(b)
	metrics.turnedAway.Inc()
	h.logger.Debug("stream turned away: max_connections reached", zap.Int("max_connections", h.MaxConnections))
}

// watchServerShutdown ends this handler's streams when their server shuts down: at once when Caddy exits
// (otherwise open streams would hold the exit for the whole grace period), spread out on a reload.
func (h *Handler) watchServerShutdown(r *http.Request) {
	srv, ok := r.Context().Value(http.ServerContextKey).(*http.Server)
	if !ok {
		return
	}
	if _, seen := h.life.shutdownSeen.LoadOrStore(srv, struct{}{}); !seen {
		srv.RegisterOnShutdown(h.stop)
	}
}

func (h *Handler) stop() {
	h.life.stopOnce.Do(func() { close(h.life.stopping) })
}

// readCursor returns the client's resume point: the Last-Event-ID header, else the query fallback.
func readCursor(r *http.Request, param string) (string, bool) {
	if v := r.Header.Get("Last-Event-ID"); v != "" {
		return v, true
	}
	if v := r.URL.Query().Get(param); v != "" {
		return v, true
	}
	return "", false
}
