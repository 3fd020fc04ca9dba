package session

import (
	"context"

	"github.com/caddy-sse/caddy-sse/eventid"
)

// resume is the handover: the subscription was registered at s.last, so live events after it are already
// queued. Here the client gets what it missed up to and including s.last, or a reset event, before the queue
// is drained. The decision is made in plan, whose frame is gone before anything is written (see next).
func (s *session) resume() error {
	reset, produce := s.plan()
	switch {
	case reset != "":
		return s.reset(reset)
	case produce != nil:
		return s.replay(produce)
	}
	return nil
}

// plan decides what the client's cursor needs: a reset, a replay (the producer that reads it), or nothing.
func (s *session) plan() (Reason, producer) {
	feed := s.cfg.Feed
	id := s.client.LastEventID
	if id == "" {
		switch s.cfg.FirstEvent {
		case FirstEventOldest:
			req := s.request(0)
			req.FromOldest = true
			return "", func(ctx context.Context, fn func(Batch) error) (Source, error) {
				return feed.Replay(ctx, req, fn)
			}
		case FirstEventLast:
			req, n := s.request(0), s.cfg.FirstEventCount
			return "", func(ctx context.Context, fn func(Batch) error) (Source, error) {
				return "", feed.LastN(ctx, req, n, fn)
			}
		}
		return "", nil
	}
	epoch, seq, err := eventid.Parse(id)
	switch {
	case err != nil:
		return ReasonMalformedID, nil
	case epoch != s.epoch:
		return ReasonStreamChanged, nil
	case seq == s.last:
		return "", nil
	case seq > s.last:
		// The client saw an event this node has not dispatched yet (another node is ahead), or an id from the
		// future. The feed asks the stream which; the session keeps heartbeating meanwhile.
		return "", func(ctx context.Context, _ func(Batch) error) (Source, error) {
			if err := feed.CheckAhead(ctx, s.epoch, seq); err != nil {
				return "", err
			}
			s.sub.SkipThrough(seq) // what the client has must not come again live
			return "", nil
		}
	}
	req := s.request(seq)
	return "", func(ctx context.Context, fn func(Batch) error) (Source, error) {
		return feed.Replay(ctx, req, fn)
	}
}

func (s *session) request(after uint64) ReplayRequest {
	return ReplayRequest{
		Epoch:    s.epoch,
		Patterns: s.client.Patterns,
		After:    after,
		Upto:     s.last,
		Limit:    s.cfg.ReplayLimit,
	}
}
