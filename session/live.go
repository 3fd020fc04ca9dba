package session

// live writes queued events as they come. Several queued events are written together and flushed once.
func (s *session) live() error {
	if taken, err := s.takeOver(); taken || err != nil {
		if err == nil {
			err = ErrTakenOver
		}
		return err
	}
	for {
		if _, err := s.next(awaited{queued: s.sub.Notify(), ended: s.sub.Done()}); err != nil {
			return err
		}
		s.liveBatch = s.sub.Drain(s.liveBatch[:0])
		err := s.out.writeEvents(s.liveBatch)
		clear(s.liveBatch) // let the history free old frames
		if err != nil {
			return err
		}
	}
}
