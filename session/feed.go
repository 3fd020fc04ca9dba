package session

import (
	"context"
	"errors"

	"github.com/caddy-sse/caddy-sse/hub"
)

// Feed is where a session gets its events: the live subscription and the history behind it. The feed decides
// whether history comes from memory or from storage (JetStream); the session never reaches past it.
type Feed interface {
	// Ready is closed once the feed knows the stream's position; before that no subscription can be made.
	Ready() <-chan struct{}

	// Subscribe registers a live subscription and returns the handover point: every matching event with
	// Seq > last is queued on sub, none with Seq <= last ever is.
	Subscribe(patterns []string, queueSize int) (sub *hub.Subscription, last uint64, err error)

	// Replay calls fn, in order, with batches of the events matching req in (req.After, req.Upto], or from
	// the stream's first event when req.FromOldest. It reports where it read them from. A cursor that cannot be
	// honoured is a *ResetError. fn's error ends the replay and is returned as is.
	Replay(ctx context.Context, req ReplayRequest, fn func(Batch) error) (Source, error)

	// LastN calls fn, in order, with the n most recent events matching req with Seq <= req.Upto (req.After
	// is ignored).
	LastN(ctx context.Context, req ReplayRequest, n int, fn func(Batch) error) error

	// CheckAhead is asked about a cursor past the handover point. nil means the stream holds seq in epoch
	// (another node is ahead of this one); otherwise a *ResetError says why it is not honoured.
	CheckAhead(ctx context.Context, epoch string, seq uint64) error
}

// ReplayRequest selects history for one session.
type ReplayRequest struct {
	// Epoch is the stream incarnation the session's ids belong to (its subscription's). A read of another
	// incarnation is a stream-changed reset.
	Epoch       string
	Patterns    []string
	After, Upto uint64 // the range (After, Upto]
	FromOldest  bool   // start at the stream's first stored event instead of After
	Limit       int    // more matching events than this is a too-many-events reset; 0: no limit
}

// Batch is a run of replayed events, in order, read from one stream incarnation.
type Batch struct {
	// Epoch is the incarnation the feed read; the ids of Messages are written with it.
	Epoch string
	// Events come from memory with their frames encoded once for every client. They are valid only while the
	// session's subscription is open (the hub ends subscriptions before its history moves to a new position).
	Events []*hub.Event
	// Messages come from storage and are encoded by the session.
	Messages []Message
}

// Message is one stored event read from storage.
type Message struct {
	Seq  uint64
	Type string // the SSE event field; empty for the default "message"
	Data []byte
}

// Source says where a replay's events came from, for metrics.
type Source string

const (
	SourceMemory  Source = "memory"
	SourceStorage Source = "jetstream"
)

// Reason is a documented reason carried by a reset event's data, {"reason":"..."}.
type Reason string

const (
	ReasonMalformedID    Reason = "malformed-id"    // Last-Event-ID is not an id this server wrote
	ReasonStreamChanged  Reason = "stream-changed"  // the stream was deleted and recreated since the id was written
	ReasonHistoryExpired Reason = "history-expired" // events after the id were removed (age, size limits, purge)
	ReasonIDBeyondEnd    Reason = "id-beyond-end"   // the id is past the last event of the stream
	ReasonTooManyEvents  Reason = "too-many-events" // more events would be replayed than the limit allows
)

// ResetError is a feed's answer when a cursor cannot be honoured: the session sends one reset event with
// Reason and continues live.
type ResetError struct {
	Reason Reason
	Err    error // the underlying cause, if any
}

func (e *ResetError) Error() string {
	if e.Err != nil {
		return "session: reset " + string(e.Reason) + ": " + e.Err.Error()
	}
	return "session: reset " + string(e.Reason)
}

func (e *ResetError) Unwrap() error { return e.Err }

// Reset returns a *ResetError for reason, wrapping cause (which may be nil).
func Reset(reason Reason, cause error) error { return &ResetError{Reason: reason, Err: cause} }

// resetReason reports the reason of a *ResetError in err's chain.
func resetReason(err error) (Reason, bool) {
	var r *ResetError
	if errors.As(err, &r) {
		return r.Reason, true
	}
	return "", false
}
