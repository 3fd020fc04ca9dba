package session

// awaited is what one stage of a session waits for besides what every stage waits for. Nil channels are
// never ready.
type awaited struct {
	ready   <-chan struct{}     // the feed knows its position
	queued  <-chan struct{}     // live events were queued
	ended   <-chan struct{}     // the subscription ended
	batches <-chan Batch        // the replay producer hands over a batch
	result  <-chan replayResult // the replay producer is done
}

// wakeup is what next returns: which of the stage's channels is ready, with its value.
type wakeup struct {
	ready, queued bool
	batch         *Batch
	result        *replayResult

	heartbeat, endedByCaller bool // for next itself: a write is due
}

// next blocks until one of the stage's channels is ready. Meanwhile it does what every stage does: heartbeats
// when idle, the end on stop (at once on exit, after a jittered delay on reload) and when the client is gone.
// An error ends the session.
//
// The writes it makes are made here, after wait returned, not inside the select: a stack is only as big as
// its deepest call, and over HTTP/2 a write goes down Caddy's writers and the HTTP/2 server's, so the select's
// frame under it would take the handler's goroutine past 8 KiB of stack for the stream's whole life.
func (s *session) next(a awaited) (wakeup, error) {
	for {
		w, err := s.wait(a)
		switch {
		case err != nil:
			return wakeup{}, err
		case w.heartbeat:
			err = s.heartbeatDue()
		case w.endedByCaller:
			return wakeup{}, s.endByCaller()
		default:
			return w, nil
		}
		if err != nil {
			return wakeup{}, err
		}
	}
}

// wait is next's select. It writes nothing.
func (s *session) wait(a awaited) (wakeup, error) {
	for {
		select {
		case <-a.ready:
			return wakeup{ready: true}, nil
		case <-a.queued:
			return wakeup{queued: true}, nil
		case b := <-a.batches:
			return wakeup{batch: &b}, nil
		case r := <-a.result:
			return wakeup{result: &r}, nil
		case <-a.ended:
			return wakeup{}, s.sub.Err()
		case <-s.heartbeatC:
			return wakeup{heartbeat: true}, nil
		case <-s.ctx.Done():
			return wakeup{}, s.ctx.Err()
		case <-s.stopping:
			if err := s.stopSeen(); err != nil {
				return wakeup{}, err
			}
		case <-s.closing:
			return wakeup{}, ErrStopped
		case <-s.lifetimeC:
			return wakeup{}, ErrLifetime
		case <-s.client.endDone():
			return wakeup{endedByCaller: true}, nil
		}
	}
}
