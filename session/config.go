package session

import (
	"context"
	"errors"
	"net"
	"time"
)

// FirstEvent is what a client without a Last-Event-ID gets before live events.
type FirstEvent int

const (
	FirstEventNew    FirstEvent = iota // live events only
	FirstEventOldest                   // all stored history, within ReplayLimit
	FirstEventLast                     // the FirstEventCount most recent events
)

// Config is shared by every session of one route. The caller applies defaults; zero durations here mean
// "never" (Heartbeat, WriteTimeout) or "at once" (CloseDelay).
type Config struct {
	Feed Feed

	Retry        time.Duration // sent once per session as retry:
	Heartbeat    time.Duration // idle time before a comment is sent
	WriteTimeout time.Duration // bound on every write and flush
	CloseDelay   time.Duration // on a reload, sessions end at a random moment within it
	Buffer       int           // live events that may wait for one client
	ReplayLimit  int           // most events replayed on one reconnect; 0: no limit

	FirstEvent      FirstEvent
	FirstEventCount int
	ResetEvent      string // event type of the reset event

	MaxLifetime    time.Duration // a session ends after about this long (±10%, so clients do not return in step); 0: never
	HeartbeatEvent string        // heartbeats are this named event without an id instead of a comment; empty: comments
	ConnectEvent   string        // sent once, without an id, when the session opens; empty: none

	// Stop is closed when the route's config is retired or the process exits. Exiting, asked then, says
	// which: an exit ends sessions at once, a reload spreads their ends over CloseDelay.
	Stop    <-chan struct{}
	Exiting func() bool

	Hooks Hooks

	held heldSet // the sessions of this route that were taken over (TakeOver), for Stop
}

// Hooks let the caller count and log what sessions do, without this package knowing how. Nil hooks are skipped.
type Hooks struct {
	Replayed func(Source)               // a replay was written in full
	Reset    func(c *Client, r Reason)  // a reset event was sent
	Ended    func(c *Client, err error) // the session ended, and why
	// TakenOver: the session left its request and is now held by the writer pool (Client.TakeOver).
	TakenOver func(c *Client)
}

// Client is one request's part of a session.
type Client struct {
	Patterns    []string // the subjects this client may receive
	LastEventID string   // its resume point; empty for none
	Remote      string   // for the caller's logs

	// ClearDeadline removes the write deadline after each flush. On HTTP/2 and HTTP/3 a write deadline is a
	// timer that resets the stream when it fires, even with no write in flight; on HTTP/1 it only bounds the
	// next write.
	ClearDeadline bool
	// DeadlinesByCaddy: the server already sets WriteTimeout around every write and flush (Caddy's idle-timeout
	// writer), so the session sets none of its own.
	DeadlinesByCaddy bool

	// End, when done, ends the session for a reason of the caller's (a newer connection with the same key
	// replaced it, an operator closed it). Final, if set, gives the last event to send first, and the retry
	// delay to ask for (0: leave the client's as it is). Nil End: the caller never ends the session.
	End   context.Context
	Final func() (event string, data []byte, retry time.Duration)

	// TakeOver, if set, is asked once the session goes live with everything written so far flushed: it takes
	// the connection over from the HTTP server (an HTTP/1.1 hijack after the response head, chunked framing
	// still owed) or returns an error, and the session stays on its request. A taken-over session is held by
	// a small pool of writers instead of its request's goroutine and buffers; Serve returns ErrTakenOver at
	// once, and Ended reports the real end. The connection must be a plain TCP connection (CanTakeOver).
	TakeOver func() (net.Conn, error)
	// Ended, if set, is called once with why the session ended, on whichever goroutine ends it.
	Ended func(err error)

	takenOver bool
}

// TakenOver reports whether the session was taken over (see TakeOver); it is set before Hooks.TakenOver runs.
func (c *Client) TakenOver() bool { return c.takenOver }

// endDone is the channel the session selects on for End; nil (never ready) without one.
func (c *Client) endDone() <-chan struct{} {
	if c.End == nil {
		return nil
	}
	return c.End.Done()
}

// Why a session ended, besides the client leaving or falling behind.
var (
	// ErrStopped: the route's config is retired or the process is exiting.
	ErrStopped = errors.New("session: stopping")
	// ErrLifetime: the session reached Config.MaxLifetime.
	ErrLifetime = errors.New("session: lifetime reached")
	// ErrEnded: the caller ended Client.End.
	ErrEnded = errors.New("session: ended by the caller")
	// ErrTakenOver is what Serve returns for a session that goes on without its request (Client.TakeOver).
	ErrTakenOver = errors.New("session: taken over")
)

// lifetimeJitter spreads MaxLifetime ends over ±10%.
const lifetimeJitter = 0.1
