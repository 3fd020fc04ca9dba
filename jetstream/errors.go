package jetstream

import "errors"

// Errors a caller is expected to tell apart. The replay errors all mean the
// same thing to a client: its cursor cannot be honoured and it gets a reset.
var (
	// ErrHistoryGone: the events after the cursor were expired, evicted or
	// purged from the stream.
	ErrHistoryGone = errors.New("jetstream: history after the cursor is gone")

	// ErrTooMany: more matching events follow the cursor than the replay limit.
	ErrTooMany = errors.New("jetstream: too many events to replay")

	// ErrBeyondEnd: the cursor is past the stream's last sequence (a cursor
	// from another incarnation or a forged id).
	ErrBeyondEnd = errors.New("jetstream: cursor is beyond the end of the stream")

	// ErrStreamChanged: the stream is not the incarnation the cursor belongs
	// to: it was deleted and created again, and its sequences mean other
	// events now.
	ErrStreamChanged = errors.New("jetstream: the stream was recreated since the cursor was written")

	// ErrNoStream: the stream does not exist, or no stream captures a subject
	// being published to.
	ErrNoStream = errors.New("jetstream: no such stream")

	// ErrNotConnected: the NATS connection is down (reconnecting) or closed.
	// Reads fail fast with it instead of waiting for a reconnect.
	ErrNotConnected = errors.New("jetstream: not connected to NATS")

	// ErrNoLeader: a stream captures the subject but did not answer the
	// publish; in a cluster, it has no leader (an election is under way).
	ErrNoLeader = errors.New("jetstream: the stream did not answer (no leader?)")

	// ErrUnavailable: JetStream is not enabled or not answering (in a
	// cluster, the meta leader may be in an election).
	ErrUnavailable = errors.New("jetstream: JetStream is not available")

	// ErrPublishTimeout: no acknowledgement in time. The event may or may
	// not have been stored.
	ErrPublishTimeout = errors.New("jetstream: no acknowledgement in time")

	// ErrTooLarge: the stream refuses messages of this size.
	ErrTooLarge = errors.New("jetstream: message larger than the stream allows")
)
