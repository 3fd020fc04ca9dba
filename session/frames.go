package session

import (
	"math/rand/v2"
	"time"

	"github.com/caddy-sse/caddy-sse/sse"
)

// What a session writes besides events, shared by sessions on their request and taken-over ones.

// appendHeartbeat appends a heartbeat: a comment, or with HeartbeatEvent a named event without an id (a page
// sees it; its Last-Event-ID stays as it is).
func (cfg *Config) appendHeartbeat(b []byte) []byte {
	if cfg.HeartbeatEvent == "" {
		return sse.AppendComment(b, "")
	}
	return sse.AppendEvent(b, "", cfg.HeartbeatEvent, nil)
}

// appendFinal appends what the caller wants sent last when it ends the session (Client.Final): a retry delay
// and an event, each if set.
func (c *Client) appendFinal(b []byte) []byte {
	if c.Final == nil {
		return b
	}
	event, data, retry := c.Final()
	if retry > 0 {
		b = sse.AppendRetry(b, retry)
	}
	if event != "" {
		b = sse.AppendEvent(b, "", event, data)
	}
	return b
}

// stopDelay is how long a session goes on once Stop is closed: 0 (end at once) on exit or without
// CloseDelay, else a random part of CloseDelay, so reconnects to the new config are spread out.
func (cfg *Config) stopDelay() time.Duration {
	if (cfg.Exiting != nil && cfg.Exiting()) || cfg.CloseDelay <= 0 {
		return 0
	}
	return rand.N(cfg.CloseDelay) + time.Millisecond
}
