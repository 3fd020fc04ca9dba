package session

import (
	"context"
	"sync"

	"github.com/caddy-sse/caddy-sse/hub"
	"github.com/caddy-sse/caddy-sse/subject"
)

// fakeFeed is a Feed on a real hub, with a slice standing in for the JetStream stream. The hub is fed from
// the slice by dispatch, so the stream can be ahead of the node the way a real one can.
type fakeFeed struct {
	hub *hub.Hub

	mu         sync.Mutex
	epoch      string // the stored stream's incarnation
	stored     []storedEvent
	first      uint64 // first stored sequence; earlier ones expired
	dispatched int    // how many stored events the hub has been given

	// slots, when set, is taken by every storage read and LastN, like JetStream's replay slots; a test that
	// holds it makes sessions wait.
	slots chan struct{}
	// batchSize is how many stored events one storage batch holds.
	batchSize int
	// betweenBatches, when set, runs on the producer's goroutine after each batch was written.
	betweenBatches func()
	// batchEpoch, when set, overrides the epoch storage batches say they were read from.
	batchEpoch string
}

type storedEvent struct {
	seq                uint64
	subject, typ, data string
}

// newFakeFeed returns a ready feed at epoch whose hub keeps ringSize recent events.
func newFakeFeed(epoch string, ringSize int) *fakeFeed {
	f := &fakeFeed{hub: hub.New(hub.Config{RingSize: ringSize}), epoch: epoch, first: 1, batchSize: 2}
	f.hub.Begin(epoch, 0)
	return f
}

// store adds events to the stream without dispatching them; it returns the last sequence.
func (f *fakeFeed) store(subject string, data ...string) uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, d := range data {
		f.stored = append(f.stored, storedEvent{seq: uint64(len(f.stored)) + 1, subject: subject, data: d})
	}
	return uint64(len(f.stored))
}

// dispatch hands every stored event the hub has not seen to the hub, as the tail does.
func (f *fakeFeed) dispatch() {
	f.mu.Lock()
	todo := f.stored[f.dispatched:]
	f.dispatched = len(f.stored)
	f.mu.Unlock()
	for _, e := range todo {
		f.hub.Publish(e.seq, e.subject, e.typ, []byte(e.data))
	}
}

// publish stores and dispatches.
func (f *fakeFeed) publish(subject string, data ...string) uint64 {
	last := f.store(subject, data...)
	f.dispatch()
	return last
}

func (f *fakeFeed) Ready() <-chan struct{} { return f.hub.Ready() }

func (f *fakeFeed) Subscribe(patterns []string, queueSize int) (*hub.Subscription, uint64, error) {
	return f.hub.Subscribe(patterns, queueSize)
}

func (f *fakeFeed) Replay(ctx context.Context, req ReplayRequest, fn func(Batch) error) (Source, error) {
	if req.FromOldest {
		f.mu.Lock()
		req.After = f.first - 1
		f.mu.Unlock()
	}
	if req.After >= req.Upto {
		return "", nil
	}
	events, covered, over := f.hub.Since(nil, req.Patterns, req.After, req.Upto, req.Limit)
	if covered {
		if over {
			return SourceMemory, Reset(ReasonTooManyEvents, nil)
		}
		return SourceMemory, fn(Batch{Epoch: req.Epoch, Events: events})
	}
	release, err := f.takeSlot(ctx)
	if err != nil {
		return SourceStorage, err
	}
	f.mu.Lock()
	var msgs []Message
	switch {
	case f.epoch != req.Epoch:
		err = Reset(ReasonStreamChanged, nil)
	case req.After > uint64(len(f.stored)):
		err = Reset(ReasonIDBeyondEnd, nil)
	case req.After+1 < f.first:
		err = Reset(ReasonHistoryExpired, nil)
	default:
		msgs = f.matching(req.Patterns, req.After, req.Upto)
		if req.Limit > 0 && len(msgs) > req.Limit {
			err = Reset(ReasonTooManyEvents, nil)
		}
	}
	epoch := f.epoch
	if f.batchEpoch != "" {
		epoch = f.batchEpoch
	}
	f.mu.Unlock()
	release() // no slot is held while the client is written to
	if err != nil {
		return SourceStorage, err
	}
	return SourceStorage, f.sendBatches(epoch, msgs, fn)
}

func (f *fakeFeed) LastN(ctx context.Context, req ReplayRequest, n int, fn func(Batch) error) error {
	if events, covered := f.hub.Last(nil, req.Patterns, n, req.Upto); covered {
		return fn(Batch{Epoch: req.Epoch, Events: events})
	}
	release, err := f.takeSlot(ctx)
	if err != nil {
		return err
	}
	f.mu.Lock()
	msgs := f.matching(req.Patterns, f.first-1, req.Upto)
	epoch := f.epoch
	f.mu.Unlock()
	release()
	if epoch != req.Epoch {
		return Reset(ReasonStreamChanged, nil)
	}
	return f.sendBatches(epoch, msgs[max(len(msgs)-n, 0):], fn)
}

func (f *fakeFeed) CheckAhead(ctx context.Context, epoch string, seq uint64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case epoch != f.epoch:
		return Reset(ReasonStreamChanged, nil)
	case seq > uint64(len(f.stored)):
		return Reset(ReasonIDBeyondEnd, nil)
	}
	return nil
}

func (f *fakeFeed) takeSlot(ctx context.Context) (func(), error) {
	if f.slots == nil {
		return func() {}, nil
	}
	select {
	case f.slots <- struct{}{}:
		return func() { <-f.slots }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// matching returns the stored events in (after, upto] of patterns; f.mu is held.
func (f *fakeFeed) matching(patterns []string, after, upto uint64) []Message {
	var out []Message
	for _, e := range f.stored {
		if e.seq <= after || e.seq > upto || e.seq < f.first {
			continue
		}
		for _, p := range patterns {
			if subject.Match(p, e.subject) {
				out = append(out, Message{Seq: e.seq, Type: e.typ, Data: []byte(e.data)})
				break
			}
		}
	}
	return out
}

func (f *fakeFeed) sendBatches(epoch string, msgs []Message, fn func(Batch) error) error {
	for len(msgs) > 0 {
		n := min(f.batchSize, len(msgs))
		if err := fn(Batch{Epoch: epoch, Messages: msgs[:n]}); err != nil {
			return err
		}
		msgs = msgs[n:]
		if f.betweenBatches != nil {
			f.betweenBatches()
		}
	}
	return nil
}
