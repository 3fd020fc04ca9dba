package caddysse

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/caddy-sse/caddy-sse/session"
)

// Handler serves Server-Sent Events for the NATS subjects its templates allow, and optionally accepts
// published events (POST). Defaults are applied in Provision and listed on each field.
type Handler struct {
	// Subjects are NATS subject templates: tokens may hold placeholders, each of which must resolve to exactly
	// one token. Required.
	Subjects []string `json:"subjects,omitempty"`
	// TopicParam names a query parameter (repeatable) by which a client narrows the subjects it receives; each
	// value must fall inside a template. Default: none (the client gets every subject of the templates).
	TopicParam string `json:"topic_param,omitempty"`
	// Stream is the JetStream stream holding the subjects; created if missing. Default: "SSE".
	Stream string `json:"stream,omitempty"`
	// StreamReplicas is the replica count of a stream caddy-sse creates (at most 5; more than 1 needs a NATS
	// cluster). Default: 1.
	StreamReplicas int `json:"stream_replicas,omitempty"`
	// StreamMaxAge is how long a stream caddy-sse creates keeps events. Default: 24h.
	StreamMaxAge caddy.Duration `json:"stream_max_age,omitempty"`
	// StreamMaxBytes caps the size in bytes of a stream caddy-sse creates; the oldest events go first. JetStream
	// reserves it up front against the server's store (max_store for the embedded server). Default: 0, no limit
	// of its own.
	StreamMaxBytes int64 `json:"stream_max_bytes,omitempty"`
	// StreamStorage is "file" or "memory" for a stream caddy-sse creates. Default: "file".
	//
	// The four stream options apply when the stream is created; an existing stream is used as it is, with a
	// warning naming each option in which it differs. Routes of one config on the same stream and NATS must
	// agree on them.
	StreamStorage string `json:"stream_storage,omitempty"`
	// NATS is the server or cluster to use. Default: the embedded server of the `sse` app.
	NATS *NATSConfig `json:"nats,omitempty"`
	// Retry is the reconnection delay sent once per connection as `retry:`. Default: 3s.
	Retry caddy.Duration `json:"retry,omitempty"`
	// Heartbeat is how long a stream may be idle before a comment is sent. Default: 15s. Above 25s a warning is
	// logged: over HTTP/3, QUIC closes a connection after 30s without packets.
	Heartbeat caddy.Duration `json:"heartbeat,omitempty"`
	// WriteTimeout bounds every write to a client; a client that does not take the bytes in time is cut off
	// (it reconnects and replays). Default: 10s.
	WriteTimeout caddy.Duration `json:"write_timeout,omitempty"`
	// Buffer is how many live events may wait for one client; a client that falls further behind is cut off
	// (it reconnects and replays). Replays do not count against it. Default: 256.
	Buffer int `json:"buffer,omitempty"`
	// ReplayLimit is the most events replayed on one reconnect; beyond it the client gets a reset event.
	// Default: 10000.
	ReplayLimit int `json:"replay_limit,omitempty"`
	// FirstEvent is what a client without Last-Event-ID gets first: "new" (only live events), "oldest" (all
	// stored history, within ReplayLimit) or "last" (the FirstEventCount most recent events). Default: "new".
	FirstEvent string `json:"first_event,omitempty"`
	// FirstEventCount is n for FirstEvent "last".
	FirstEventCount int `json:"first_event_count,omitempty"`
	// LastEventIDParam is the query parameter read when the Last-Event-ID header is absent. Default: "lastEventId".
	LastEventIDParam string `json:"last_event_id_param,omitempty"`
	// EventHeader is the NATS message header whose value becomes the SSE `event:` field. Default: "Sse-Event".
	EventHeader string `json:"event_header,omitempty"`
	// ResetEvent is the event type of the reset event. Default: "reset".
	ResetEvent string `json:"reset_event,omitempty"`
	// MaxConnections caps this handler's open streams; 0 means no cap. Clients over it are asked to come
	// back later in a way that keeps a browser's EventSource retrying.
	MaxConnections int `json:"max_connections,omitempty"`
	// CloseDelay spreads the end of open streams over [0, CloseDelay] when a config reload retires this
	// handler, so clients do not all reconnect at once. Default: 5s.
	CloseDelay caddy.Duration `json:"close_delay,omitempty"`
	// Publish accepts POST requests: the body becomes one event on the resolved subject. Protect it with
	// Caddy's authentication.
	Publish bool `json:"publish,omitempty"`
	// Connections: client keys and their caps, lifetimes, connect rate, visible heartbeats, presence.
	Connections

	templates []subjectTemplate
	feed      *feed
	sessions  *session.Config
	logger    *zap.Logger
	life      *lifecycle
	conns     *routeConnections
}

