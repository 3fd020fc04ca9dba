// Package session serves one client's event stream from its first byte to its end: headers and the first
// comment, waiting for the feed, the resume decision, replay, the handover to live delivery, heartbeats and the
// end on stop. It is driven by an http.ResponseWriter, a Feed (the only way to events) and a Config.
//
// The package is plain Go: it imports neither Caddy nor NATS. Its timers use the time package directly, so its
// tests run them under testing/synctest.
package session
