package session

import "context"

// producer reads history and hands it to fn batch by batch; it runs on its own goroutine.
type producer func(ctx context.Context, fn func(Batch) error) (Source, error)

type replayResult struct {
	source Source
	err    error
}

// replay runs produce on its own goroutine and writes the batches it hands over, here, on the session's
// goroutine. While the feed waits for a scarce resource (a JetStream replay slot) or reads, the session keeps
// heartbeating and still ends on stop, exit or a gone client: ending cancels the producer. Each batch is
// written before the producer gets the next, so a replay is paced by the client and never passes through the
// subscription's bounded queue.
func (s *session) replay(produce producer) error {
	ctx, cancel := context.WithCancel(s.ctx)
	defer cancel()
	batches := make(chan Batch)
	written := make(chan struct{}, 1)
	result := make(chan replayResult, 1)
	go func() {
		source, err := produce(ctx, func(b Batch) error {
			select {
			case batches <- b:
			case <-ctx.Done():
				return ctx.Err()
			}
			select {
			case <-written:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
		result <- replayResult{source, err}
	}()
	for {
		w, err := s.next(awaited{batches: batches, result: result, ended: s.sub.Done()})
		if err != nil {
			return err
		}
		if w.result != nil {
			return s.finishReplay(*w.result)
		}
		if err := s.writeBatch(*w.batch); err != nil {
			if reason, ok := resetReason(err); ok {
				return s.reset(reason)
			}
			return err
		}
		written <- struct{}{}
	}
}

// writeBatch writes one batch of replayed events.
func (s *session) writeBatch(b Batch) error {
	// Events from memory are of the subscription's incarnation only while it is open: the hub ends
	// subscriptions before its history moves on.
	if err := s.sub.Err(); err != nil {
		return err
	}
	if b.Epoch != s.epoch {
		return Reset(ReasonStreamChanged, nil)
	}
	if len(b.Events) > 0 {
		if err := s.out.writeEvents(b.Events); err != nil {
			return err
		}
	}
	if len(b.Messages) > 0 {
		return s.out.writeMessages(b.Epoch, b.Messages)
	}
	return nil
}

// finishReplay turns the producer's answer into a reset event where history cannot be honoured.
func (s *session) finishReplay(r replayResult) error {
	if reason, ok := resetReason(r.err); ok {
		return s.reset(reason)
	}
	if r.err != nil {
		return r.err
	}
	if r.source != "" && s.cfg.Hooks.Replayed != nil {
		s.cfg.Hooks.Replayed(r.source)
	}
	return s.out.flush()
}
