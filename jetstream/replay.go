package jetstream

import (
	"context"
	"time"
)

// Message is one stored event.
type Message struct {
	Seq       uint64
	Subject   string
	EventType string
	Data      []byte
	// Prepared is what ReplayRequest.Prepare made of this event; nil without it. A shared read prepares each
	// event once and hands every client the same value.
	Prepared any
}

// ReplayRequest selects stored events: those matching any of Filters with
// After < seq <= Upto.
type ReplayRequest struct {
	Stream string
	// Epoch is the stream incarnation the caller's cursor belongs to. A read
	// that finds another incarnation (the stream was deleted and created
	// again) fails with ErrStreamChanged instead of returning the new
	// stream's events under the old meaning of their sequences. Empty skips
	// the check.
	Epoch       string
	Filters     []string // subject patterns; none means every subject
	After, Upto uint64
	Limit       int // more than Limit matching events after After → ErrTooMany; 0 = no limit
	EventHeader string
	// Prepare, if set, is called once for each event read, on the reading goroutine, before any caller's fn
	// sees it; its result is the event's Prepared. It lets work that is the same for every client (encoding
	// the frame) be done once per read instead of once per client. It must depend only on the event and the
	// request's sharing key (Epoch, EventHeader): requests that share a read use the first one's Prepare.
	Prepare func(Message) any
}

const (
	replayBatch        = 128 // messages per fetch, and per call of a replay's callback
	replayInactive     = time.Minute
	replayFetchWait    = 2 * time.Second
	replayEmptyRetries = 3 // empty fetches tolerated while the consumer says more is pending
	replayReopens      = 5 // consumer rebuilds in a row without progress before giving up
	readerDropTimeout  = 5 * time.Second
)

// Replay calls fn, in sequence order, with batches of the events matching
// the request. It reads with a short-lived ephemeral consumer, deleted when
// done. Each read from JetStream takes one of the connection's replay slots
// (waiting for one within ctx) and gives it back before fn runs, so a client
// that is slow to take its events never holds a slot. A fn error aborts the
// replay and is returned as is.
//
// Concurrent calls for the same range (same After, filters, incarnation,
// limit and event header) share one read from JetStream; see sharedReplay.
// The batches fn gets may be shared with other callers: fn must not modify
// them.
//
// Every read proves its own continuity: events lost in flight are read
// again, and a jump in stream sequences is checked against the stream's
// head and limits (see historyLost). The errors: ErrStreamChanged when the
// stream is not the incarnation req.Epoch names; ErrBeyondEnd when After is
// past the stream's last sequence; ErrHistoryGone when events after After
// have expired or been purged, before fn is called or after the events
// that precede the hole; ErrTooMany, before fn is called, when more than
// Limit matching events follow After.
func (c *Conn) Replay(ctx context.Context, req ReplayRequest, fn func([]Message) error) error {
	return c.sharedReplay(ctx, req, fn)
}

// privateReplay is one caller's own read of the range.
func (c *Conn) privateReplay(ctx context.Context, req ReplayRequest, fn func([]Message) error) error {
	r := &rangeReader{conn: c, req: req, next: req.After + 1, strictHead: true}
	defer r.close()
	for {
		batch, done, err := r.readBatch(ctx)
		prepare(req.Prepare, batch)
		if len(batch) > 0 {
			if ferr := fn(batch); ferr != nil {
				return ferr
			}
		}
		if err != nil || done {
			return err
		}
	}
}

// prepare fills in the Prepared of each message of batch, when there is a Prepare.
func prepare(fn func(Message) any, batch []Message) {
	if fn == nil {
		return
	}
	for i := range batch {
		batch[i].Prepared = fn(batch[i])
	}
}
