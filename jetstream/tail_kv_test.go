package jetstream

import (
	"fmt"
	"strings"
	"testing"
	"time"

	natsjs "github.com/nats-io/nats.go/jetstream"
)

// publishBurst publishes n messages to subject without waiting for each
// ack, then waits for all of them; it returns the last sequence.
func publishBurst(t *testing.T, c *Conn, subject string, n int) uint64 {
	t.Helper()
	futures := make([]natsjs.PubAckFuture, 0, n)
	for i := range n {
		f, err := c.js.PublishAsync(subject, []byte(fmt.Sprint(i)))
		if err != nil {
			t.Fatalf("PublishAsync: %v", err)
		}
		futures = append(futures, f)
	}
	select {
	case <-c.js.PublishAsyncComplete():
	case <-time.After(waitLong):
		t.Fatal("async publishes not acknowledged")
	}
	var last uint64
	for _, f := range futures {
		select {
		case ack := <-f.Ok():
			last = max(last, ack.Sequence)
		case err := <-f.Err():
			t.Fatalf("publish: %v", err)
		}
	}
	return last
}

// On a KV-style stream (MaxMsgsPerSubject) a message superseded before the
// tail reads it is normal: the tail neither resets the sink nor jumps to the
// end, and the newest value of each burst reaches it.
func TestTailKVStreamSupersessionIsNotLoss(t *testing.T) {
	tests := []struct {
		name string
		cfg  natsjs.StreamConfig
		// limitsSuffice: the stream's limits alone show that supersession
		// is harmless, so gaps cost no request to the server.
		limitsSuffice bool
	}{
		{"one per subject", natsjs.StreamConfig{Name: "KV1", Subjects: []string{"kv1.>"}, MaxMsgsPerSubject: 1}, true},
		{"three per subject, with an age limit", natsjs.StreamConfig{Name: "KV3", Subjects: []string{"kv3.>"}, MaxMsgsPerSubject: 3, MaxAge: time.Hour}, true},
		{"one per subject, far from a message limit", natsjs.StreamConfig{Name: "KVM", Subjects: []string{"kvm.>"}, MaxMsgsPerSubject: 1, MaxMsgs: 1 << 20}, false},
	}
	const bursts, perBurst = 5, 2000
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, subject := userStream(t, tt.cfg)
			sink := &recSink{}
			runTail(t, c, TailConfig{Stream: StreamConfig{Name: tt.cfg.Name}}, sink)
			waitFor(t, "Begin", func() bool { return len(sink.resets()) == 1 })
			epoch, _ := sink.Position()
			apiBefore := apiRequests(t, c)

			var lasts []uint64
			for range bursts {
				last := publishBurst(t, c, subject, perBurst)
				lasts = append(lasts, last)
				waitFor(t, "the tail to reach the burst's end", func() bool { _, p := sink.Position(); return p >= last })
			}
			begins, events := sink.snapshot()
			requests := apiRequests(t, c) - apiBefore - 1
			t.Logf("%d events reached the sink, %d Begin calls, %d JetStream API requests", len(events), len(begins), requests)
			// A few for the tail's periodic check, none per superseded message.
			if tt.limitsSuffice && requests > 10 {
				t.Errorf("%d JetStream API requests during the bursts: the tail asks the server about every gap", requests)
			}
			if resets := sink.resets(); len(resets) != 1 {
				t.Errorf("the sink was reset %d times after the first Begin: %+v", len(resets)-1, resets[1:])
			}
			for _, last := range lasts {
				if !sink.hasEvent(epoch, last) {
					t.Errorf("the newest message of a burst, %d, did not reach the sink", last)
				}
			}
			for i := 1; i < len(events); i++ {
				if events[i].Seq <= events[i-1].Seq {
					t.Fatalf("events out of order: %d after %d", events[i].Seq, events[i-1].Seq)
				}
			}
		})
	}
}

// A sink position behind the first sequence of a KV-style stream is a
// resume: what the sink missed was superseded, and the tail reads on from
// the stream's first message instead of restarting at its end.
func TestTailBeginResumesBehindKVHead(t *testing.T) {
	tests := []struct {
		name      string
		cfg       natsjs.StreamConfig
		wantReset bool
	}{
		{"KV style", natsjs.StreamConfig{Name: "KVB", Subjects: []string{"kvb.>"}, MaxMsgsPerSubject: 1, MaxAge: time.Hour}, false},
		{"no per-subject limit, purged head", natsjs.StreamConfig{Name: "PLB", Subjects: []string{"plb.>"}}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, subject := userStream(t, tt.cfg)
			for n := 1; n <= 10; n++ {
				publish(t, c, subject, "", fmt.Sprint(n))
			}
			if tt.cfg.MaxMsgsPerSubject == 0 {
				if err := jsStream(t, c, tt.cfg.Name).Purge(ctxFor(t), natsjs.WithPurgeKeep(1)); err != nil {
					t.Fatal(err)
				}
			}
			st, err := c.StreamState(ctxFor(t), tt.cfg.Name)
			if err != nil {
				t.Fatal(err)
			}
			if st.FirstSeq != 10 {
				t.Fatalf("stream holds from %d, want 10", st.FirstSeq)
			}
			sink := &recSink{epoch: st.Epoch, last: 2}
			runTail(t, c, TailConfig{Stream: StreamConfig{Name: tt.cfg.Name}}, sink)
			waitFor(t, "Begin", func() bool { b, _ := sink.snapshot(); return len(b) > 0 })
			publish(t, c, subject+"2", "", "11")
			waitFor(t, "event 11", func() bool { return sink.hasEvent(st.Epoch, 11) })

			begins, events := sink.snapshot()
			want, wantSeqs := beginCall{st.Epoch, 2, true}, []uint64{10, 11}
			if tt.wantReset {
				want, wantSeqs = beginCall{st.Epoch, 10, false}, []uint64{11}
			}
			if len(begins) != 1 || begins[0] != want {
				t.Errorf("Begin calls %+v, want [%+v]", begins, want)
			}
			if got := seqs(events); !equalSeqs(got, wantSeqs) {
				t.Errorf("published %v, want %v", got, wantSeqs)
			}
		})
	}
}

// apiRequests is the number of JetStream API requests the account has made.
func apiRequests(t *testing.T, c *Conn) uint64 {
	t.Helper()
	info, err := c.js.AccountInfo(ctxFor(t))
	if err != nil {
		t.Fatal(err)
	}
	return info.API.Total
}

// userStream starts a server holding a stream created as an app would (not
// by caddy-sse) and returns a connection and a subject the stream captures.
func userStream(t *testing.T, cfg natsjs.StreamConfig) (*Conn, string) {
	t.Helper()
	_, c := inProcess(t)
	if _, err := c.js.CreateStream(ctxFor(t), cfg); err != nil {
		t.Fatal(err)
	}
	return c, strings.TrimSuffix(cfg.Subjects[0], ">") + "key"
}
