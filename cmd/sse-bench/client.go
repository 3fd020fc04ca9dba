package main

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/caddy-sse/caddy-sse/internal/sseclient"
)

// client is one lean SSE connection: one goroutine, one small bufio reader,
// raw HTTP/1.1 over net.Dial, and the EventSource reconnect rule (send the
// last event id back as Last-Event-ID).
type client struct {
	f      *localFleet
	idx    int // global index across all processes
	dialer *net.Dialer
	slow   bool // stops reading in the slow scenario

	p   *sseclient.Parser
	seq seqTracker
	br  *bufio.Reader
	buf []byte // h2c, h2, h3: the read buffer

	mu    sync.Mutex
	conn  streamConn
	local sockKey

	contig        atomic.Int64 // every number up to this was received
	maxSeen       atomic.Int64 // copies of seq's counters for reports from other goroutines
	gap           atomic.Int64
	everOpen      atomic.Bool
	stalled       atomic.Bool
	cut           atomic.Bool
	cutAfter      atomic.Int64 // ns from the stall to the server letting go
	fullAfter     atomic.Int64 // ns from the stall to the server's send queue last growing, +1; 0 = not seen
	sendq         atomic.Int64 // the server's largest send queue seen, bytes
	roundAttempts atomic.Int32 // connection attempts in the current round
	caughtAt      atomic.Int64 // ns from round start to reaching the target, +1; 0 = not yet
	admittedAt    atomic.Int64 // ns from round start to the first admitted stream of the round, +1; 0 = not yet
	roundTurned   atomic.Int32 // turned-away answers in the current round
	received      int64        // events received, on any connection (only the client's goroutine touches it)
	// The first gap this client saw open (an event number jumped over), for the report's samples: lo..hi
	// missing at that moment, on the attempt-th connection of the round; 0 = none.
	holeLo, holeHi, holeAttempt atomic.Int64
}

var errStalled = errors.New("stalled on purpose")

// run connects and reads until the fleet ends. Unexpected disconnects are
// counted and followed by a reconnect with Last-Event-ID.
func (c *client) run() {
	f := c.f
	defer f.wg.Done()
	first := true
	for {
		if !f.waitGate() {
			return
		}
		if c.stalled.Load() {
			// Asked to stall while not connected: the server holds nothing.
			c.cut.Store(true)
			return
		}
		if first {
			select {
			case f.sem <- struct{}{}:
			case <-f.ctx.Done():
				return
			}
		}
		start := time.Now()
		c.roundAttempts.Add(1)
		f.attempts.Add(1)
		conn, b, err := c.connect()
		if first {
			<-f.sem
		}
		if err != nil {
			if f.ctx.Err() != nil {
				return
			}
			f.failures.Add(1)
			f.noteErr(err)
			if !sleepCtx(f.ctx, jitter(f.cfg.Backoff)) {
				return
			}
			continue
		}
		if retryAfter(b) >= 0 {
			// Turned away (over a connect rate or a cap): come back when the server said, like a browser.
			wait := c.turnedAway(conn, b)
			_ = conn.Close()
			if !sleepCtx(f.ctx, wait) {
				return
			}
			continue
		}
		if first {
			f.connectH.record(int64(time.Since(start)))
		} else {
			f.reconnectH.record(int64(time.Since(start)))
			f.reconnects.Add(1)
		}
		first = false
		if !c.attach(conn) {
			_ = conn.Close()
			continue
		}
		if f.target.Load() > 0 && c.admittedAt.Load() == 0 {
			c.admittedAt.Store(time.Now().UnixNano() - f.roundStart.Load() + 1)
		}
		c.everOpen.Store(true)
		f.open.Add(1)
		err = c.stream(b)
		if errors.Is(err, errStalled) {
			c.awaitCut()
		}
		c.detach()
		_ = conn.Close()
		f.open.Add(-1)
		if errors.Is(err, errStalled) || f.ctx.Err() != nil {
			return
		}
		if f.dropped.Load() {
			continue
		}
		f.disconnects.Add(1)
		f.noteErr(err)
		if !sleepCtx(f.ctx, jitter(f.cfg.Backoff)) {
			return
		}
	}
}

