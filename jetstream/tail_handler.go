package jetstream

import (
	"context"
	"fmt"
	"sync"
	"time"

	natsjs "github.com/nats-io/nats.go/jetstream"
)

// tailHandler receives the consumer's messages and errors.
type tailHandler struct {
	tail  *tail
	ctx   context.Context
	epoch string

	mu       sync.Mutex // held while calling the sink
	stopped  bool
	last     uint64      // stream sequence of the last message given to the sink
	lastRead time.Time   // its timestamp
	dseq     uint64      // consumer delivery sequence of the last message seen
	state    StreamState // the stream's state as last read, for its limits
	failed   chan error
}

// remember hands the handler's position to the tail for the next run.
func (h *tailHandler) remember() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.tail.lastSeq, h.tail.lastRead = h.last, h.lastRead
}

func (h *tailHandler) handle(msg natsjs.Msg) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.stopped {
		return
	}
	md, err := msg.Metadata()
	if err != nil {
		h.failLocked(err)
		return
	}
	// With AckNone a message lost in flight is never redelivered; a jump in
	// the delivery sequence shows it, and the rebuild reads it again.
	if md.Sequence.Consumer != h.dseq+1 {
		h.failLocked(fmt.Errorf("%w: expected delivery %d, got %d", errDeliveryGap, h.dseq+1, md.Sequence.Consumer))
		return
	}
	h.dseq = md.Sequence.Consumer
	seq := md.Sequence.Stream
	if seq <= h.last {
		return
	}
	if seq != h.last+1 {
		if err := h.checkGap(); err != nil {
			h.failLocked(err)
			return
		}
	}
	var eventType string
	if name := h.tail.cfg.EventHeader; name != "" {
		eventType = msg.Headers().Get(name)
	}
	h.tail.sink.Publish(seq, msg.Subject(), eventType, msg.Data())
	h.last, h.lastRead = seq, md.Timestamp
}

// checkGap decides whether skipped sequences are harmless (deleted or
// superseded messages, see historyLost) or mean lost history: JetStream
// silently moves past expired messages, and a recreated stream restarts its
// sequences. On a KV-style stream whose limits make every head move
// harmless, nearly every message may be a gap: the last state read answers
// then, without a request per message (the periodic check trims).
func (h *tailHandler) checkGap() error {
	if headMovesAreHarmless(h.state, h.lastRead, time.Now()) {
		return nil
	}
	ctx, cancel := context.WithTimeout(h.ctx, tailCheckTimeout)
	defer cancel()
	st, err := h.tail.conn.StreamState(ctx, h.tail.cfg.Stream.Name)
	switch {
	case err != nil:
		return err
	case st.Epoch != h.epoch:
		return errStreamRecreated
	case historyLost(st, h.last, h.lastRead, time.Now()):
		return errHistoryExpired
	}
	h.observeLocked(st)
	return nil
}

// observe records a state read of the stream and passes its first
// sequence to the sink, unless the handler has stopped.
func (h *tailHandler) observe(st StreamState) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.observeLocked(st)
}

func (h *tailHandler) observeLocked(st StreamState) {
	if h.stopped {
		return
	}
	h.state = st
	h.tail.sink.Trim(st.FirstSeq)
}

func (h *tailHandler) fail(err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.failLocked(err)
}

func (h *tailHandler) failLocked(err error) {
	if h.stopped {
		return
	}
	h.stopped = true
	h.failed <- err // cap 1, and only the first failure gets here
}

// stop ends consuming; once it returns the sink is not called again.
func (h *tailHandler) stop(cc natsjs.ConsumeContext) {
	h.mu.Lock()
	h.stopped = true
	h.mu.Unlock()
	cc.Stop()
	// Wait for the library's goroutines so none outlive the tail.
	select {
	case <-cc.Closed():
	case <-time.After(tailStopTimeout):
	}
}
