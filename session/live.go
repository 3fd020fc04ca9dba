package session

// live writes queued events as they come. Several queued events are written together and flushed once.
func (s *session) live() error {
	for {
		var err error
		select {
		case <-s.sub.Notify():
			s.liveBatch = s.sub.Drain(s.liveBatch[:0])
			err = s.out.writeEvents(s.liveBatch)
			clear(s.liveBatch) // let the history free old frames
		case <-s.sub.Done():
			return s.sub.Err()
		case <-s.heartbeatC:
			err = s.heartbeatDue()
		case <-s.ctx.Done():
			return s.ctx.Err()
		case <-s.stopping:
			err = s.stopSeen()
		case <-s.closing:
			return ErrStopped
		case <-s.lifetimeC:
			return ErrLifetime
		case <-s.client.End:
			return s.endByCaller()
		}
		if err != nil {
			return err
		}
	}
}
