package hub

import "errors"

// Reasons a subscription ends (Subscription.Err) and input errors. Callers
// compare with errors.Is: ErrBadPattern is wrapped with the offending pattern.
var (
	// ErrOverflow: the client did not drain its queue in time. It should
	// reconnect and replay from its last id; nothing is lost.
	ErrOverflow = errors.New("hub: subscription queue overflowed")
	// ErrRestarted: the feed restarted (new stream incarnation or a gap), so
	// the live sequence no longer continues what the client has.
	ErrRestarted = errors.New("hub: feed restarted")
	// ErrClosed: the hub or the subscription was closed.
	ErrClosed = errors.New("hub: closed")
	// ErrBadPattern: a subscription pattern is not a valid NATS subject pattern.
	ErrBadPattern = errors.New("hub: invalid subject pattern")
)
