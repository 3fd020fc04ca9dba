package caddysse

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddy-sse/caddy-sse/jetstream"
)

func init() {
	caddy.RegisterModule(AdminAPI{})
}

// AdminAPI is the `admin.api.sse` module: a view of this node's feeds and connections on Caddy's admin
// endpoint, and a way to end a client key's connections on every node. It is served behind Caddy's admin
// access rules like every admin route.
//
//	GET  /sse/           this node's feeds and routes, as JSON
//	POST /sse/close?key=K  end key K's connections here and on every node on the same NATS
type AdminAPI struct{}

// CaddyModule returns the Caddy module information.
func (AdminAPI) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "admin.api.sse", New: func() caddy.Module { return new(AdminAPI) }}
}

// Routes returns the admin routes.
func (a *AdminAPI) Routes() []caddy.AdminRoute {
	return []caddy.AdminRoute{
		{Pattern: "/sse/", Handler: caddy.AdminHandlerFunc(a.serveView)},
		{Pattern: "/sse/close", Handler: caddy.AdminHandlerFunc(a.serveClose)},
	}
}

// adminKeysPerRoute bounds the keys listed per route.
const adminKeysPerRoute = 100

type adminView struct {
	Node   string       `json:"node"`
	Open   int64        `json:"open_streams"` // in this process, every config
	Feeds  []adminFeed  `json:"feeds"`
	Routes []adminRoute `json:"routes"`
}

type adminFeed struct {
	Stream        string `json:"stream"`
	Ready         bool   `json:"ready"`
	Epoch         string `json:"epoch"`
	LastSeq       uint64 `json:"last_seq"`
	MemoryFrom    uint64 `json:"memory_from"` // memory holds (memory_from-1, last_seq]: events after that floor
	TailRunning   bool   `json:"tail_running"`
	TailSince     string `json:"tail_since,omitempty"`      // when the tail last started or was interrupted
	TailLastError string `json:"tail_last_error,omitempty"` // the last interruption's reason
	MemoryEvents  int    `json:"memory_events"`
	MemoryBytes   int    `json:"memory_bytes"`
	Subscriptions int    `json:"subscriptions"`
	Published     uint64 `json:"events"`
}

type adminRoute struct {
	Route  string         `json:"route"` // its subjects
	Stream string         `json:"stream"`
	Open   int64          `json:"open_streams"`
	Keys   map[string]int `json:"connections_per_key,omitempty"` // at most adminKeysPerRoute keys
}

func (a *AdminAPI) serveView(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodGet {
		return caddy.APIError{HTTPStatus: http.StatusMethodNotAllowed, Err: fmt.Errorf("method %s not allowed", r.Method)}
	}
	view := adminView{Node: keyNode, Open: processSessions.Load(), Feeds: []adminFeed{}, Routes: []adminRoute{}}
	feedPool.Range(func(_, v any) bool {
		f := v.(*feed)
		epoch, last := f.hub.Position()
		st := f.hub.Stats()
		ready := false
		select {
		case <-f.hub.Ready():
			ready = true
		default:
		}
		running, lastErr, since := f.state.read()
		af := adminFeed{Stream: f.tail.Stream.Name, Ready: ready, Epoch: epoch, LastSeq: last, MemoryFrom: f.hub.Floor() + 1,
			TailRunning: running, TailLastError: lastErr,
			MemoryEvents: st.RingLen, MemoryBytes: st.RingBytes, Subscriptions: st.Subscriptions, Published: st.Published}
		if !since.IsZero() {
			af.TailSince = since.UTC().Format(time.RFC3339Nano)
		}
		view.Feeds = append(view.Feeds, af)
		return true
	})
	slices.SortFunc(view.Feeds, func(x, y adminFeed) int { return strings.Compare(x.Stream, y.Stream) })
	perKey := keys.snapshot(adminKeysPerRoute)
	for _, h := range routes.list() {
		view.Routes = append(view.Routes, adminRoute{Route: h.conns.label, Stream: h.Stream, Open: h.conns.open.Load(),
			Keys: perKey[h.conns.keySpace]})
	}
	w.Header().Set("Content-Type", "application/json")
	return json.NewEncoder(w).Encode(view)
}

func (a *AdminAPI) serveClose(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodPost {
		return caddy.APIError{HTTPStatus: http.StatusMethodNotAllowed, Err: fmt.Errorf("method %s not allowed", r.Method)}
	}
	key := r.URL.Query().Get("key")
	if key == "" {
		return caddy.APIError{HTTPStatus: http.StatusBadRequest, Err: fmt.Errorf("sse: close needs ?key=<client key>")}
	}
	var conns []*jetstream.Conn
	connPool.Range(func(_, v any) bool {
		if c, err := v.(*sharedConn).get(); err == nil && c != nil {
			conns = append(conns, c)
		}
		return true
	})
	n := keys.closeKey(key, conns)
	w.Header().Set("Content-Type", "application/json")
	return json.NewEncoder(w).Encode(map[string]any{"key": key, "closed_here": n, "told_nodes": len(conns) > 0})
}

// routes are the provisioned handlers of every loaded config, for the admin view.
var routes routeSet

type routeSet struct {
	mu  sync.Mutex
	set []*Handler
}

func (s *routeSet) add(h *Handler) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.set = append(s.set, h)
}

func (s *routeSet) remove(h *Handler) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if i := slices.Index(s.set, h); i >= 0 {
		s.set = slices.Delete(s.set, i, i+1)
	}
}

func (s *routeSet) list() []*Handler {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.set)
}
