package faults

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"math/rand/v2"
	"net"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddy-sse/caddy-sse/internal/sseclient"
)

// received is one event a client got: the publisher's number from the
// payload, and the stream position from the event id.
type received struct {
	N     int64
	Epoch epoch
	Seq   uint64
	At    int64 // unix ns
}

// epoch is an interned event-id epoch: a run sees one or a few, and a
// client records one per event.
type epoch uint32

var epochs = struct {
	sync.Mutex
	ids map[string]epoch
}{ids: map[string]epoch{}}

func epochOf(s string) epoch {
	epochs.Lock()
	defer epochs.Unlock()
	e, ok := epochs.ids[s]
	if !ok {
		e = epoch(len(epochs.ids) + 1)
		epochs.ids[s] = e
	}
	return e
}

// resetSeen is one reset event: its id is the position the server resumed
// from; Before is how many events the client had received when it came.
type resetSeen struct {
	Epoch  epoch
	Seq    uint64
	Reason string
	At     int64
	Before int
}

// streamSeen is one stream a client opened: when, on which node, with which
// Last-Event-ID, after how many events.
type streamSeen struct {
	At     int64
	Node   string
	LastID string
	Before int
}

// nodeHeader names the node that served a stream (set in the nodes' config).
const nodeHeader = "X-Sse-Node"

// sseClient is one EventSource-like client: it reconnects with Last-Event-ID
// whenever its stream ends or goes quiet, and records everything it gets.
type sseClient struct {
	idx    int
	addr   string // where it connects (the load balancer, or one node for a probe)
	target string
	topics []string // nil: every subject of the route
	node   int      // the node a probe is pinned to; -1 through the load balancer
	run    []byte

	p  *sseclient.Parser
	br *bufio.Reader

	mu      sync.Mutex
	conn    net.Conn
	events  []received
	resets  []resetSeen
	streams []streamSeen
	foreign int64
	badIDs  int64

	connects   atomic.Int64
	streamN    atomic.Int64 // events in the current stream
	dropAfter  atomic.Int64 // >0: end the next stream after this many events (a drop mid-replay)
	stallUntil atomic.Int64 // unix ns: do not read until then
	awayUntil  atomic.Int64 // unix ns: do not reconnect until then
}

const (
	// clientIdle is how long a stream may stay silent (heartbeats are 1 s)
	// before the client gives up on it, as it would on a frozen node.
	clientIdle    = 4 * time.Second
	clientBackoff = 200 * time.Millisecond
)

func newSSEClient(idx int, addr, path string, topics []string, node int, run string) *sseClient {
	q := url.Values{}
	for _, t := range topics {
		q.Add("topic", t)
	}
	target := path
	if len(q) > 0 {
		target += "?" + q.Encode()
	}
	c := &sseClient{idx: idx, addr: addr, target: target, topics: topics, node: node, run: []byte(run)}
	c.p = sseclient.NewParser(c)
	return c
}

func (c *sseClient) loop(ctx context.Context) {
	for ctx.Err() == nil {
		if until := c.awayUntil.Load(); until > 0 {
			sleepCtx(ctx, time.Until(time.Unix(0, until)))
			c.awayUntil.Store(0)
		}
		// Any end is followed by a reconnect; what ended it shows in the
		// record (streams, events), not here.
		_ = c.stream(ctx)
		if ctx.Err() != nil {
			return
		}
		sleepCtx(ctx, clientBackoff/2+rand.N(clientBackoff))
	}
}

