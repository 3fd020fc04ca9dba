package session

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/caddy-sse/caddy-sse/eventid"
	"github.com/caddy-sse/caddy-sse/hub"
)

func TestOpenSendsHeadersCommentAndRetry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeFeed("e1", 8)
		r := serve(t, f, nil, Client{})
		for k, v := range map[string]string{"Content-Type": "text/event-stream", "Cache-Control": "no-cache",
			"X-Accel-Buffering": "no"} {
			if got := r.rec.header.Get(k); got != v {
				t.Errorf("%s: %q, want %q", k, got, v)
			}
		}
		if r.rec.status != 200 {
			t.Errorf("status %d, want 200", r.rec.status)
		}
		if got := r.rec.out.String(); got != ": ok\n\nretry: 3000\n\n" {
			t.Errorf("first bytes %q", got)
		}
		if r.rec.flushes != 1 {
			t.Errorf("%d flushes before any event, want 1", r.rec.flushes)
		}
	})
}

// TestHandover: events published while a replay is under way arrive once, in order, after it.
func TestHandover(t *testing.T) {
	cases := []struct {
		name   string
		ring   int
		cursor string
	}{
		{"from memory", 8, "e1-1"},
		{"from storage", 2, "e1-1"},
		{"first_event oldest from storage", 2, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := newFakeFeed("e1", tc.ring)
				f.publish("a.x", "1", "2", "3", "4", "5")
				n := 0
				f.betweenBatches = func() { // live events while the storage replay goes on
					n++
					f.publish("a.x", "during-"+string(rune('0'+n)))
				}
				f.slots = make(chan struct{}, 1)
				f.slots <- struct{}{} // the replay waits for a slot, meanwhile live events come
				cfg := testConfig(f)
				cfg.FirstEvent = FirstEventOldest
				r := serve(t, f, cfg, Client{LastEventID: tc.cursor})
				f.publish("a.x", "waiting")
				<-f.slots
				synctest.Wait()
				f.publish("a.x", "after")
				synctest.Wait()

				got := r.rec.data()
				var want []string
				if tc.cursor == "" {
					want = append(want, "1")
				}
				want = append(want, "2", "3", "4", "5", "waiting")
				for i := 1; i <= n; i++ {
					want = append(want, "during-"+string(rune('0'+i)))
				}
				want = append(want, "after")
				if !slices.Equal(got, want) {
					t.Fatalf("got %q, want %q", got, want)
				}
				var seqs []uint64
				for _, ev := range r.rec.events() {
					_, seq, _ := eventid.Parse(ev.ID)
					seqs = append(seqs, seq)
				}
				if !slices.IsSorted(seqs) || len(slices.Compact(slices.Clone(seqs))) != len(seqs) {
					t.Fatalf("ids %v not strictly increasing", seqs)
				}
			})
		})
	}
}

// TestWaitingForReplaySlot: a session whose replay waits for a slot still heartbeats and ends on stop, and
// its producer is cancelled.
func TestWaitingForReplaySlot(t *testing.T) {
	cases := []struct {
		name      string
		exiting   bool
		endWithin time.Duration
	}{
		{"exit ends it at once", true, 0},
		{"reload ends it within close_delay", false, 5 * time.Second},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := newFakeFeed("e1", 2)
				f.publish("a.x", "1", "2", "3", "4", "5")
				f.slots = make(chan struct{}, 1)
				f.slots <- struct{}{} // held by someone else for good
				r := serve(t, f, nil, Client{LastEventID: "e1-1"})
				time.Sleep(46 * time.Second)
				synctest.Wait()
				if got := r.rec.heartbeats(); got != 3 {
					t.Fatalf("%d heartbeats in 46s while waiting for a slot, want 3", got)
				}
				r.exiting.Store(tc.exiting)
				close(r.stop)
				start := time.Now()
				if ended, _ := r.ended(); ended != (tc.endWithin == 0) {
					t.Fatalf("ended at once: %v, want %v", ended, tc.endWithin == 0)
				}
				time.Sleep(tc.endWithin)
				ended, err := r.ended()
				if !ended || !errors.Is(err, ErrStopped) {
					t.Fatalf("after %s: ended %v (%v), want ErrStopped", time.Since(start), ended, err)
				}
				// synctest.Test fails if the producer is still waiting for the slot.
			})
		})
	}
}

// TestOverflowDuringReplayEnds: live events that overflow the queue while a replay waits end the session (the
// client reconnects and replays), without waiting for the replay.
func TestOverflowDuringReplayEnds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeFeed("e1", 2)
		f.publish("a.x", "1", "2", "3", "4", "5")
		f.slots = make(chan struct{}, 1)
		f.slots <- struct{}{}
		cfg := testConfig(f)
		cfg.Buffer = 2
		r := serve(t, f, cfg, Client{LastEventID: "e1-1"})
		f.publish("a.x", "6", "7", "8")
		if ended, err := r.ended(); !ended || !errors.Is(err, hub.ErrOverflow) {
			t.Fatalf("ended %v (%v), want ErrOverflow", ended, err)
		}
	})
}

func TestHeartbeatOnlyWhenIdle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeFeed("e1", 8)
		r := serve(t, f, nil, Client{})
		for range 6 {
			time.Sleep(10 * time.Second)
			f.publish("a.x", "busy")
		}
		synctest.Wait()
		if got := r.rec.heartbeats(); got != 0 {
			t.Fatalf("%d heartbeats while an event went out every 10s, want 0", got)
		}
		time.Sleep(15*time.Second - time.Nanosecond)
		synctest.Wait()
		if got := r.rec.heartbeats(); got != 0 {
			t.Fatalf("heartbeat before 15s idle")
		}
		time.Sleep(time.Nanosecond)
		synctest.Wait()
		if got := r.rec.heartbeats(); got != 1 {
			t.Fatalf("%d heartbeats after 15s idle, want 1", got)
		}
	})
}

