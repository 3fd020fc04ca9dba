package caddysse

import (
	"net/http"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/caddy-sse/caddy-sse/hub"
)

// chunkSize is how many bytes of frames are sent as one write and flush. Every Write on a Caddy response goes
// through the middleware chain and resets deadlines, so a replay of a thousand frames sent as a few 32 KiB
// writes costs far less than a thousand writes; and a long replay never holds much in buffers.
const chunkSize = 32 << 10

// chunkPool holds the buffers frames are gathered in. A connection takes one only while it writes, so idle
// streams hold none.
var chunkPool = sync.Pool{New: func() any {
	b := make([]byte, 0, chunkSize)
	return &b
}}

// writeEvents sends queued or replayed events: gathered into chunks, each written and flushed once.
func (c *sseConn) writeEvents(events []*hub.Event) error {
	if len(events) == 1 && c.chunk == nil {
		return c.send(events[0].Frame) // the common live case: nothing to gather
	}
	for _, ev := range events {
		if err := c.write(ev.Frame); err != nil {
			return err
		}
	}
	return c.flush()
}

// write adds frame bytes to the pending chunk, sending the chunk first when p would overflow it.
func (c *sseConn) write(p []byte) error {
	if len(p) >= chunkSize { // a large frame goes out as it is, after what is pending
		if err := c.sendPending(); err != nil {
			return err
		}
		return c.send(p)
	}
	if c.chunk == nil {
		c.chunk = chunkPool.Get().(*[]byte)
	}
	if len(*c.chunk)+len(p) > chunkSize {
		if err := c.sendPending(); err != nil {
			return err
		}
	}
	*c.chunk = append(*c.chunk, p...)
	return nil
}

// writeNow writes p and everything pending, and flushes.
func (c *sseConn) writeNow(p []byte) error {
	if c.chunk == nil {
		return c.send(p)
	}
	if err := c.write(p); err != nil {
		return err
	}
	return c.flush()
}

// flush sends the pending chunk and gives its buffer back.
func (c *sseConn) flush() error {
	err := c.sendPending()
	if c.chunk != nil {
		chunkPool.Put(c.chunk)
		c.chunk = nil
	}
	return err
}

func (c *sseConn) sendPending() error {
	if c.chunk == nil || len(*c.chunk) == 0 {
		return nil
	}
	err := c.send(*c.chunk)
	*c.chunk = (*c.chunk)[:0]
	return err
}

// send writes p and flushes it under a fresh write deadline, so a client that stops reading is cut off after
// WriteTimeout.
func (c *sseConn) send(p []byte) error {
	if len(p) == 0 {
		return nil
	}
	now := time.Now()
	if !c.deadlinesByCaddy {
		// ErrNotSupported (e.g. some wrapping writers) leaves the server's own timeouts in charge.
		_ = c.rc.SetWriteDeadline(now.Add(time.Duration(c.h.WriteTimeout)))
	}
	if _, err := c.w.Write(p); err != nil {
		return err
	}
	if err := c.rc.Flush(); err != nil {
		return err
	}
	if c.clearDeadline && !c.deadlinesByCaddy {
		_ = c.rc.SetWriteDeadline(time.Time{})
	}
	c.lastWrite = now
	return nil
}

// caddyIdleWriter finds Caddy's idle-timeout writer under w: Caddy wraps every response in one unless the
// server's write_idle_timeout is disabled, and the timeouts directive publishes its own in the context.
func caddyIdleWriter(r *http.Request, w http.ResponseWriter) *caddyhttp.IdleTimeoutWriter {
	if _, iw := caddyhttp.IdleTimeoutsFromContext(r.Context()); iw != nil {
		return iw
	}
	for {
		switch t := w.(type) {
		case *caddyhttp.IdleTimeoutWriter:
			return t
		case interface{ Unwrap() http.ResponseWriter }:
			w = t.Unwrap()
		default:
			return nil
		}
	}
}
