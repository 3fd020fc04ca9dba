package jetstream

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
)

const (
	DefaultMaxConcurrentReplays = 16

	reconnectWait   = time.Second
	reconnectJitter = time.Second // spreads a fleet of nodes after a server restart
	// A frozen server or a black-holed link is noticed only by pings: two unanswered ones (the client's
	// default allowance) after 5 s each mark the connection stale and make it reconnect elsewhere in about
	// 10-15 s, instead of the 40-60 s the 20 s default gives.
	pingInterval   = 5 * time.Second
	connPollPeriod = time.Second // fallback wake-up while waiting for a connection
)

// ConnConfig says how to reach NATS.
type ConnConfig struct {
	URLs                  []string  // server URLs; ignored when Embedded is set
	Embedded              *Embedded // connect in-process to this server, with its credentials unless set here
	CredsFile, NKeyFile   string    // user credentials (JWT + seed) or an nkey seed file
	Token, User, Password string
	Name                  string // connection name shown by the server; default "caddy-sse"
	MaxConcurrentReplays  int    // Replay/LastN calls running at once; default 16
}

// Conn is a NATS connection with JetStream, shared by every tail and replay
// of a process. It reconnects forever; only Close ends it.
type Conn struct {
	nc    *nats.Conn
	js    natsjs.JetStream
	log   *zap.Logger
	slots chan struct{} // replay semaphore
	// shared: reads of one range followed by every client that asks for it at the same time
	shared sharedReplays
	// readersCreated counts the replay consumers created, for tests and the load tool
	readersCreated atomic.Uint64

	// Connection lifecycle as seen by waiters: changed is closed and
	// replaced on every connect, disconnect, reconnect and close; generation
	// counts disconnects and reconnects, so a waiter can tell a real change
	// from the first connect.
	mu         sync.Mutex
	changed    chan struct{}
	generation atomic.Uint64

	streamWarnings sync.Map // stream name → the config differences last warned about
}

// Connect dials NATS. It never fails or blocks because the server is down:
// the connection keeps retrying in the background and tails start once it
// is up. Errors are for bad configuration only.
func Connect(cfg ConnConfig, log *zap.Logger) (*Conn, error) {
	if log == nil {
		log = zap.NewNop()
	}
	log = log.Named("nats")
	c := &Conn{log: log, changed: make(chan struct{}), shared: sharedReplays{reads: map[string]*sharedRead{}}}

	slots := cfg.MaxConcurrentReplays
	if slots <= 0 {
		slots = DefaultMaxConcurrentReplays
	}
	c.slots = make(chan struct{}, slots)

	name := cfg.Name
	if name == "" {
		name = "caddy-sse"
	}
	opts := []nats.Option{
		nats.Name(name),
		nats.RetryOnFailedConnect(true),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(reconnectWait),
		nats.ReconnectJitter(reconnectJitter, reconnectJitter),
		nats.PingInterval(pingInterval),
		nats.ConnectHandler(func(nc *nats.Conn) {
			log.Info("connected", zap.String("server", serverName(cfg, nc)))
			c.signal(false)
		}),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			log.Warn("disconnected, reconnecting in the background", zap.Error(err))
			c.signal(true)
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			log.Info("reconnected", zap.String("server", serverName(cfg, nc)))
			c.signal(true)
		}),
		nats.ReconnectErrHandler(func(_ *nats.Conn, err error) {
			log.Debug("reconnect attempt failed", zap.Error(err))
		}),
		nats.ClosedHandler(func(*nats.Conn) {
			log.Info("connection closed")
			c.signal(true)
		}),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			fields := []zap.Field{zap.Error(err)}
			if sub != nil {
				fields = append(fields, zap.String("subject", sub.Subject))
			}
			log.Warn("asynchronous error", fields...)
		}),
	}
	if cfg.Embedded != nil && cfg.Token == "" && cfg.User == "" {
		cfg.Token, cfg.User, cfg.Password = cfg.Embedded.cfg.Token, cfg.Embedded.cfg.User, cfg.Embedded.cfg.Password
	}
	auth, err := authOptions(cfg)
	if err != nil {
		return nil, err
	}
	opts = append(opts, auth...)

	url := strings.Join(cfg.URLs, ",")
	if cfg.Embedded != nil {
		url = ""
		opts = append(opts, nats.InProcessServer(cfg.Embedded.srv))
	} else if url == "" {
		return nil, errors.New("jetstream: no NATS server URL and no embedded server")
	}

	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return nil, fmt.Errorf("jetstream: connect to %q: %w", url, err)
	}
	js, err := natsjs.New(nc)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	c.nc, c.js = nc, js
	if !nc.IsConnected() {
		log.Warn("NATS is not reachable yet, retrying in the background", zap.String("url", url))
	}
	return c, nil
}

