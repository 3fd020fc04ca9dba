package session

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// An end that comes while the connection is being handed to the writer pool (here the caller ends the
// session during TakeOver, so the End watch fires as soon as it is set up) must find the held session whole:
// it ends once, as taken over (the gauge of taken-over streams goes back to where it was), with the
// caller's final event and a complete response.
func TestTakeOverEndedDuringHandover(t *testing.T) {
	final := func() (string, []byte, time.Duration) { return "closed", []byte(`{"reason":"closed"}`), 0 }
	for range 20 {
		f := newFakeFeed("e1", 64)
		var gauge atomic.Int32
		s := newHeldServer(t, f, func(c *Config) {
			c.Heartbeat = time.Hour
			c.Hooks.Ended = func(c *Client, _ error) {
				if c.TakenOver() {
					gauge.Add(-1)
				}
			}
		})
		s.cfg.Hooks.TakenOver = func(*Client) { gauge.Add(1) }
		end, cancel := context.WithCancel(context.Background())
		s.client = func(c *Client) { c.End, c.Final = end, final }
		s.onTake = cancel
		st := s.open("")
		if err := s.endedWith(); !errors.Is(err, ErrEnded) {
			t.Fatalf("ended with %v, want ErrEnded", err)
		}
		tail, err := st.rest()
		if err != nil || !strings.HasSuffix(tail, "event: closed\ndata: {\"reason\":\"closed\"}\n\n") {
			t.Fatalf("the response ended with %q (%v), want the final event and a clean end", tail, err)
		}
		if err := <-s.served; !errors.Is(err, ErrTakenOver) {
			t.Fatalf("Serve returned %v, want ErrTakenOver", err)
		}
		if n := gauge.Load(); n != 0 {
			t.Fatalf("taken-over gauge at %d after the end, want 0", n)
		}
		cancel()
	}
}
