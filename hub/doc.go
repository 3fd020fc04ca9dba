// Package hub fans events out from one feed (the JetStream tail) to many
// SSE clients.
//
// Each event's SSE frame is encoded once and the same bytes are shared by
// every client. Subscriptions select events by NATS subject pattern through a
// token trie, so dispatch cost follows the number of matching subscriptions,
// not the total. Every subscription has a bounded queue: a client that
// falls behind is dropped with ErrOverflow instead of slowing the feed, and it
// recovers by reconnecting and replaying. A ring of recent events serves most
// replays without going back to JetStream.
//
// The package is plain Go: it imports neither Caddy nor NATS, only the shared vocabulary (subject, sse,
// eventid).
package hub