// serverName is the server connected to, for logs (an in-process
// connection reports the default URL, which would mislead).
func serverName(cfg ConnConfig, nc *nats.Conn) string {
	if cfg.Embedded != nil {
		return "embedded (in-process)"
	}
	return nc.ConnectedUrlRedacted()
}

// authOptions turns the credentials of cfg into options, reading the files
// now so that a typo fails the config load instead of every reconnect.
func authOptions(cfg ConnConfig) ([]nats.Option, error) {
	var opts []nats.Option
	if cfg.CredsFile != "" && cfg.NKeyFile != "" {
		return nil, errors.New("jetstream: use either a credentials file or an nkey file, not both")
	}
	if cfg.CredsFile != "" {
		b, err := os.ReadFile(cfg.CredsFile)
		if err != nil {
			return nil, fmt.Errorf("jetstream: credentials file: %w", err)
		}
		s := string(b)
		if !strings.Contains(s, "BEGIN NATS USER JWT") || !strings.Contains(s, "BEGIN USER NKEY SEED") {
			return nil, fmt.Errorf("jetstream: credentials file %q holds no user JWT and seed", cfg.CredsFile)
		}
		opts = append(opts, nats.UserCredentials(cfg.CredsFile))
	}
	if cfg.NKeyFile != "" {
		opt, err := nats.NkeyOptionFromSeed(cfg.NKeyFile)
		if err != nil {
			return nil, fmt.Errorf("jetstream: nkey file: %w", err)
		}
		opts = append(opts, opt)
	}
	if cfg.Token != "" {
		opts = append(opts, nats.Token(cfg.Token))
	}
	if cfg.User != "" || cfg.Password != "" {
		opts = append(opts, nats.UserInfo(cfg.User, cfg.Password))
	}
	return opts, nil
}

// Close closes the connection; tails using it return.
func (c *Conn) Close() {
	c.nc.Close()
	c.signal(true)
}

// signal wakes everyone waiting on a connection change; lost says the
// connection went away (or came back) since they last looked.
func (c *Conn) signal(lost bool) {
	if lost {
		c.generation.Add(1)
	}
	c.mu.Lock()
	close(c.changed)
	c.changed = make(chan struct{})
	c.mu.Unlock()
}

func (c *Conn) changes() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.changed
}

// waitConnected blocks until the connection is up. It returns the
// connection generation seen: a later different one means the connection was
// lost in between.
func (c *Conn) waitConnected(ctx context.Context) (uint64, error) {
	timer := time.NewTimer(connPollPeriod)
	defer timer.Stop()
	for {
		changed := c.changes()
		gen := c.generation.Load()
		if c.nc.IsClosed() {
			return 0, fmt.Errorf("%w: connection closed", ErrNotConnected)
		}
		if c.nc.IsConnected() {
			return gen, nil
		}
		select {
		case <-changed:
		case <-timer.C:
			timer.Reset(connPollPeriod)
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
}

// connected fails fast when NATS is down, rather than letting a request sit
// in the reconnect buffer until its deadline.
func (c *Conn) connected() error {
	if !c.nc.IsConnected() {
		return ErrNotConnected
	}
	return nil
}

// ReplayConsumersCreated counts the consumers replays created on this connection: with shared reads it
// follows the number of distinct ranges asked at once, not the number of clients.
func (c *Conn) ReplayConsumersCreated() uint64 { return c.readersCreated.Load() }

// acquireReplay takes one of the replay slots, waiting for ctx at most.
func (c *Conn) acquireReplay(ctx context.Context) (release func(), err error) {
	select {
	case c.slots <- struct{}{}:
		return func() { <-c.slots }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
