package caddysse

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/quic-go/quic-go"
	"go.uber.org/zap"
)

// HTTP/3 specifics. Caddy serves HTTP/3 by default on HTTPS sites and browsers move event streams onto it.

const (
	// quicIdleTimeout is how long a QUIC connection lives without receiving a packet: quic-go's default, which
	// Caddy does not change. A client's own idle timeout may be shorter; the lower one applies.
	quicIdleTimeout = 30 * time.Second
	// heartbeatSafety is the margin heartbeats keep below it: a heartbeat is due after `heartbeat` of silence,
	// then waits for the timer, the scheduler and the write.
	heartbeatSafety = 5 * time.Second
)

// warnHeartbeatOverQUIC warns when heartbeat lets a stream go silent for longer than QUIC allows, so idle HTTP/3
// streams would be cut (they reconnect and replay, but every idle one, every time). A warning, not an error: the
// same value is fine on plain HTTP and HTTP/2 sites, and configs that have it today keep loading.
func (h *Handler) warnHeartbeatOverQUIC() {
	if limit := quicIdleTimeout - heartbeatSafety; time.Duration(h.Heartbeat) > limit {
		h.logger.Warn("heartbeat is above what HTTP/3 allows: QUIC closes a connection after 30s without packets, "+
			"so idle HTTP/3 streams will be cut; keep heartbeat at or below 25s on HTTPS sites",
			zap.Duration("heartbeat", time.Duration(h.Heartbeat)), zap.Duration("limit", limit))
	}
}

// noteStreamEnd counts a stream that ended because its QUIC connection timed out. That is a client that went away
// without closing (a laptop lid, a lost network): the server learns of it only after QUIC's idle timeout, and
// until then the stream holds its goroutine and queue. The cause is in the write error or the request context's
// cause, depending on which the stream noticed first.
func (h *Handler) noteStreamEnd(r *http.Request, err error) {
	if r.ProtoMajor != 3 {
		return
	}
	var idle *quic.IdleTimeoutError
	if errors.As(err, &idle) || errors.As(context.Cause(r.Context()), &idle) {
		metrics.quicIdleEnds.WithLabelValues(h.Stream).Inc()
	}
}
