package session

import (
	"context"
	"errors"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/caddy-sse/caddy-sse/hub"
)

// Visible heartbeats: with HeartbeatEvent an idle session sends a named event without an id, so a page can
// tell a quiet connection from a dead one and its Last-Event-ID does not move.
func TestHeartbeatEvent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeFeed("e1", 8)
		cfg := testConfig(f)
		cfg.HeartbeatEvent = "ping"
		r := serve(t, f, cfg, Client{})
		f.publish("a.x", "1")
		time.Sleep(15 * time.Second)
		synctest.Wait()
		events := r.rec.events()
		if len(events) != 2 || events[1].Type != "ping" || events[1].ID != "" || events[0].ID == "" {
			t.Fatalf("events %+v: want the event, then a ping without id", events)
		}
		if r.rec.heartbeats() != 0 {
			t.Fatal("a comment heartbeat was sent as well")
		}
	})
}

// ConnectEvent is the first event, without an id, before any replay or live event.
func TestConnectEvent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeFeed("e1", 8)
		cfg := testConfig(f)
		cfg.ConnectEvent = "connected"
		r := serve(t, f, cfg, Client{})
		f.publish("a.x", "1")
		synctest.Wait()
		events := r.rec.events()
		if len(events) != 2 || events[0].Type != "connected" || events[0].ID != "" || events[1].Data != "1" {
			t.Fatalf("events %+v: want connected (no id), then the live event", events)
		}
	})
}

// MaxLifetime ends each session within ±10% of it, at spread-out moments.
func TestMaxLifetime(t *testing.T) {
	var ends []time.Duration
	for range 20 {
		synctest.Test(t, func(t *testing.T) {
			f := newFakeFeed("e1", 8)
			cfg := testConfig(f)
			cfg.MaxLifetime = 100 * time.Second
			r := serve(t, f, cfg, Client{})
			start := time.Now()
			for {
				if ended, err := r.ended(); ended {
					if !errors.Is(err, ErrLifetime) {
						t.Fatalf("ended with %v, want ErrLifetime", err)
					}
					break
				}
				time.Sleep(time.Second)
			}
			ends = append(ends, time.Since(start))
		})
	}
	slices.Sort(ends)
	if ends[0] < 89*time.Second || ends[len(ends)-1] > 111*time.Second || ends[0] == ends[len(ends)-1] {
		t.Fatalf("lifetimes %v: want spread within 90s..110s", ends)
	}
}

// A caller ending a session (a newer connection replaced it) gets its final event and retry out first; this
// works whether the session is live, waiting for the feed, or replaying.
func TestEndedByCaller(t *testing.T) {
	final := func() (string, []byte, time.Duration) {
		return "replaced", []byte(`{"reason":"replaced"}`), time.Hour
	}
	t.Run("live", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			f := newFakeFeed("e1", 8)
			end, endNow := context.WithCancel(context.Background())
			r := serve(t, f, nil, Client{End: end, Final: final})
			f.publish("a.x", "1")
			synctest.Wait()
			endNow()
			if ended, err := r.ended(); !ended || !errors.Is(err, ErrEnded) {
				t.Fatalf("ended %v (%v), want ErrEnded", ended, err)
			}
			frames := r.rec.frames()
			last := frames[len(frames)-1]
			if last.Type != "replaced" || last.ID != "" {
				t.Fatalf("last frame %+v, want the replaced event without id", last)
			}
			if retry := frames[len(frames)-2]; retry.Retry != "3600000" {
				t.Fatalf("frame before it %+v, want retry: 3600000", retry)
			}
		})
	})
	t.Run("waiting for the feed", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			f := &fakeFeed{hub: hub.New(hub.Config{}), epoch: "e1", first: 1, batchSize: 2} // never Begun: not ready
			end, endNow := context.WithCancel(context.Background())
			r := serve(t, f, nil, Client{End: end, Final: final})
			endNow()
			if ended, err := r.ended(); !ended || !errors.Is(err, ErrEnded) {
				t.Fatalf("ended %v (%v), want ErrEnded", ended, err)
			}
		})
	})
}
