package jetstream

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	natsjs "github.com/nats-io/nats.go/jetstream"
)

// arrivalSink records every event the tail gives it and when.
type arrivalSink struct {
	recSink
	mu    sync.Mutex
	times []time.Time
}

func (s *arrivalSink) Publish(seq uint64, subject, eventType string, data []byte) {
	s.recSink.Publish(seq, subject, eventType, data)
	s.mu.Lock()
	s.times = append(s.times, time.Now())
	s.mu.Unlock()
}

// firstAfter is when the first event arrived after t.
func (s *arrivalSink) firstAfter(t time.Time) (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, at := range s.times {
		if at.After(t) {
			return at, true
		}
	}
	return time.Time{}, false
}

// Killing a server of a 3-node cluster (R3 stream) loses nothing and
// resets nothing, whether it led the stream and held the tail's
// connection, led the stream only, or held only the tail's consumer. The
// time from the stream having a leader again to live events arriving is
// logged, not asserted: the machine is shared.
func TestTailFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node cluster")
	}
	tests := []struct {
		name string
		// connectToLeader: the tail connects to the stream leader, else to
		// a follower.
		connectToLeader bool
		// killConsumer: kill the server holding the tail's consumer (made
		// to be another than the tail's connection), else the leader.
		killConsumer bool
	}{
		{"stream leader, holding the tail's connection", true, false},
		{"stream leader, tail connected to a follower", false, false},
		{"server holding only the tail's consumer", false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cl := startCluster(t, 3)
			admin := connect(t, ConnConfig{URLs: cl.urls()})
			waitConnected(t, admin)
			cfg := StreamConfig{Name: "FO", Subjects: []string{"fo.>"}, Replicas: 3, MaxBytes: 64 << 20}
			waitFor(t, "the R3 stream", func() bool { _, err := admin.EnsureStream(ctxFor(t), cfg); return err == nil })
			leader := streamLeader(t, admin, cfg.Name, "")
			var url string
			for name, s := range cl.servers {
				if (name == leader) == tt.connectToLeader {
					url = s.ClientURL()
				}
			}
			c := connect(t, ConnConfig{URLs: []string{url}})
			waitConnected(t, c)

			sink := &arrivalSink{}
			runTail(t, c, TailConfig{Stream: cfg}, sink)
			waitFor(t, "Begin", func() bool { return len(sink.resets()) == 1 })
			victim := leader
			if tt.killConsumer {
				victim = tailConsumerElsewhere(t, admin, cfg.Name, c.nc.ConnectedServerName())
			}

			ctx, stopPublishing := context.WithCancel(context.Background())
			published := make(chan struct{})
			go func() {
				defer close(published)
				for n := 0; ctx.Err() == nil; n++ {
					for ctx.Err() == nil {
						pctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
						_, _, err := admin.Publish(pctx, "fo.x", "", "", []byte(fmt.Sprint(n)))
						cancel()
						if err == nil {
							break
						}
					}
					time.Sleep(20 * time.Millisecond)
				}
			}()
			defer func() { stopPublishing(); <-published }()

			waitFor(t, "events before the kill", func() bool { _, last := sink.Position(); return last >= 20 })
			killedAt := time.Now()
			cl.kill(victim)
			newLeader := streamLeader(t, admin, cfg.Name, victim)
			leaderAt := time.Now()
			waitFor(t, "live events after the kill", func() bool { _, ok := sink.firstAfter(leaderAt); return ok })
			liveAt, _ := sink.firstAfter(leaderAt)
			t.Logf("killed %s (stream leader %s); stream led by %s after %v; live events %v after that",
				victim, leader, newLeader, leaderAt.Sub(killedAt).Round(time.Millisecond), liveAt.Sub(leaderAt).Round(time.Millisecond))

			time.Sleep(500 * time.Millisecond)
			stopPublishing()
			<-published
			st, err := admin.StreamState(ctxFor(t), cfg.Name)
			if err != nil {
				t.Fatal(err)
			}
			waitFor(t, "the tail to reach the stream's end", func() bool { _, last := sink.Position(); return last >= st.LastSeq })
			_, events := sink.snapshot()
			if got := seqs(events); !equalSeqs(got, seqRange(1, st.LastSeq)) {
				t.Errorf("events lost, duplicated or reordered: got %d events for %d messages", len(got), st.LastSeq)
			}
			if resets := sink.resets(); len(resets) != 1 {
				t.Errorf("the sink was reset: %+v", resets)
			}
		})
	}
}

// tailConsumerElsewhere waits until the stream's only consumer, the
// tail's, is placed on another server than connected (deleting it until
// the tail rebuilds it there: R1 consumers go to a random stream peer) and
// returns that server's name.
func tailConsumerElsewhere(t *testing.T, c *Conn, stream, connected string) string {
	t.Helper()
	var server string
	waitFor(t, "the tail's consumer on another server", func() bool {
		s, err := c.js.Stream(ctxFor(t), stream)
		if err != nil {
			return false
		}
		lister := s.ListConsumers(ctxFor(t))
		var infos []*natsjs.ConsumerInfo
		for info := range lister.Info() {
			infos = append(infos, info)
		}
		if len(infos) != 1 || infos[0].Cluster == nil || infos[0].Cluster.Leader == "" {
			return false
		}
		if server = infos[0].Cluster.Leader; server != connected {
			return true
		}
		_ = s.DeleteConsumer(ctxFor(t), infos[0].Name)
		time.Sleep(200 * time.Millisecond)
		return false
	})
	return server
}

// streamLeader waits until the stream has a leader other than not, and
// returns its name.
func streamLeader(t *testing.T, c *Conn, stream, not string) string {
	t.Helper()
	var leader string
	waitFor(t, "a stream leader", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 250*time.Millisecond)
		defer cancel()
		s, err := c.js.Stream(ctx, stream)
		if err != nil {
			return false
		}
		info := s.CachedInfo()
		if info.Cluster == nil {
			return false
		}
		leader = info.Cluster.Leader
		return leader != "" && leader != not
	})
	return leader
}
