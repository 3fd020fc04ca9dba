package caddysse

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/caddy-sse/caddy-sse/session"
)

// Reasons a client is turned away, as the turned_away_total metric's label.
const (
	turnedAwayRoute   = "max_connections"
	turnedAwayProcess = "process_max_connections"
	turnedAwayRate    = "max_connect_rate"
	turnedAwayKey     = "max_per_key"
)

// processSessions counts open sessions of every route and config of this process, for the global
// max_connections.
var processSessions atomic.Int64

// routeConnections is a provisioned route's connection management: its parsed templates, its connect-rate
// limiter, and its open sessions.
type routeConnections struct {
	label    string // the route's subjects, naming it in metrics and the admin view
	keySpace string // routes whose key spaces differ never replace each other's connections
	key      *keyTemplate
	presence *subjectTemplate
	rate     *rate.Limiter
	process  int // the process-wide cap of the config this route belongs to; 0: none
	open     atomic.Int64

	// the route's metric series, looked up once instead of per connection
	connects prometheus.Counter
	gauge    prometheus.Gauge
}

// provisionConnections prepares the route's connection management; app is its config's sse app.
func (h *Handler) provisionConnections(app *App) error {
	c := &h.Connections
	rc := &routeConnections{label: strings.Join(h.Subjects, " "), process: app.MaxConnections}
	sum := sha256.Sum256([]byte(h.Stream + "\x00" + rc.label + "\x00" + c.ClientKey))
	rc.keySpace = hex.EncodeToString(sum[:8])
	if c.ClientKey != "" {
		t, err := parseKeyTemplate(c.ClientKey)
		if err != nil {
			return err
		}
		rc.key = &t
	}
	if c.PresenceSubject != "" {
		t, err := parseSubjectTemplate(c.PresenceSubject)
		if err == nil {
			t, err = t.expandGlobal(caddy.NewReplacer())
		}
		if err != nil {
			return err
		}
		rc.presence = &t
	}
	if c.MaxConnectRate > 0 {
		rc.rate = rate.NewLimiter(rate.Limit(c.MaxConnectRate), max(1, int(c.MaxConnectRate)))
	}
	rc.connects = metrics.connects.WithLabelValues(h.Stream, rc.label)
	rc.gauge = metrics.connections.WithLabelValues(h.Stream, rc.label)
	h.conns = rc
	routes.add(h)
	return nil
}

// admission is one admitted session's hold on the caps; done gives it back.
type admission struct {
	h        *Handler
	keyed    *keyedConn
	presence string // resolved presence subject; "" for none
	opened   time.Time
	once     sync.Once
}

// admit decides whether a new session may open. A non-empty turnedAway is the cap that said no (the caller
// answers so that the client retries); err is a refusal with a status (a bad client key).
func (h *Handler) admit(r *http.Request) (a *admission, turnedAway string, err error) {
	rc := h.conns
	repl, _ := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	if repl == nil {
		repl = caddy.NewReplacer()
	}
	a = &admission{h: h, opened: time.Now()}
	var key string
	if rc.key != nil {
		if key, err = rc.key.resolve(repl); err != nil {
			return nil, "", err
		}
		if rc.presence != nil {
			if a.presence, err = rc.presence.resolve(repl); err != nil {
				return nil, "", err
			}
		}
	}
	if rc.rate != nil && !rc.rate.Allow() {
		return nil, turnedAwayRate, nil
	}
	if n := rc.open.Add(1); h.MaxConnections > 0 && n > int64(h.MaxConnections) {
		rc.open.Add(-1)
		return nil, turnedAwayRoute, nil
	}
	if n := processSessions.Add(1); rc.process > 0 && n > int64(rc.process) {
		processSessions.Add(-1)
		rc.open.Add(-1)
		return nil, turnedAwayProcess, nil
	}
	if rc.key != nil {
		conn, _ := h.feed.conn.get() // nil while NATS cannot be reached: the cap then holds on this node only
		k := &keyedConn{ns: rc.keySpace, key: key, limit: h.MaxPerKey, mode: h.PerKeyMode, opened: a.opened, conn: conn}
		ctx, cancel := context.WithTimeout(r.Context(), keyAskTimeout)
		first, err := keys.admit(ctx, k)
		cancel()
		if errors.Is(err, errKeyHeld) {
			processSessions.Add(-1)
			rc.open.Add(-1)
			return nil, turnedAwayKey, nil
		}
		a.keyed = k
		if a.presence != "" && first {
			h.announcePresence(conn, a.presence, key, presenceOnline)
		}
	}
	rc.connects.Inc()
	rc.gauge.Inc()
	return a, "", nil
}

// client fills in what the session needs to end on the registry's word.
func (a *admission) client(c *session.Client) {
	if a.keyed == nil {
		return
	}
	k := a.keyed
	c.End = k.ended
	c.Final = func() (string, []byte, time.Duration) { return k.finalEvent() }
}

// done releases the session's hold on the caps and counts how it ended.
func (a *admission) done(err error) {
	a.once.Do(func() {
		h, rc := a.h, a.h.conns
		rc.open.Add(-1)
		processSessions.Add(-1)
		rc.gauge.Dec()
		metrics.duration.WithLabelValues(h.Stream).Observe(time.Since(a.opened).Seconds())
		if errors.Is(err, session.ErrLifetime) {
			metrics.lifetimeEnds.WithLabelValues(h.Stream).Inc()
		}
		if k := a.keyed; k != nil {
			if errors.Is(err, session.ErrEnded) && k.reason == endReplaced {
				metrics.replaced.WithLabelValues(h.Stream).Inc()
			}
			if last := keys.release(k); a.presence != "" && last {
				h.announcePresence(k.conn, a.presence, k.key, presenceOffline)
			}
		}
	})
}

// replacedRetry is the reconnect delay a replaced stream asks for: a browser tab whose connection was taken
// over by a newer one with the same key stays quiet instead of taking it back, so two live tabs settle.
const replacedRetry = 24 * time.Hour

// finalEvent is what a session ended by the registry sends last.
func (k *keyedConn) finalEvent() (string, []byte, time.Duration) {
	switch k.reason {
	case endReplaced:
		return endReplaced, []byte(`{"reason":"replaced"}`), replacedRetry
	case endClosed:
		return endClosed, []byte(`{"reason":"closed"}`), 0
	}
	return "", nil, 0
}
