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
	h.schedule() // what was queued during the replay
	return true, nil
}

var errTakeOver = errors.New("session: taken-over connection cannot be held")
