package caddysse

import (
	"errors"
	"fmt"

	"go.uber.org/zap"

	"github.com/caddy-sse/caddy-sse/hub"
	"github.com/caddy-sse/caddy-sse/jetstream"
)

// Reasons carried by the reset event's data, {"reason":"..."}. Documented in the README.
const (
	resetMalformed = "malformed-id"    // Last-Event-ID is not an id this server wrote
	resetRecreated = "stream-changed"  // the stream was deleted and recreated since the id was written
	resetExpired   = "history-expired" // events after the id were removed (age, size limits, purge)
	resetBeyondEnd = "id-beyond-end"   // the id is past the last event of the stream
	resetTooMany   = "too-many-events" // more than replay_limit events would be replayed
)

// errNoNATS: JetStream is needed (replay, publish) but cannot be reached. A stream ends and the client keeps its
// Last-Event-ID and retries.
var errNoNATS = errors.New("sse: NATS connection unavailable")

// catchUp is the handover: sub was registered at `last`, so live events after last are already queued for it.
// Here the client gets what it missed up to and including last, or a reset event, before catchUp returns and
// the queue is drained.
func (c *sseConn) catchUp(sub *hub.Subscription, patterns []string, last uint64, cursor string, hasCursor bool) error {
	// The subscription's epoch, not the hub's current one: if the stream restarts meanwhile, the hub ends the
	// subscription, and nothing of the new incarnation is stamped with an old cursor's meaning.
	epoch := sub.Epoch()
	c.epoch = epoch
	if !hasCursor {
		switch c.h.FirstEvent {
		case firstEventOldest:
			return c.replayOldest(sub, patterns, epoch, last)
		case firstEventLast:
			return c.replayLast(sub, patterns, last)
		}
		return nil
	}
	idEpoch, seq, err := hub.ParseID(cursor)
	switch {
	case err != nil:
		return c.reset(resetMalformed, epoch, last)
	case idEpoch != epoch:
		return c.reset(resetRecreated, epoch, last)
	case seq == last:
		return nil
	case seq > last:
		// The client saw an event this node has not dispatched yet (another node is ahead), or an id from the
		// future. Ask the stream which.
		state, err := c.streamState()
		if err != nil {
			return err
		}
		if state.Epoch != epoch || seq > state.LastSeq {
			return c.reset(resetBeyondEnd, epoch, last)
		}
		sub.SkipThrough(seq)
		return nil
	}
	return c.replayRange(sub, patterns, epoch, seq, last)
}

// replayRange sends the events in (after, upto]: from the hub's ring when it still holds them, else from
// JetStream. The replay is written straight to the client, paced by its own writes; it never passes through the
// subscription's bounded queue.
func (c *sseConn) replayRange(sub *hub.Subscription, patterns []string, epoch string, after, upto uint64) error {
	if after >= upto {
		return nil
	}
	events, covered, overLimit := c.hub.Since(c.batch[:0], patterns, after, upto, c.h.ReplayLimit)
	if covered {
		defer clear(events)
		c.batch = events
		if err := sub.Err(); err != nil {
			return err // the feed restarted while we read the ring
		}
		if overLimit {
			return c.reset(resetTooMany, epoch, upto)
		}
		metrics.replays.WithLabelValues(c.h.Stream, "memory").Inc()
		return c.writeEvents(events)
	}
	conn, err := c.h.feed.natsConn()
	if err != nil {
		return err
	}
	err = conn.Replay(c.ctx, c.replayRequest(patterns, epoch, after, upto), c.writeMessages)
	return c.finishReplay(err, epoch, upto)
}

// replayOldest sends all stored history for a client without a cursor (first_event oldest).
func (c *sseConn) replayOldest(sub *hub.Subscription, patterns []string, epoch string, last uint64) error {
	state, err := c.streamState()
	if err != nil {
		return err
	}
	first := max(state.FirstSeq, 1)
	return c.replayRange(sub, patterns, epoch, first-1, last)
}

// streamState asks JetStream where the stream stands; errNoNATS while it cannot be reached.
func (c *sseConn) streamState() (jetstream.StreamState, error) {
	conn, err := c.h.feed.natsConn()
	if err != nil {
		return jetstream.StreamState{}, err
	}
	state, err := conn.StreamState(c.ctx, c.h.Stream)
	if err != nil {
		return state, fmt.Errorf("%w: %v", errNoNATS, err)
	}
	return state, nil
}

// replayLast sends the n most recent matching events (first_event last n).
func (c *sseConn) replayLast(sub *hub.Subscription, patterns []string, last uint64) error {
	events, covered := c.hub.Last(c.batch[:0], patterns, c.h.FirstEventCount, last)
	if covered {
		defer clear(events)
		c.batch = events
		if err := sub.Err(); err != nil {
			return err
		}
		return c.writeEvents(events)
	}
	conn, err := c.h.feed.natsConn()
	if err != nil {
		return err
	}
	req := c.replayRequest(patterns, c.epoch, 0, last)
	if err := conn.LastN(c.ctx, req, c.h.FirstEventCount, c.writeMessages); err != nil {
		if errors.Is(err, jetstream.ErrStreamChanged) {
			return c.reset(resetRecreated, c.epoch, last)
		}
		return err
	}
	return c.flush()
}

func (c *sseConn) replayRequest(patterns []string, epoch string, after, upto uint64) jetstream.ReplayRequest {
	return jetstream.ReplayRequest{
		Stream:      c.h.Stream,
		Epoch:       epoch,
		Filters:     patterns,
		After:       after,
		Upto:        upto,
		Limit:       c.h.ReplayLimit,
		EventHeader: c.h.EventHeader,
	}
}

// writeMessages encodes messages read from JetStream, stamped with the subscription's epoch (the replay checked
// that it read that incarnation), and writes them.
func (c *sseConn) writeMessages(batch []jetstream.Message) error {
	for _, m := range batch {
		c.scratch = hub.AppendEvent(c.scratch[:0], hub.FormatID(c.epoch, m.Seq), m.EventType, m.Data)
		if err := c.write(c.scratch); err != nil {
			return err
		}
	}
	return nil
}

// finishReplay turns the JetStream replay's answer into a reset event where history cannot be honoured.
func (c *sseConn) finishReplay(err error, epoch string, upto uint64) error {
	switch {
	case err == nil:
		metrics.replays.WithLabelValues(c.h.Stream, "jetstream").Inc()
		return c.flush()
	case errors.Is(err, jetstream.ErrHistoryGone):
		return c.reset(resetExpired, epoch, upto)
	case errors.Is(err, jetstream.ErrTooMany):
		return c.reset(resetTooMany, epoch, upto)
	case errors.Is(err, jetstream.ErrBeyondEnd):
		return c.reset(resetBeyondEnd, epoch, upto)
	case errors.Is(err, jetstream.ErrStreamChanged):
		return c.reset(resetRecreated, epoch, upto)
	}
	return err
}

// reset tells the client its cursor cannot be honoured. The event carries the current position as its id, so
// the browser's next reconnect resumes from here instead of repeating the reset.
func (c *sseConn) reset(reason, epoch string, last uint64) error {
	c.h.logger.Debug("stream reset", zap.String("remote", c.remote), zap.String("reason", reason))
	metrics.resets.WithLabelValues(c.h.Stream, reason).Inc()
	data := []byte(`{"reason":"` + reason + `"}`)
	c.scratch = hub.AppendEvent(c.scratch[:0], hub.FormatID(epoch, last), c.h.ResetEvent, data)
	return c.writeNow(c.scratch)
}
