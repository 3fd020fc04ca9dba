package caddysse

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"slices"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-sse/caddy-sse/jetstream"
)

// Keyed connections. A route with client_key names who each connection belongs to; max_per_key caps a key's
// connections. On this node the registry enforces the cap. Across nodes sharing a NATS server, max_per_key 1
// holds too: every node that holds a key listens on that key's control subject while it does, a node admitting
// a new connection for the key tells the holders (replace) or asks whether anyone holds it (reject), and the
// holders end their older connection. Only holders listen, so a message reaches the few nodes concerned.
//
// Which connection is newer is decided by a stamp: the wall clock, raised past every stamp this node has seen,
// so a node whose clock is behind still stamps a later connection as newer than the ones it was told about.

const (
	perKeyReplace = "replace"
	perKeyReject  = "reject"

	keyControlPrefix = "caddy_sse.keys."
	keyAskTimeout    = 250 * time.Millisecond

	endReplaced = "replaced" // a newer connection with the same key opened (here or on another node)
	endClosed   = "closed"   // the admin API closed the key's connections
)

// errKeyHeld: reject mode, and the key already has its connections.
var errKeyHeld = errors.New("sse: the client key already has its connections")

// keyedConn is one open stream with a client key.
type keyedConn struct {
	ns, key string // ns: the route's key space (see Handler.keySpace)
	stamp   uint64
	limit   int
	mode    string
	opened  time.Time
	conn    *jetstream.Conn // where control messages go; nil when NATS cannot be reached

	endOnce sync.Once
	ended   context.Context // done once end was called; its session then finishes
	endNow  context.CancelFunc
	reason  string
}

// end asks the connection's session to finish with reason (endReplaced, endClosed).
func (k *keyedConn) end(reason string) {
	k.endOnce.Do(func() {
		k.reason = reason
		k.endNow()
	})
}

// olderThan orders connections by stamp, then node, so that two nodes never disagree.
func (k *keyedConn) olderThan(stamp uint64, node string) bool {
	return k.stamp < stamp || (k.stamp == stamp && keyNode < node)
}

// keyMessage travels on a key's control subject.
type keyMessage struct {
	Op    string `json:"op"` // "replace", "held", "close"
	NS    string `json:"ns,omitempty"`
	Stamp uint64 `json:"stamp,omitempty"`
	Node  string `json:"node"`
}

// keyNode names this process to the others.
var keyNode = func() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	host, _ := os.Hostname()
	if host == "" {
		host = "node"
	}
	return host + "-" + hex.EncodeToString(b)
}()

// keys is the process's registry: keyed connections outlive the config that admitted them.
var keys = newKeyRegistry()

type keyRegistry struct {
	mu    sync.Mutex
	clock uint64
	byKey map[string]*keyEntry
	log   *zap.Logger
}

type keyEntry struct {
	conns     []*keyedConn
	listeners map[*jetstream.Conn]*keyListener
}

type keyListener struct {
	stop func()
	refs int
}

func newKeyRegistry() *keyRegistry {
	return &keyRegistry{byKey: map[string]*keyEntry{}, log: zap.NewNop()}
}

func keySubject(key string) string {
	sum := sha256.Sum256([]byte(key))
	return keyControlPrefix + hex.EncodeToString(sum[:16])
}

// nextStamp must be called with mu held.
func (r *keyRegistry) nextStamp() uint64 {
	r.clock = max(r.clock+1, uint64(time.Now().UnixNano()))
	return r.clock
}

// admit registers a connection for (ns, key) under limit and mode. In reject mode it returns errKeyHeld when
// the key already has limit connections here, or (limit 1) on another node. In replace mode the oldest
// connections over the limit are ended. first reports whether the key had no connection in ns on this node.
func (r *keyRegistry) admit(ctx context.Context, k *keyedConn) (first bool, err error) {
	if k.mode == perKeyReject && k.limit == 1 && k.conn != nil && r.count(k.ns, k.key) == 0 {
		if r.heldElsewhere(ctx, k) {
			return false, errKeyHeld
		}
	}
	r.mu.Lock()
	e := r.byKey[k.key]
	if e == nil {
		e = &keyEntry{listeners: map[*jetstream.Conn]*keyListener{}}
		r.byKey[k.key] = e
	}
	var same []*keyedConn
	for _, c := range e.conns {
		if c.ns == k.ns {
			same = append(same, c)
		}
	}
	if k.mode == perKeyReject && k.limit > 0 && len(same) >= k.limit {
		r.dropEmptyLocked(k.key, e)
		r.mu.Unlock()
		return false, errKeyHeld
	}
	first = len(same) == 0
	k.stamp = r.nextStamp()
	k.ended, k.endNow = context.WithCancel(context.Background())
	e.conns = append(e.conns, k)
	r.listenLocked(k.key, e, k.conn)
	var replaced []*keyedConn
	if over := len(same) + 1 - k.limit; k.limit > 0 && over > 0 {
		replaced = same[:over] // same is in admission order: the oldest first
	}
	r.mu.Unlock()

	for _, old := range replaced {
		old.end(endReplaced)
	}
	if k.mode == perKeyReplace && k.limit == 1 && k.conn != nil {
		r.tell(k.conn, k.key, keyMessage{Op: "replace", NS: k.ns, Stamp: k.stamp, Node: keyNode})
	}
	return first, nil
}