func (c *sseClient) stream(ctx context.Context) error {
	d := net.Dialer{Timeout: 2 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", c.addr)
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.conn = conn
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.conn = nil
		c.mu.Unlock()
		_ = conn.Close()
	}()
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	defer stop()

	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Write(sseclient.AppendRequest(nil, c.target, c.addr, c.p.LastID())); err != nil {
		return err
	}
	if c.br == nil {
		c.br = bufio.NewReaderSize(conn, 32<<10)
	} else {
		c.br.Reset(conn)
	}
	body, err := sseclient.ReadResponse(c.br, nodeHeader)
	if err != nil {
		return err
	}
	c.p.Reset()
	c.connects.Add(1)
	c.mu.Lock()
	c.streams = append(c.streams, streamSeen{At: time.Now().UnixNano(), Node: body.Header(nodeHeader),
		LastID: string(c.p.LastID()), Before: len(c.events)})
	c.mu.Unlock()
	c.streamN.Store(0)
	for {
		if until := c.stallUntil.Load(); until > 0 {
			// A stalled client keeps its socket open and reads nothing.
			if !sleepCtx(ctx, time.Until(time.Unix(0, until))) {
				return ctx.Err()
			}
			c.stallUntil.Store(0)
		}
		_ = conn.SetReadDeadline(time.Now().Add(clientIdle))
		b, err := body.Next()
		if len(b) > 0 {
			c.p.Feed(b)
		}
		if err != nil {
			return err
		}
		if k := c.dropAfter.Load(); k > 0 && c.streamN.Load() >= k {
			c.dropAfter.Store(0)
			return nil
		}
	}
}

var (
	resetType = []byte("reset")
	idDash    = []byte("-")
)

// OnEvent records one event (called by the parser, on the client's goroutine).
func (c *sseClient) OnEvent(id, typ, data []byte) {
	now := time.Now().UnixNano()
	epoch, seq, ok := splitID(id)
	c.mu.Lock()
	defer c.mu.Unlock()
	if !ok {
		c.badIDs++
	}
	if bytes.Equal(typ, resetType) {
		var r struct {
			Reason string `json:"reason"`
		}
		_ = json.Unmarshal(data, &r)
		c.resets = append(c.resets, resetSeen{Epoch: epoch, Seq: seq, Reason: r.Reason, At: now, Before: len(c.events)})
		return
	}
	run, n, _, pok := sseclient.ParsePayload(data)
	if !pok || !bytes.Equal(run, c.run) {
		c.foreign++
		return
	}
	c.streamN.Add(1)
	c.events = append(c.events, received{N: n, Epoch: epoch, Seq: seq, At: now})
}

// splitID reads an event id <epoch>-<seq>.
func splitID(id []byte) (epoch, uint64, bool) {
	i := bytes.LastIndex(id, idDash)
	if i <= 0 {
		return 0, 0, false
	}
	seq, err := strconv.ParseUint(string(id[i+1:]), 10, 64)
	if err != nil {
		return 0, 0, false
	}
	return epochOf(string(id[:i])), seq, true
}

// drop ends the current stream now; the client reconnects with Last-Event-ID.
func (c *sseClient) drop() {
	c.mu.Lock()
	if c.conn != nil {
		_ = c.conn.Close()
	}
	c.mu.Unlock()
}

// fleet runs every client of a run.
type fleet struct {
	clients []*sseClient
	wg      sync.WaitGroup
	cancel  context.CancelFunc
}

func startFleet(ctx context.Context, clients []*sseClient) *fleet {
	ctx, cancel := context.WithCancel(ctx)
	f := &fleet{clients: clients, cancel: cancel}
	for _, c := range clients {
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			c.loop(ctx)
		}()
	}
	return f
}

func (f *fleet) stop() {
	f.cancel()
	f.wg.Wait()
}

// balanced are the clients of the main stream that go through the load
// balancer (client faults act on them; probes stay pinned to their node).
func (f *fleet) balanced() []*sseClient {
	var out []*sseClient
	for _, c := range f.clients {
		if c.node < 0 && c.target != kvPath {
			out = append(out, c)
		}
	}
	return out
}

// lastN is the highest event number each client holds, for the drain.
func (c *sseClient) lastN() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.events) == 0 {
		return 0
	}
	return c.events[len(c.events)-1].N
}

// holds reports whether the client received event n (looking at its most
// recent events only: the drain asks for the latest ones).
func (c *sseClient) holds(n int64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := len(c.events) - 1; i >= 0 && i >= len(c.events)-5000; i-- {
		if c.events[i].N == n {
			return true
		}
	}
	return false
}
