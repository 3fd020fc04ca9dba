// Package jetstream connects caddy-sse to NATS JetStream: an optional
// embedded nats-server, a connection that rides out outages, stream setup,
// the live tail that feeds a hub, and replay reads for reconnecting
// clients.
//
// The tail is one consumer per stream per process, always started at a
// known sequence (the sink's position + 1, or the stream's end after a
// reset), never "deliver new", and rebuilt from its own position after any
// trouble. It detects the two cases where JetStream would otherwise carry
// on silently: a deleted and recreated stream (its creation time, the
// epoch, changes and sequences restart at 1) and expired history (the
// stream's first sequence moved past the sink's position, and no
// per-subject limit explains it: see historyLost). Both end in Sink.Begin,
// which makes the hub reset its clients instead of leaving a gap. Whatever
// leaves the head of the stream (purges, deletes, expiry, supersession) is
// passed on with Sink.Trim, so the hub stops replaying it from memory.
//
// Replays use short-lived ephemeral consumers (no acks, memory storage,
// deleted when done) bounded by a per-connection semaphore. Nothing here
// imports Caddy.
package jetstream