// release removes a connection that ended, for whatever reason. last reports whether it was the key's last
// connection in its ns on this node.
func (r *keyRegistry) release(k *keyedConn) (last bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e := r.byKey[k.key]
	if e != nil {
		if i := slices.Index(e.conns, k); i >= 0 {
			e.conns = slices.Delete(e.conns, i, i+1)
			if l := e.listeners[k.conn]; k.conn != nil && l != nil {
				if l.refs--; l.refs == 0 {
					l.stop()
					delete(e.listeners, k.conn)
				}
			}
		}
		last = !slices.ContainsFunc(e.conns, func(c *keyedConn) bool { return c.ns == k.ns })
		r.dropEmptyLocked(k.key, e)
	}
	return last
}

func (r *keyRegistry) dropEmptyLocked(key string, e *keyEntry) {
	if len(e.conns) == 0 {
		for _, l := range e.listeners {
			l.stop()
		}
		delete(r.byKey, key)
	}
}

// count is how many connections (ns, key) has on this node.
func (r *keyRegistry) count(ns, key string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	if e := r.byKey[key]; e != nil {
		for _, c := range e.conns {
			if c.ns == ns {
				n++
			}
		}
	}
	return n
}

// listenLocked makes sure this node hears the key's control messages on conn while it holds the key.
func (r *keyRegistry) listenLocked(key string, e *keyEntry, conn *jetstream.Conn) {
	if conn == nil {
		return
	}
	if l := e.listeners[conn]; l != nil {
		l.refs++
		return
	}
	stop, err := conn.Listen(keySubject(key), func(data []byte, reply func([]byte)) { r.onMessage(key, conn, data, reply) })
	if err != nil {
		r.log.Debug("cannot listen for other nodes' connections of a key; max_per_key holds on this node only", zap.Error(err))
		stop = func() {}
	}
	e.listeners[conn] = &keyListener{stop: stop, refs: 1}
}

func (r *keyRegistry) onMessage(key string, conn *jetstream.Conn, data []byte, reply func([]byte)) {
	var m keyMessage
	if json.Unmarshal(data, &m) != nil || m.Node == keyNode {
		return
	}
	r.mu.Lock()
	r.clock = max(r.clock, m.Stamp)
	var mine []*keyedConn
	if e := r.byKey[key]; e != nil {
		for _, c := range e.conns {
			if m.Op == "close" || c.ns == m.NS {
				mine = append(mine, c)
			}
		}
	}
	r.mu.Unlock()

	switch m.Op {
	case "held":
		if len(mine) > 0 {
			reply([]byte(`{"held":true}`))
		}
	case "close":
		for _, c := range mine {
			c.end(endClosed)
		}
	case "replace":
		for _, c := range mine {
			switch {
			case c.olderThan(m.Stamp, m.Node):
				c.end(endReplaced)
			case c.mode == perKeyReplace && c.limit == 1:
				// Ours is newer (the other node had not heard of it): tell it, so that it ends its own.
				r.tell(conn, key, keyMessage{Op: "replace", NS: c.ns, Stamp: c.stamp, Node: keyNode})
			}
		}
	}
}

func (r *keyRegistry) heldElsewhere(ctx context.Context, k *keyedConn) bool {
	data, _ := json.Marshal(keyMessage{Op: "held", NS: k.ns, Node: keyNode})
	ctx, cancel := context.WithTimeout(ctx, keyAskTimeout)
	defer cancel()
	_, err := k.conn.Ask(ctx, keySubject(k.key), data)
	switch {
	case err == nil:
		return true
	case errors.Is(err, jetstream.ErrNoListener):
		return false
	}
	// NATS is down or slow: admit rather than turn every client away; the cap still holds on this node.
	r.log.Debug("could not ask other nodes about a client key; admitting", zap.Error(err))
	return false
}

func (r *keyRegistry) tell(conn *jetstream.Conn, key string, m keyMessage) {
	data, _ := json.Marshal(m)
	if err := conn.Tell(keySubject(key), data); err != nil {
		r.log.Debug("could not tell other nodes about a client key", zap.Error(err))
	}
}

// closeKey ends every connection of key on this node, and asks every node reachable through conns to do the
// same. It returns how many were ended here.
func (r *keyRegistry) closeKey(key string, conns []*jetstream.Conn) int {
	r.mu.Lock()
	var mine []*keyedConn
	if e := r.byKey[key]; e != nil {
		mine = slices.Clone(e.conns)
	}
	r.mu.Unlock()
	for _, c := range mine {
		c.end(endClosed)
	}
	for _, conn := range conns {
		r.tell(conn, key, keyMessage{Op: "close", Node: keyNode})
	}
	return len(mine)
}

// snapshot lists, per key space, the keys with the most connections on this node (at most limit keys each).
func (r *keyRegistry) snapshot(limit int) map[string]map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]map[string]int{}
	for key, e := range r.byKey {
		for _, c := range e.conns {
			m := out[c.ns]
			if m == nil {
				m = map[string]int{}
				out[c.ns] = m
			}
			if _, ok := m[key]; ok || len(m) < limit {
				m[key]++
			}
		}
	}
	return out
}