// lifecycle is a provisioned handler's mutable state.
type lifecycle struct {
	// stopping is closed when this handler's config is being retired (reload) or Caddy is exiting.
	stopping     chan struct{}
	stopOnce     sync.Once
	shutdownSeen sync.Map // *http.Server → struct{}: servers whose shutdown we listen to
}

// NATSConfig names an external NATS server or cluster and its credentials. Placeholders such as
// {env.NATS_TOKEN} are expanded at provision.
type NATSConfig struct {
	// URLs are the servers to connect to (nats_url), e.g. nats://nats1:4222; several for a cluster. Required.
	URLs []string `json:"urls,omitempty"`
	// CredsFile is a user credentials file with a JWT and an nkey seed, as `nsc` writes it (nats_creds).
	CredsFile string `json:"creds_file,omitempty"`
	// NKeyFile is a file holding an nkey seed (nats_nkey).
	NKeyFile string `json:"nkey_file,omitempty"`
	// Token is an authentication token (nats_token).
	Token string `json:"token,omitempty"`
	// User and Password authenticate by name and password (nats_user <user> <password>).
	User string `json:"user,omitempty"`
	// Password goes with User.
	Password string `json:"password,omitempty"`
}

// Defaults.
const (
	defaultStream           = "SSE"
	defaultRetry            = 3 * time.Second
	defaultHeartbeat        = 15 * time.Second
	defaultWriteTimeout     = 10 * time.Second
	defaultBuffer           = 256
	defaultReplayLimit      = 10000
	defaultLastEventIDParam = "lastEventId"
	defaultEventHeader      = "Sse-Event"
	defaultResetEvent       = "reset"
	defaultCloseDelay       = 5 * time.Second

	firstEventNew    = "new"
	firstEventOldest = "oldest"
	firstEventLast   = "last"
)

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "http.handlers.sse", New: func() caddy.Module { return new(Handler) }}
}

// Provision applies defaults, parses the subject templates and acquires the shared feed for the stream.
func (h *Handler) Provision(ctx caddy.Context) error {
	h.logger = ctx.Logger()
	h.applyDefaults()
	h.life = &lifecycle{stopping: make(chan struct{})}

	repl := caddy.NewReplacer()
	for _, raw := range h.Subjects {
		t, err := parseSubjectTemplate(raw)
		if err == nil {
			t, err = t.expandGlobal(repl)
		}
		if err != nil {
			return fmt.Errorf("sse: %w", err)
		}
		h.templates = append(h.templates, t)
	}
	if h.NATS != nil {
		h.NATS = h.NATS.expand(repl)
	}

	if err := registerMetrics(ctx.GetMetricsRegistry()); err != nil {
		return fmt.Errorf("sse: metrics: %w", err)
	}
	appVal, err := ctx.App("sse")
	if err != nil {
		return err
	}
	app := appVal.(*App)
	var streamSubjects []string
	for _, t := range h.templates {
		streamSubjects, _ = mergeSubjects(streamSubjects, []string{t.streamSubject()})
	}
	if h.NATS == nil {
		if err := h.checkEmbedded(app); err != nil {
			return err
		}
	}
	stream := h.streamConfig(streamSubjects)
	if err := app.claimStream(connKey(h.NATS), stream); err != nil {
		return err
	}
	h.feed, err = acquireFeed(h.NATS, app, stream, h.EventHeader)
	if err != nil {
		return fmt.Errorf("sse: stream %q: %w", h.Stream, err)
	}
	app.addFeed(h.feed)
	h.sessions = h.sessionConfig()
	h.registerConnContext(ctx, app)
	if err := h.provisionConnections(app); err != nil {
		return fmt.Errorf("sse: %w", err)
	}
	app.addHandler(h)
	h.warnHeartbeatOverQUIC()

	// A reload cancels this context: end our streams (spread over CloseDelay) so clients reconnect to the
	// new config and replay what they missed.
	go func() {
		<-ctx.Done()
		h.stop()
	}()
	return nil
}

func (h *Handler) applyDefaults() {
	if h.Stream == "" {
		h.Stream = defaultStream
	}
	if h.Retry == 0 {
		h.Retry = caddy.Duration(defaultRetry)
	}
	if h.Heartbeat == 0 {
		h.Heartbeat = caddy.Duration(defaultHeartbeat)
	}
	if h.WriteTimeout == 0 {
		h.WriteTimeout = caddy.Duration(defaultWriteTimeout)
	}
	if h.Buffer == 0 {
		h.Buffer = defaultBuffer
	}
	if h.ReplayLimit == 0 {
		h.ReplayLimit = defaultReplayLimit
	}
	if h.FirstEvent == "" {
		h.FirstEvent = firstEventNew
	}
	if h.LastEventIDParam == "" {
		h.LastEventIDParam = defaultLastEventIDParam
	}
	if h.EventHeader == "" {
		h.EventHeader = defaultEventHeader
	}
	if h.ResetEvent == "" {
		h.ResetEvent = defaultResetEvent
	}
	if h.CloseDelay == 0 {
		h.CloseDelay = caddy.Duration(defaultCloseDelay)
	}
	h.Connections.applyDefaults()
	if h.StreamStorage == "" {
		h.StreamStorage = storageFile
	}
}

