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
// answered at all. One long deadline outlasts the election; short
// deadlines alone starve a slow server. So an attempt may take
// attemptTimeout, but when it has not answered after hedgeAfter another
// one starts beside it, and the first answer wins: a request is answered
// within about hedgeAfter of JetStream serving again, and a slow server
// still gets to answer.
const (
	attemptTimeout = 4 * time.Second
	hedgeAfter     = 500 * time.Millisecond
	maxInFlight    = 4 // attempts running at once
	retryWaitMin   = 50 * time.Millisecond
	retryWaitMax   = 500 * time.Millisecond // after a failed attempt, when none is in flight
)

// retrier says when retries of one request end early, and what to do on
// each failed attempt.
type retrier struct {
	// stop, called after a failed attempt, ends the retries with its error
	// when it returns one (the connection was lost, for instance).
	stop    func() error
	onRetry func(failures int, err error) // after each transient failure; failures counts them
}

// retry calls op until an attempt succeeds, one fails with an error that
// is not transient (returned as is), r.stop says to give up, or ctx ends.
// op must be idempotent: attempts may overlap. Attempts still running when
// retry returns are cancelled.
func retry[T any](ctx context.Context, r retrier, op func(context.Context) (T, error)) (T, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type result struct {
		v   T
		err error
	}
	results := make(chan result, maxInFlight) // never blocks an attempt
	inFlight, failures := 0, 0
	launch := func() {
		inFlight++
		go func() {
			actx, cancel := context.WithTimeout(ctx, attemptTimeout)
			defer cancel()
			v, err := op(actx)
			results <- result{v, err}
		}()
	}
	hedge := time.NewTimer(hedgeAfter)
	defer hedge.Stop()
	launch()
	wait := retryWaitMin
	var zero T
	for {
		select {
		case <-ctx.Done():
			return zero, ctx.Err()
		case <-hedge.C:
			if inFlight < maxInFlight {
				launch()
			}
			hedge.Reset(hedgeAfter)
		case res := <-results:
			inFlight--
			if res.err == nil {
				return res.v, nil
			}
			if ctx.Err() != nil {
				return zero, ctx.Err()
			}
			if r.stop != nil {
				if err := r.stop(); err != nil {
					return zero, err
				}
			}
			if !transient(res.err) {
				return zero, res.err
			}
			failures++
			if r.onRetry != nil {
				r.onRetry(failures, res.err)
			}
			if inFlight > 0 {
				continue // the hedge timer starts the next one
			}
			if !sleepCtx(ctx, jitter(wait)) {
				return zero, ctx.Err()
			}
			wait = min(2*wait, retryWaitMax)
			launch()
			hedge.Reset(hedgeAfter)
		}
	}
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
