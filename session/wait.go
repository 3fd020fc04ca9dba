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
}

// next blocks until one of the stage's channels is ready. Meanwhile it does what every stage does: heartbeats
// when idle, the end on stop (at once on exit, after a jittered delay on reload) and when the client is gone.
// An error ends the session.
func (s *session) next(a awaited) (wakeup, error) {
	for {
		var err error
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
			err = s.heartbeatDue()
		case <-s.ctx.Done():
			return wakeup{}, s.ctx.Err()
		case <-s.stopping:
			err = s.stopSeen()
		case <-s.closing:
			return wakeup{}, ErrStopped
		case <-s.lifetimeC:
			return wakeup{}, ErrLifetime
		case <-s.client.endDone():
			return wakeup{}, s.endByCaller()
		}
		if err != nil {
			return wakeup{}, err
		}
	}
}