// Validate reports configuration errors by directive name.
func (h *Handler) Validate() error {
	if len(h.Subjects) == 0 {
		return fmt.Errorf("sse: at least one subject is required")
	}
	if err := h.Connections.validate(); err != nil {
		return err
	}
	switch h.FirstEvent {
	case firstEventNew, firstEventOldest:
	case firstEventLast:
		if h.FirstEventCount < 1 {
			return fmt.Errorf("sse: first_event last needs a count of at least 1, got %d", h.FirstEventCount)
		}
	default:
		return fmt.Errorf("sse: first_event %q: want new, oldest or last <n>", h.FirstEvent)
	}
	for _, c := range []struct {
		name string
		v    int
	}{{"buffer", h.Buffer}, {"replay_limit", h.ReplayLimit}} { // a slice, so the first bad one is always named
		if c.v < 1 {
			return fmt.Errorf("sse: %s must be at least 1, got %d", c.name, c.v)
		}
	}
	if h.MaxConnections < 0 {
		return fmt.Errorf("sse: max_connections must not be negative, got %d", h.MaxConnections)
	}
	for _, c := range []struct {
		name string
		d    caddy.Duration
	}{{"retry", h.Retry}, {"heartbeat", h.Heartbeat}, {"write_timeout", h.WriteTimeout}, {"close_delay", h.CloseDelay}} {
		if c.d < 0 {
			return fmt.Errorf("sse: %s must not be negative, got %s", c.name, time.Duration(c.d))
		}
	}
	if err := h.validateStreamOptions(); err != nil {
		return err
	}
	if !validFieldValue(h.ResetEvent) {
		return fmt.Errorf("sse: reset_event %q must not contain CR, LF or NUL", h.ResetEvent)
	}
	if h.NATS != nil {
		if err := h.NATS.validate(); err != nil {
			return err
		}
	}
	return nil
}

// Cleanup releases the shared feed; the last config using it stops the tail.
func (h *Handler) Cleanup() error {
	if h.life != nil {
		h.stop()
	}
	routes.remove(h)
	if h.feed != nil {
		_, err := feedPool.Delete(h.feed.key)
		return err
	}
	return nil
}

// ServeHTTP streams events (GET) or publishes one (POST, when enabled).
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
	switch {
	case r.Method == http.MethodGet:
		return h.serveSession(w, r)
	case r.Method == http.MethodPost && h.Publish:
		return h.servePublish(w, r)
	}
	allow := "GET"
	if h.Publish {
		allow = "GET, POST"
	}
	w.Header().Set("Allow", allow)
	return caddyhttp.Error(http.StatusMethodNotAllowed, fmt.Errorf("sse: method %s not allowed", r.Method))
}

func (n *NATSConfig) expand(repl *caddy.Replacer) *NATSConfig {
	out := &NATSConfig{
		CredsFile: repl.ReplaceKnown(n.CredsFile, ""),
		NKeyFile:  repl.ReplaceKnown(n.NKeyFile, ""),
		Token:     repl.ReplaceKnown(n.Token, ""),
		User:      repl.ReplaceKnown(n.User, ""),
		Password:  repl.ReplaceKnown(n.Password, ""),
	}
	for _, u := range n.URLs {
		out.URLs = append(out.URLs, repl.ReplaceKnown(u, ""))
	}
	return out
}

func (n *NATSConfig) validate() error {
	if len(n.URLs) == 0 {
		return fmt.Errorf("sse: nats credentials need nats_url")
	}
	set := 0
	for _, v := range []string{n.CredsFile, n.NKeyFile, n.Token, n.User} {
		if v != "" {
			set++
		}
	}
	if set > 1 {
		return fmt.Errorf("sse: use only one of nats_creds, nats_nkey, nats_token and nats_user")
	}
	for _, u := range n.URLs {
		if !strings.Contains(u, "://") {
			return fmt.Errorf("sse: nats_url %q: want a URL such as nats://host:4222", u)
		}
	}
	return nil
}

// validFieldValue reports whether s can be written in an SSE field without breaking the framing.
func validFieldValue(s string) bool {
	return !strings.ContainsAny(s, "\r\n\x00")
}