// connect opens the client's stream: on h2c, h2 and h3 through its fleet's shared connections, otherwise on
// a connection of its own, dialed from this client's source address (over TLS for h1tls), where it sends the
// request and reads the response head.
func (c *client) connect() (streamConn, streamBody, error) {
	f := c.f
	if f.mux != nil {
		return f.mux.open(c)
	}
	conn, err := c.dialer.DialContext(f.ctx, "tcp", f.cfg.Addr)
	if err != nil {
		return nil, nil, err
	}
	f.dials.Add(1)
	_ = conn.SetDeadline(time.Now().Add(f.cfg.DialTimeout))
	if f.tls != nil {
		tc := tls.Client(conn, f.tls)
		if err := tc.Handshake(); err != nil {
			_ = conn.Close()
			return nil, nil, err
		}
		conn = tc
	}
	req := sseclient.AppendRequest(make([]byte, 0, 256), f.cfg.Target, f.cfg.Host, c.p.LastID())
	if _, err := conn.Write(req); err != nil {
		_ = conn.Close()
		return nil, nil, err
	}
	if c.br == nil {
		c.br = bufio.NewReaderSize(conn, f.cfg.ReadBuf)
	} else {
		c.br.Reset(conn)
	}
	b, err := sseclient.ReadResponse(c.br, "Retry-After")
	if err != nil {
		_ = conn.Close()
		return nil, nil, err
	}
	_ = conn.SetDeadline(time.Time{})
	c.p.Reset()
	return conn, &b, nil
}

// turnedAway reads a turned-away answer to its end, as an EventSource does with any stream, and returns how
// long to wait before coming back: the stream's retry field (what a browser obeys), else its Retry-After
// header. The answer must end at once and carry no events; one that does not is counted as malformed (the
// events it did carry still go through the sequence check).
func (c *client) turnedAway(conn streamConn, b streamBody) time.Duration {
	f := c.f
	head := time.Now()
	if d, ok := conn.(interface{ SetReadDeadline(time.Time) error }); ok {
		_ = d.SetReadDeadline(head.Add(f.cfg.DialTimeout))
	}
	received := c.received
	err := c.stream(b)
	ended := time.Since(head)
	wait := time.Duration(retryAfter(b)) * time.Second
	var bad []string
	if ms := c.p.StreamRetry(); ms >= 0 {
		wait = time.Duration(ms) * time.Millisecond
	} else {
		bad = append(bad, "no retry field")
	}
	if !errors.Is(err, io.EOF) {
		bad = append(bad, fmt.Sprintf("did not end at once (%v after %s)", err, ended.Round(time.Millisecond)))
	}
	if c.received != received {
		bad = append(bad, fmt.Sprintf("carried %d events", c.received-received))
	}
	if len(bad) > 0 {
		f.turnAwayBad.Add(1)
		f.noteErr(errors.New("turned-away answer: " + strings.Join(bad, ", ")))
	}
	f.turnAways.Add(1)
	c.roundTurned.Add(1)
	f.turnAwayEndH.record(int64(ended))
	f.turnAwayRetryH.record(int64(wait))
	return wait
}

// retryAfter is the response's Retry-After header in seconds, -1 when absent. On a 200 event stream it marks
// a turned-away answer: the server asks the client to come back later (its stream ends at once). Only
// delta-seconds: an HTTP date is not something the servers measured here send.
func retryAfter(b streamBody) int {
	v := b.Header("Retry-After")
	if v == "" || strings.Trim(v, "0123456789") != "" {
		return -1
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return -1
	}
	return n
}

// attach publishes the connection so drop and stall can reach it; it refuses
// when the fleet was dropped meanwhile.
func (c *client) attach(conn streamConn) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.f.dropped.Load() {
		return false
	}
	c.conn = conn
	if nc, ok := conn.(net.Conn); ok {
		c.local = keyOf(nc.LocalAddr())
	}
	return true
}