// TestWaitReady: before the feed knows its position the session heartbeats and subscribes nothing.
func TestWaitReady(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeFeed{hub: hub.New(hub.Config{}), epoch: "e1", first: 1, batchSize: 2}
		r := serve(t, f, nil, Client{})
		time.Sleep(46 * time.Second)
		synctest.Wait()
		if got := r.rec.heartbeats(); got != 3 {
			t.Fatalf("%d heartbeats in 46s while the feed was not ready, want 3", got)
		}
		if n := f.hub.Stats().Subscriptions; n != 0 {
			t.Fatalf("%d subscriptions before ready", n)
		}
		f.hub.Begin("e1", 0)
		synctest.Wait()
		f.publish("a.x", "1")
		synctest.Wait()
		if got := r.rec.data(); !slices.Equal(got, []string{"1"}) {
			t.Fatalf("got %q after ready", got)
		}
	})
}

func TestStop(t *testing.T) {
	t.Run("exit ends live sessions at once", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			r := serve(t, newFakeFeed("e1", 8), nil, Client{})
			r.exiting.Store(true)
			close(r.stop)
			if ended, err := r.ended(); !ended || !errors.Is(err, ErrStopped) {
				t.Fatalf("ended %v (%v), want ErrStopped at once", ended, err)
			}
		})
	})
	t.Run("reload spreads ends over close_delay", func(t *testing.T) {
		var ends []time.Duration
		for range 20 {
			synctest.Test(t, func(t *testing.T) {
				f := newFakeFeed("e1", 8)
				r := serve(t, f, nil, Client{})
				close(r.stop)
				start := time.Now()
				for {
					if ended, err := r.ended(); ended {
						if !errors.Is(err, ErrStopped) {
							t.Fatalf("ended with %v", err)
						}
						break
					}
					f.publish("a.x", "still live") // served until its moment comes
					time.Sleep(100 * time.Millisecond)
				}
				ends = append(ends, time.Since(start))
				if n := len(r.rec.events()); n == 0 && ends[len(ends)-1] > 100*time.Millisecond {
					t.Fatalf("no events served during the close delay")
				}
			})
		}
		slices.Sort(ends)
		if ends[len(ends)-1] > 5*time.Second+100*time.Millisecond || ends[0] == ends[len(ends)-1] {
			t.Fatalf("ends %v: want spread within close_delay 5s", ends)
		}
	})
	t.Run("a gone client ends the session", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			r := serve(t, newFakeFeed("e1", 8), nil, Client{})
			r.cancel()
			if ended, err := r.ended(); !ended || !errors.Is(err, context.Canceled) {
				t.Fatalf("ended %v (%v), want context.Canceled", ended, err)
			}
		})
	})
	t.Run("a failed write ends the session", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			f := newFakeFeed("e1", 8)
			r := serve(t, f, nil, Client{})
			broken := errors.New("broken pipe")
			r.rec.mu.Lock()
			r.rec.writeErr = broken
			r.rec.mu.Unlock()
			f.publish("a.x", "1")
			if ended, err := r.ended(); !ended || !errors.Is(err, broken) {
				t.Fatalf("ended %v (%v), want the write error", ended, err)
			}
		})
	})
}

// TestWriteDeadlines: every write and flush gets a fresh deadline, cleared after it on HTTP/2 and HTTP/3, and
// none at all when Caddy's idle writer sets them.
func TestWriteDeadlines(t *testing.T) {
	cases := []struct {
		name   string
		client Client
		want   func(start time.Time) []time.Time
	}{
		{"HTTP/1", Client{}, func(s time.Time) []time.Time {
			return []time.Time{s.Add(10 * time.Second), s.Add(11 * time.Second)}
		}},
		{"HTTP/2", Client{ClearDeadline: true}, func(s time.Time) []time.Time {
			return []time.Time{s.Add(10 * time.Second), {}, s.Add(11 * time.Second), {}}
		}},
		{"by Caddy", Client{DeadlinesByCaddy: true, ClearDeadline: true}, func(time.Time) []time.Time { return nil }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				start := time.Now()
				f := newFakeFeed("e1", 8)
				r := serve(t, f, nil, tc.client)
				time.Sleep(time.Second)
				f.publish("a.x", "1")
				synctest.Wait()
				if got, want := r.rec.deadlines, tc.want(start); !slices.Equal(got, want) {
					t.Fatalf("deadlines %v, want %v", got, want)
				}
			})
		})
	}
}

// TestReplayWrittenInChunks: a replay goes out as few writes of at most 32 KiB, each flushed.
func TestReplayWrittenInChunks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeFeed("e1", 2)
		f.batchSize = 50
		payload := strings.Repeat("x", 1000)
		var data []string
		for range 100 {
			data = append(data, payload)
		}
		f.publish("a.x", data...)
		r := serve(t, f, nil, Client{LastEventID: "e1-0"})
		if got := len(r.rec.events()); got != 100 {
			t.Fatalf("%d events replayed, want 100", got)
		}
		writes := r.rec.writes[1:] // after the first comment
		total := 0
		for _, n := range writes {
			if n > chunkSize {
				t.Fatalf("write of %d bytes, over %d", n, chunkSize)
			}
			total += n
		}
		if min := (total + chunkSize - 1) / chunkSize; len(writes) > min+2 {
			t.Fatalf("%d writes for %d bytes, want about %d", len(writes), total, min)
		}
		if r.rec.flushes != len(r.rec.writes) {
			t.Fatalf("%d flushes for %d writes", r.rec.flushes, len(r.rec.writes))
		}
	})
}
