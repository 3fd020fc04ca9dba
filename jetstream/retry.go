package jetstream

import (
	"context"
	"errors"
	"math/rand/v2"
	"net/http"
	"time"

	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"
)

// A JetStream request during a leader election either fails at once (503,
// "JetStream system temporarily unavailable", no responders) or is not
// answered at all. So a request is tried with a short deadline and retried
// soon, rather than given one long deadline that outlasts the election.
const (
	attemptTimeout    = time.Second     // deadline of the first attempts...
	attemptTimeoutMax = 4 * time.Second // ...doubling every third attempt up to this, for a slow server
	retryWaitMin      = 50 * time.Millisecond
	retryWaitMax      = time.Second // keeps a retry within about a second of the cluster answering again
)

// retrier repeats one request until it succeeds.
type retrier struct {
	// stop ends the retries early with its error when it returns one (the
	// connection was lost, for instance).
	stop    func() error
	onRetry func(attempt int, err error) // called before waiting to retry
}

// do calls op until it succeeds, fails with an error that is not
// transient (returned as is), stop says to give up, or ctx ends.
func (r retrier) do(ctx context.Context, op func(ctx context.Context) error) error {
	wait := retryWaitMin
	for attempt := 0; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, attemptDeadline(attempt))
		err := op(actx)
		cancel()
		switch {
		case err == nil:
			return nil
		case ctx.Err() != nil:
			return ctx.Err()
		}
		if r.stop != nil {
			if serr := r.stop(); serr != nil {
				return serr
			}
		}
		if !transient(err) {
			return err
		}
		if r.onRetry != nil {
			r.onRetry(attempt, err)
		}
		if !sleepCtx(ctx, jitter(wait)) {
			return ctx.Err()
		}
		wait = min(2*wait, retryWaitMax)
	}
}

func attemptDeadline(attempt int) time.Duration {
	return min(attemptTimeout<<(attempt/3), attemptTimeoutMax)
}

// transient reports whether err is what JetStream answers while it cannot
// serve a request for now: no answer in time, no responders, or a 503 API
// error (no leader yet: JSClusterNotAvail, err_code 10008).
func transient(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) || errors.Is(err, nats.ErrNoResponders) {
		return true
	}
	var apiErr *natsjs.APIError
	return errors.As(err, &apiErr) && apiErr.Code == http.StatusServiceUnavailable
}

// jitter spreads d over [d/2, d) so that nodes restarted together do not
// retry in lockstep.
func jitter(d time.Duration) time.Duration {
	if d < 2 {
		return d
	}
	return d/2 + rand.N(d/2)
}

// sleepCtx waits for d; false when ctx ended first.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-ctx.Done():
		return false
	}
}