func (c *client) detach() {
	c.mu.Lock()
	c.conn = nil
	c.mu.Unlock()
}

// interrupt makes a blocked Read return now (used by stall).
func (c *client) interrupt() {
	c.mu.Lock()
	if nc, ok := c.conn.(net.Conn); ok {
		_ = nc.SetReadDeadline(time.Unix(1, 0))
	}
	c.mu.Unlock()
}

// closeConn ends the current connection (used by drop).
func (c *client) closeConn() {
	c.mu.Lock()
	if c.conn != nil {
		_ = c.conn.Close()
	}
	c.mu.Unlock()
}

func (c *client) stream(b streamBody) error {
	for {
		if c.stalled.Load() {
			return errStalled
		}
		p, err := b.Next()
		if c.stalled.Load() {
			return errStalled
		}
		if len(p) > 0 {
			c.p.Feed(p)
		}
		if err != nil {
			return err
		}
	}
}

// awaitCut keeps the socket open, unread, until the server lets go of it.
func (c *client) awaitCut() {
	f := c.f
	c.mu.Lock()
	local := c.local
	c.mu.Unlock()
	w := f.watcher.add(f.ctx, local)
	select {
	case <-w.done:
		stall := f.stallStart.Load()
		c.cutAfter.Store(time.Now().UnixNano() - stall)
		if !w.grownAt.IsZero() {
			c.fullAfter.Store(max(w.grownAt.UnixNano()-stall, 0) + 1)
			c.sendq.Store(int64(w.sendq))
		}
		c.cut.Store(true)
	case <-f.ctx.Done():
	}
}

var resetType = []byte("reset")

func (c *client) OnEvent(_, typ, data []byte) {
	now := time.Now().UnixNano()
	f := c.f
	if bytes.Equal(typ, resetType) {
		f.resets.Add(1)
		return
	}
	run, n, t, ok := sseclient.ParsePayload(data)
	if !ok || n < 1 || !bytes.Equal(run, f.run) {
		f.foreign.Add(1)
		return
	}
	f.delivered.Add(1)
	c.received++
	if n > c.seq.max+1 && c.holeLo.Load() == 0 {
		c.holeAttempt.Store(int64(c.roundAttempts.Load()))
		c.holeHi.Store(n - 1)
		c.holeLo.Store(c.seq.max + 1)
	}
	switch c.seq.observe(n) {
	case seqDup:
		f.dups.Add(1)
		return
	case seqLate:
		f.ooo.Add(1)
	}
	if !c.stalled.Load() {
		f.latency[f.phase.Load()].record(now - t)
	}
	contig := c.seq.contiguous()
	c.contig.Store(contig)
	c.maxSeen.Store(c.seq.max)
	c.gap.Store(c.seq.gap)
	if target := f.target.Load(); target > 0 && contig >= target && c.caughtAt.Load() == 0 {
		c.caughtAt.Store(now - f.roundStart.Load() + 1)
	}
}

// dialControl binds the port at connect time (IP_BIND_ADDRESS_NO_PORT), so
// each source address offers the whole ephemeral range per destination. For
// clients that will stall it also shrinks the receive buffer and advertises
// an Internet-sized MSS: on loopback (MTU 64 KiB) the server's send buffer
// otherwise grows to tcp_wmem's maximum (4 MiB) and a stalled client takes
// that many bytes before the server's writes even block.
func dialControl(rcvbuf, mss int) func(network, address string, rc syscall.RawConn) error {
	const ipBindAddressNoPort = 24 // linux/in.h
	return func(network, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			if network == "tcp4" {
				_ = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IP, ipBindAddressNoPort, 1)
			}
			if rcvbuf > 0 {
				serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, rcvbuf)
			}
			if mss > 0 && serr == nil {
				serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_MAXSEG, mss)
			}
		})
		if err != nil {
			return err
		}
		return serr
	}
}

func jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return d/2 + rand.N(d)
}

func sleepCtx(ctx interface{ Done() <-chan struct{} }, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
