package jetstream

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"
)

func TestRetry(t *testing.T) {
	notAvailable := &natsjs.APIError{Code: 503, ErrorCode: 10008, Description: "JetStream system temporarily unavailable"}
	permanent := errors.New("permission denied")
	errStop := errors.New("stopped")
	// Each step is what the attempt with that index does; attempts past
	// the last step succeed.
	type step struct {
		err  error
		hang bool // never answers until cancelled
	}
	tests := []struct {
		name     string
		steps    []step
		stopped  bool
		want     error
		attempts int
		within   time.Duration // time until retry returns, on the fake clock
	}{
		{"first attempt answers", nil, false, nil, 1, 0},
		{"503 then no responders, then an answer", []step{{err: notAvailable}, {err: nats.ErrNoResponders}}, false, nil, 3, 150 * time.Millisecond},
		{"an error retrying cannot fix", []step{{err: permanent}}, false, permanent, 1, 0},
		{"an unanswered attempt is hedged", []step{{hang: true}}, false, nil, 2, hedgeAfter},
		{"several unanswered attempts", []step{{hang: true}, {hang: true}, {hang: true}}, false, nil, 4, 3 * hedgeAfter},
		{"timeouts then an answer", []step{{err: context.DeadlineExceeded}, {err: nats.ErrTimeout}}, false, nil, 3, 150 * time.Millisecond},
		{"stop ends the retries", []step{{err: notAvailable}}, true, errStop, 1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var calls, failures atomic.Int32
				r := retrier{onRetry: func(n int, _ error) { failures.Store(int32(n)) }}
				if tt.stopped {
					r.stop = func() error { return errStop }
				}
				began := time.Now()
				v, err := retry(context.Background(), r, func(ctx context.Context) (int, error) {
					i := int(calls.Add(1)) - 1
					if i < len(tt.steps) {
						if tt.steps[i].hang {
							<-ctx.Done()
							return 0, ctx.Err()
						}
						return 0, tt.steps[i].err
					}
					return 42, nil
				})
				took := time.Since(began)
				if !errors.Is(err, tt.want) || (err == nil && v != 42) {
					t.Fatalf("retry = %v, %v; want 42, %v", v, err, tt.want)
				}
				synctest.Wait() // cancelled attempts finish
				if got := int(calls.Load()); got != tt.attempts {
					t.Errorf("%d attempts, want %d", got, tt.attempts)
				}
				if took > tt.within {
					t.Errorf("took %v, want at most %v", took, tt.within)
				}
			})
		})
	}
}

// An attempt that never answers does not hold up a later one that does,
// and retry stops when its context ends.
func TestRetryContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, err := retry(ctx, retrier{}, func(ctx context.Context) (int, error) {
			<-ctx.Done()
			return 0, ctx.Err()
		})
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("retry = %v, want the context's deadline", err)
		}
	})
}

func TestTransient(t *testing.T) {
	tests := []struct {
		err  error
		want bool
	}{
		{context.DeadlineExceeded, true},
		{nats.ErrTimeout, true},
		{nats.ErrNoResponders, true},
		{&natsjs.APIError{Code: 503, ErrorCode: 10008}, true},
		{natsjs.ErrJetStreamNotEnabled, true},
		{natsjs.ErrStreamNotFound, false},
		{context.Canceled, false},
		{ErrNotConnected, false},
		{errors.New("other"), false},
	}
	for _, tt := range tests {
		if got := transient(tt.err); got != tt.want {
			t.Errorf("transient(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}
