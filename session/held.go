package session

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/caddy-sse/caddy-sse/hub"
)

// held is the live phase of a taken-over session. It has no goroutine of its own: the subscription, its
// timers, the route's stop and the client's end each schedule it on the writer pool, and whichever writer
// picks it up does what is due. Only that writer (or the goroutine writing a slow client's rest) touches the
// connection and the fields below the atomics; the state machine makes sure there is one at a time.
type held struct {
	cfg    *Config
	client *Client
	conn   *rawConn
	sub    *hub.Subscription

	state  atomic.Int32
	due    atomic.Uint32         // dueHeartbeat: the heartbeat timer fired
	endErr atomic.Pointer[error] // why it must end; the first reason wins

	heartbeat *time.Timer
	lifetime  *time.Timer
	stopEnd   func() bool // unregisters the watch on Client.End
	lastWrite time.Time   // when bytes last went out, for heartbeats
	rest      []byte      // what a full socket did not take, written by writeRest
}

// The states of a held session. Only the goroutine that moved it to heldRunning leaves that state.
const (
	heldIdle     int32 = iota // nothing to do
	heldQueued                // in the writer pool's queue
	heldRunning               // a writer (or writeRest) is on it
	heldRerun                 // running, and something new came up meanwhile
	heldFinished              // ended; nothing more happens
)

const dueHeartbeat = 1

// chunkEnd closes an HTTP/1.1 chunk; lastChunk ends a chunked body.
const (
	chunkEnd  = "\r\n"
	lastChunk = "0\r\n\r\n"
	// chunkHead is the room kept in front of a chunk's data for its size line (hex digits and CRLF).
	chunkHead = 18
)

// maxScratch bounds a writer's buffer between uses: one client's big backlog must not keep its size.
const maxScratch = 1 << 20

// schedule makes sure a writer will look at h soon. It never blocks: the hub calls it while publishing.
func (h *held) schedule() {
	for {
		switch h.state.Load() {
		case heldIdle:
			if h.state.CompareAndSwap(heldIdle, heldQueued) {
				pool().push(h)
				return
			}
		case heldRunning:
			if h.state.CompareAndSwap(heldRunning, heldRerun) {
				return
			}
		default: // already queued, already told, or over
			return
		}
	}
}

// release hands h back after a run; if something came up meanwhile it is queued again (behind the others).
func (h *held) release() {
	if h.state.CompareAndSwap(heldRunning, heldIdle) {
		return
	}
	if h.state.CompareAndSwap(heldRerun, heldQueued) {
		pool().push(h)
	}
}

// requestEnd asks for the session to end with err, from any goroutine.
func (h *held) requestEnd(err error) {
	h.endErr.CompareAndSwap(nil, &err)
	h.schedule()
}

// serve runs on a writer: everything due, written as one chunk without waiting for the socket.
func (h *held) serve(w *writerScratch) {
	h.state.Store(heldRunning)
	if errp := h.endErr.Load(); errp != nil {
		h.end(*errp)
		return
	}
	if err := h.sub.Err(); err != nil { // overflow, restart, close: the client reconnects and resumes
		h.end(err)
		return
	}
	b := append(w.buf[:0], make([]byte, chunkHead)...)
	w.events = h.sub.Drain(w.events[:0])
	for _, ev := range w.events {
		b = append(b, ev.Frame...)
	}
	clear(w.events) // let the history free old frames
	now := time.Now()
	if h.due.Swap(0)&dueHeartbeat != 0 {
		b = h.heartbeatDue(b, now)
	}
	if len(b) > chunkHead {
		chunk := frameChunk(b)
		n, err := h.conn.tryWrite(chunk)
		switch {
		case err != nil:
			h.end(connError{err})
		case n < len(chunk):
			h.rest = append([]byte(nil), chunk[n:]...)
			go h.writeRest()
		default:
			h.lastWrite = now
		}
		if err != nil || n < len(chunk) {
			w.keep(b)
			return
		}
	}
	w.keep(b)
	h.release()
}

// heartbeatDue runs when the heartbeat timer fired: a heartbeat goes into b if nothing was written for a
// whole interval, and the timer is armed for the next interval after the last write.
func (h *held) heartbeatDue(b []byte, now time.Time) []byte {
	interval := h.cfg.Heartbeat
	if len(b) > chunkHead { // events go out now
		h.heartbeat.Reset(interval)
		return b
	}
	if idle := now.Sub(h.lastWrite); idle < interval {
		h.heartbeat.Reset(interval - idle)
		return b
	}
	h.heartbeat.Reset(interval)
	return h.cfg.appendHeartbeat(b)
}

