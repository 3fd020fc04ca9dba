package session

import (
	"net/http"
	"sync"
	"time"

	"github.com/caddy-sse/caddy-sse/eventid"
	"github.com/caddy-sse/caddy-sse/hub"
	"github.com/caddy-sse/caddy-sse/sse"
)

// chunkSize is how many bytes of frames are sent as one write and flush. Every Write on a server's response
// may go through a middleware chain and reset deadlines, so a replay of a thousand frames sent as a few 32 KiB
// writes costs far less than a thousand writes; and a long replay never holds much in buffers.
const chunkSize = 32 << 10

// chunkPool holds the buffers frames are gathered in. A session takes one only while it writes, so idle
// sessions hold none.
var chunkPool = sync.Pool{New: func() any {
	b := make([]byte, 0, chunkSize)
	return &b
}}

// wire writes frames to one client: gathered into chunks, each written and flushed under a fresh deadline.
// Only the session's own goroutine uses it.
type wire struct {
	w                http.ResponseWriter
	rc               *http.ResponseController
	timeout          time.Duration
	clearDeadline    bool
	deadlinesByCaddy bool

	chunk     *[]byte   // frames waiting to be sent together; from chunkPool, held only while writing
	scratch   []byte    // frames written once: comments, retry, reset, stored events
	lastWrite time.Time // when bytes last went out, for heartbeats
}

func newWire(w http.ResponseWriter, timeout time.Duration, c *Client) wire {
	return wire{
		w:                w,
		rc:               http.NewResponseController(w),
		timeout:          timeout,
		clearDeadline:    c.ClearDeadline,
		deadlinesByCaddy: c.DeadlinesByCaddy,
	}
}

// writeEvents sends queued or replayed events and flushes.
func (o *wire) writeEvents(events []*hub.Event) error {
	if len(events) == 1 && o.chunk == nil {
		return o.send(events[0].Frame) // the common live case: nothing to gather
	}
	for _, ev := range events {
		if err := o.write(ev.Frame); err != nil {
			return err
		}
	}
	return o.flush()
}

// writeMessages encodes stored events with ids of epoch, sends them and flushes.
func (o *wire) writeMessages(epoch string, msgs []Message) error {
	for _, m := range msgs {
		o.scratch = sse.AppendEvent(o.scratch[:0], eventid.Format(epoch, m.Seq), m.Type, m.Data)
		if err := o.write(o.scratch); err != nil {
			return err
		}
	}
	return o.flush()
}

// write adds frame bytes to the pending chunk, sending the chunk first when p would overflow it.
func (o *wire) write(p []byte) error {
	if len(p) >= chunkSize { // a large frame goes out as it is, after what is pending
		if err := o.sendPending(); err != nil {
			return err
		}
		return o.send(p)
	}
	if o.chunk == nil {
		o.chunk = chunkPool.Get().(*[]byte)
	}
	if len(*o.chunk)+len(p) > chunkSize {
		if err := o.sendPending(); err != nil {
			return err
		}
	}
	*o.chunk = append(*o.chunk, p...)
	return nil
}

// writeNow writes p and everything pending, and flushes.
func (o *wire) writeNow(p []byte) error {
	if o.chunk == nil {
		return o.send(p)
	}
	if err := o.write(p); err != nil {
		return err
	}
	return o.flush()
}

// flush sends the pending chunk and gives its buffer back.
func (o *wire) flush() error {
	err := o.sendPending()
	if o.chunk != nil {
		chunkPool.Put(o.chunk)
		o.chunk = nil
	}
	return err
}

func (o *wire) sendPending() error {
	if o.chunk == nil || len(*o.chunk) == 0 {
		return nil
	}
	err := o.send(*o.chunk)
	*o.chunk = (*o.chunk)[:0]
	return err
}

// send writes p and flushes it under a fresh write deadline, so a client that stops reading is cut off after
// the write timeout.
func (o *wire) send(p []byte) error {
	if len(p) == 0 {
		return nil
	}
	now := time.Now()
	ownDeadline := !o.deadlinesByCaddy && o.timeout > 0
	if ownDeadline {
		// ErrNotSupported (e.g. some wrapping writers) leaves the server's own timeouts in charge.
		_ = o.rc.SetWriteDeadline(now.Add(o.timeout))
	}
	if _, err := o.w.Write(p); err != nil {
		return err
	}
	if err := o.rc.Flush(); err != nil {
		return err
	}
	if ownDeadline && o.clearDeadline {
		_ = o.rc.SetWriteDeadline(time.Time{})
	}
	o.lastWrite = now
	return nil
}
