package jetstream

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
)

// Prepare runs once per event read, not once per client: clients of one shared read get the very same
// prepared value for each event, and a lone client gets its events prepared too.
func TestReplayPreparesEachEventOnce(t *testing.T) {
	_, c := inProcess(t)
	ensure(t, c, testStream("PR", "pr.>"))
	fillStream(t, c, 600, "pr.a")

	for _, tt := range []struct {
		name    string
		clients int
		after   uint64 // each case its own range: a lingering read of another case is not joined
	}{{"alone", 1, 100}, {"shared", 40, 50}} {
		t.Run(tt.name, func(t *testing.T) {
			var calls atomic.Int64
			prep := func(m Message) any {
				calls.Add(1)
				return &m // a value of its own per call: identity tells one preparation from another
			}
			var mu sync.Mutex
			seen := map[uint64]any{} // seq -> the prepared value the first client got
			start := make(chan struct{})
			var wg sync.WaitGroup
			errs := make(chan error, tt.clients)
			for range tt.clients {
				wg.Go(func() {
					<-start
					n := 0
					err := c.Replay(ctxFor(t), ReplayRequest{Stream: "PR", After: tt.after, Upto: 600, Prepare: prep},
						func(batch []Message) error {
							for _, m := range batch {
								p, ok := m.Prepared.(*Message)
								if !ok || p.Seq != m.Seq {
									return fmt.Errorf("seq %d: prepared %v", m.Seq, m.Prepared)
								}
								mu.Lock()
								if first, ok := seen[m.Seq]; !ok {
									seen[m.Seq] = p
								} else if first != any(p) {
									n++ // prepared again for this client: counted below
								}
								mu.Unlock()
							}
							return nil
						})
					if err == nil && n > 0 {
						err = fmt.Errorf("%d events prepared again for one client", n)
					}
					errs <- err
				})
			}
			close(start)
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Fatal(err)
				}
			}
			if want := int(600 - tt.after); len(seen) != want || calls.Load() != int64(want) {
				t.Fatalf("%d events seen, %d preparations; want %d of each", len(seen), calls.Load(), want)
			}
		})
	}
}
