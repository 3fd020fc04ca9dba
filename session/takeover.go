package session

import (
	"errors"
	"time"
)

// takeOver hands the live session to the writer pool when the client allows it (Client.TakeOver). It reports
// false when the session stays on its request, and an error when the connection was taken but cannot be
// held (then the session is over).
func (s *session) takeOver() (bool, error) {
	c := s.client
	if c.TakeOver == nil || s.stopping == nil { // a stop was seen: the session ends soon where it is
		return false, nil
	}
	if err := s.out.flush(); err != nil {
		return false, err
	}
	conn, err := c.TakeOver()
	c.TakeOver = nil // it holds the request's writer, which must not live as long as the stream
	if err != nil {
		return false, nil
	}
	raw, err := newRawConn(conn)
	if err != nil {
		_ = conn.Close()
		return false, errors.Join(errTakeOver, err)
	}
	h := &held{cfg: s.cfg, client: c, conn: raw, sub: s.sub, lastWrite: s.out.lastWrite}
	// Until h is set up, nothing may serve it: the timers, the End watch, the stop and the waker below can
	// fire at once. As running with something to do, they only mark it, and release queues it at the end
	// (to write what was queued during the replay).
	h.state.Store(heldRerun)
	now := time.Now()
	if s.cfg.Heartbeat > 0 {
		h.heartbeat = time.AfterFunc(max(s.cfg.Heartbeat-now.Sub(h.lastWrite), 0), func() {
			h.due.Or(dueHeartbeat)
			h.schedule()
		})
	}
	if s.lifetime != nil {
		h.lifetime = time.AfterFunc(max(s.lifetimeAt.Sub(now), 0), func() { h.requestEnd(ErrLifetime) })
	}
	if c.End != nil {
		h.watchEnd(c.End)
	}
	c.takenOver = true
	if s.cfg.Hooks.TakenOver != nil {
		s.cfg.Hooks.TakenOver(c)
	}
	s.cfg.held.add(s.cfg, h)
	s.sub.SetWaker(h.schedule)
	go h.watchClient()
	h.release()
	return true, nil
}

var errTakeOver = errors.New("session: taken-over connection cannot be held")
