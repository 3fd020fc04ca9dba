package session

import "sync"

// heldSet is a route's taken-over sessions, so that its Stop reaches them: they have no goroutine that could
// wait for it.
type heldSet struct {
	mu       sync.Mutex
	sessions map[*held]struct{}
	stopped  bool
	watching bool
}

// add registers h; a route that has already stopped stops h at once.
func (s *heldSet) add(cfg *Config, h *held) {
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		h.stopSeen()
		return
	}
	if s.sessions == nil {
		s.sessions = make(map[*held]struct{})
	}
	s.sessions[h] = struct{}{}
	if !s.watching && cfg.Stop != nil {
		s.watching = true
		go s.watchStop(cfg.Stop)
	}
	s.mu.Unlock()
}

func (s *heldSet) remove(h *held) {
	s.mu.Lock()
	delete(s.sessions, h)
	s.mu.Unlock()
}

// watchStop waits, once per route, for the route's stop and passes it on to every held session.
func (s *heldSet) watchStop(stop <-chan struct{}) {
	<-stop
	s.mu.Lock()
	s.stopped = true
	sessions := make([]*held, 0, len(s.sessions))
	for h := range s.sessions {
		sessions = append(sessions, h)
	}
	s.mu.Unlock()
	for _, h := range sessions {
		h.stopSeen()
	}
}