// writeRest writes what a full socket did not take, on a goroutine of its own and under the write timeout,
// so that only this client waits for its socket. The session is running meanwhile: what comes up is served
// after it.
func (h *held) writeRest() {
	if t := h.cfg.WriteTimeout; t > 0 {
		_ = h.conn.SetWriteDeadline(time.Now().Add(t))
	}
	_, err := h.conn.Write(h.rest)
	h.rest = nil
	if err != nil {
		h.end(connError{err})
		return
	}
	_ = h.conn.SetWriteDeadline(time.Time{}) // a raw write checks the deadline too
	h.lastWrite = time.Now()
	h.release()
}

// end finishes the session: it says goodbye as the session on its request would have (the caller's final
// event, the end of the chunked body) unless the connection itself failed, and closes the connection.
func (h *held) end(err error) {
	h.state.Store(heldFinished)
	if h.heartbeat != nil {
		h.heartbeat.Stop()
	}
	if h.lifetime != nil {
		h.lifetime.Stop()
	}
	if h.stopEnd != nil {
		h.stopEnd()
	}
	h.sub.Close()
	var gone connError
	if errors.As(err, &gone) {
		_ = h.conn.Close()
	} else {
		h.goodbye(errors.Is(err, ErrEnded))
	}
	h.cfg.held.remove(h) // after the goodbye: an exit waits for it (DrainTakenOver)
	if h.cfg.Hooks.Ended != nil {
		h.cfg.Hooks.Ended(h.client, err)
	}
	if h.client.Ended != nil {
		h.client.Ended(err)
	}
}

// goodbye writes the last bytes (with the caller's final event when it ended the session) and closes the
// connection; what a full socket does not take now gets the write timeout on a goroutine of its own.
func (h *held) goodbye(byCaller bool) {
	b := make([]byte, chunkHead, 256)
	if byCaller {
		b = h.client.appendFinal(b)
	}
	var last []byte
	if len(b) > chunkHead {
		last = frameChunk(b)
	}
	last = append(last, lastChunk...)
	n, err := h.conn.tryWrite(last)
	if err != nil || n == len(last) {
		_ = h.conn.Close()
		return
	}
	go func() {
		if t := h.cfg.WriteTimeout; t > 0 {
			_ = h.conn.SetWriteDeadline(time.Now().Add(t))
		}
		_, _ = h.conn.Write(last[n:])
		_ = h.conn.Close()
	}()
}

// watchClient notices the client leaving: it reads (and ignores) whatever the client sends until the
// connection fails or is closed. It is the only goroutine a held session keeps, and a shallow one.
func (h *held) watchClient() {
	var b [64]byte
	for {
		if _, err := h.conn.Read(b[:]); err != nil {
			h.requestEnd(connError{err})
			return
		}
	}
}

// stopSeen ends the session on its route's stop: at once on exit, at a random moment within CloseDelay on
// a reload, as sessions on their requests do.
func (h *held) stopSeen() {
	d := h.cfg.stopDelay()
	if d == 0 {
		h.requestEnd(ErrStopped)
		return
	}
	time.AfterFunc(d, func() { h.requestEnd(ErrStopped) })
}

// watchEnd ends the session when the caller ends it (Client.End).
func (h *held) watchEnd(end context.Context) {
	h.stopEnd = context.AfterFunc(end, func() { h.requestEnd(ErrEnded) })
}

// frameChunk fills in the size line in front of b's data (b starts with chunkHead bytes of room) and closes
// the chunk; it returns the chunk, a suffix of b.
func frameChunk(b []byte) []byte {
	size := len(b) - chunkHead
	i := chunkHead - 2
	b[i], b[i+1] = '\r', '\n'
	for {
		i--
		b[i] = "0123456789abcdef"[size&0xf]
		size >>= 4
		if size == 0 {
			break
		}
	}
	return append(b, chunkEnd...)[i:]
}

// keep gives the writer's buffer back for the next session, unless one big backlog grew it too much.
func (w *writerScratch) keep(b []byte) {
	if cap(b) <= maxScratch {
		w.buf = b[:0]
	} else {
		w.buf = nil
	}
}

// connError is the connection failing (the client left, or a write failed): nothing more can be written.
type connError struct{ err error }

func (e connError) Error() string { return "session: connection: " + e.err.Error() }
func (e connError) Unwrap() error { return e.err }
