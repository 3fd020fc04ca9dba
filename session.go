package caddysse

import (
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/caddy-sse/caddy-sse/session"
	"github.com/caddy-sse/caddy-sse/sse"
)

// serveSession answers one EventSource request: scoping and admission here, the stream itself in package
// session.
func (h *Handler) serveSession(w http.ResponseWriter, r *http.Request) error {
	patterns, err := h.clientSubjects(r)
	if err != nil {
		return err
	}
	admitted, turnedAway, err := h.admit(r)
	if err != nil {
		return err
	}
	if turnedAway != "" {
		h.turnAway(w, turnedAway)
		return nil
	}
	h.watchServerShutdown(r)

	client := &session.Client{
		Patterns:      patterns,
		LastEventID:   readCursor(r, h.LastEventIDParam),
		Remote:        r.RemoteAddr,
		ClearDeadline: r.ProtoMajor >= 2,
	}
	if iw := caddyIdleWriter(r, w); iw != nil {
		// Caddy already resets a write deadline around every write and flush (and clears it between writes on
		// HTTP/2): give it ours instead of setting a second one per delivery.
		defer iw.Override(time.Duration(h.WriteTimeout), 0, 0)()
		client.DeadlinesByCaddy = true
	}
	admitted.client(client)
	client.TakeOver = h.takeOverFunc(w, r)
	if r.ProtoMajor == 3 {
		client.Ended = func(err error) {
			admitted.done(err)
			h.noteStreamEnd(r, err)
		}
	} else {
		client.Ended = admitted.done // a taken-over stream must not keep its request alive
	}
	_ = session.Serve(r.Context(), w, h.sessions, client) // the Ended hook logs why
	return nil                                            // the response has started: an error here would only make Caddy write a second status line
}

// sessionConfig is what every session of this route shares; the hooks count and log for it.
func (h *Handler) sessionConfig() *session.Config {
	first := session.FirstEventNew
	switch h.FirstEvent {
	case firstEventOldest:
		first = session.FirstEventOldest
	case firstEventLast:
		first = session.FirstEventLast
	}
	stream := h.Stream
	logger := h.logger
	takenOver := metrics.takenOver.WithLabelValues(stream)
	return &session.Config{
		Feed:            h.feed,
		Retry:           time.Duration(h.Retry),
		Heartbeat:       time.Duration(h.Heartbeat),
		WriteTimeout:    time.Duration(h.WriteTimeout),
		CloseDelay:      time.Duration(h.CloseDelay),
		Buffer:          h.Buffer,
		ReplayLimit:     h.ReplayLimit,
		FirstEvent:      first,
		FirstEventCount: h.FirstEventCount,
		ResetEvent:      h.ResetEvent,
		MaxLifetime:     time.Duration(h.MaxLifetime),
		HeartbeatEvent:  h.HeartbeatEvent,
		ConnectEvent:    h.ConnectEvent,
		Stop:            h.life.stopping,
		Exiting:         caddy.Exiting,
		Hooks: session.Hooks{
			Replayed: func(src session.Source) { metrics.replays.WithLabelValues(stream, string(src)).Inc() },
			Reset: func(c *session.Client, reason session.Reason) {
				logger.Debug("stream reset", zap.String("remote", c.Remote), zap.String("reason", string(reason)))
				metrics.resets.WithLabelValues(stream, string(reason)).Inc()
			},
			Ended: func(c *session.Client, err error) {
				if c.TakenOver() {
					takenOver.Dec()
				}
				logger.Debug("stream ended", zap.String("remote", c.Remote), zap.Bool("taken_over", c.TakenOver()), zap.Error(err))
			},
			TakenOver: func(*session.Client) { takenOver.Inc() },
		},
	}
}

// turnAway answers a client that a cap (reason) turned away. A browser's EventSource gives up for good on any status other
// than 200, so the answer is an empty event stream with a jittered retry: the client comes back later, keeping
// its Last-Event-ID. Retry-After says the same to other clients.
func (h *Handler) turnAway(w http.ResponseWriter, reason string) {
	base := max(time.Duration(h.Retry), time.Second)
	backoff := 2*base + rand.N(4*base)
	session.SetHeaders(w.Header())
	w.Header().Set("Retry-After", strconv.Itoa(int(backoff.Round(time.Second)/time.Second)))
	w.WriteHeader(http.StatusOK)
	b := sse.AppendRetry(nil, backoff)
	b = sse.AppendComment(b, "over capacity, retry later")
	_, _ = w.Write(b)
	metrics.turnedAway.WithLabelValues(reason).Inc()
	h.logger.Debug("stream turned away", zap.String("reason", reason))
}

// watchServerShutdown ends this handler's sessions when their server shuts down: at once when Caddy exits
// (otherwise open sessions would hold the exit for the whole grace period), spread out on a reload.
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
func readCursor(r *http.Request, param string) string {
	if v := r.Header.Get("Last-Event-ID"); v != "" {
		return v
	}
	return r.URL.Query().Get(param)
}

// caddyIdleWriter finds Caddy's idle-timeout writer under w: Caddy wraps every response in one unless the
// server's write_idle_timeout is disabled, and the timeouts directive publishes its own in the context.
func caddyIdleWriter(r *http.Request, w http.ResponseWriter) *caddyhttp.IdleTimeoutWriter {
	if _, iw := caddyhttp.IdleTimeoutsFromContext(r.Context()); iw != nil {
		return iw
	}
	for {
		switch t := w.(type) {
		case *caddyhttp.IdleTimeoutWriter:
			return t
		case interface{ Unwrap() http.ResponseWriter }:
			w = t.Unwrap()
		default:
			return nil
		}
	}
}
