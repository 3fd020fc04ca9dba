package caddysse

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/caddy-sse/caddy-sse/hub"
	"github.com/caddy-sse/caddy-sse/jetstream"
)

// Long-lived things are shared through usage pools keyed by their canonical config, so an unchanged config
// reload reuses them and a changed one builds new ones. Each gets its own context, never a config's.
var (
	embeddedPool = caddy.NewUsagePool()
	connPool     = caddy.NewUsagePool()
	feedPool     = caddy.NewUsagePool()
)

// embeddedKey: there is at most one embedded server per process, because nats-server does not lock its store
// directory and two servers on one directory would corrupt it.
const embeddedKey = "embedded"

// sharedEmbedded is the process-wide embedded JetStream server, started on first use.
type sharedEmbedded struct {
	cfg    jetstream.EmbeddedConfig
	logger *zap.Logger

	once   sync.Once
	server *jetstream.Embedded
	err    error
}

func acquireEmbedded(cfg jetstream.EmbeddedConfig, logger *zap.Logger) (*sharedEmbedded, error) {
	val, loaded, err := embeddedPool.LoadOrNew(embeddedKey, func() (caddy.Destructor, error) {
		return &sharedEmbedded{cfg: cfg, logger: caddy.Log().Named("sse.nats")}, nil
	})
	if err != nil {
		return nil, err
	}
	e := val.(*sharedEmbedded)
	if loaded && e.cfg != cfg {
		logger.Warn("the embedded NATS server keeps its settings until Caddy restarts",
			zap.Any("running", e.cfg.Redacted()), zap.Any("configured", cfg.Redacted()))
	}
	return e, nil
}

func (e *sharedEmbedded) start() (*jetstream.Embedded, error) {
	e.once.Do(func() {
		e.server, e.err = jetstream.StartEmbedded(e.cfg, e.logger)
		if e.err == nil {
			e.logger.Info("embedded NATS JetStream server started",
				zap.String("listen", e.server.ClientURL()), zap.String("store_dir", e.cfg.StoreDir))
		}
	})
	return e.server, e.err
}

// Destruct shuts the server down when no config uses it any more.
func (e *sharedEmbedded) Destruct() error {
	e.once.Do(func() {}) // a server that never started must not start now
	if e.server != nil {
		e.server.Shutdown()
		e.logger.Info("embedded NATS JetStream server stopped")
	}
	return nil
}

// sharedConn is one NATS connection shared by every feed that uses the same server and credentials.
type sharedConn struct {
	key      string
	cfg      jetstream.ConnConfig
	embedded *sharedEmbedded // nil for an external server
	logger   *zap.Logger

	once sync.Once
	conn *jetstream.Conn
	err  error
}

// connKey is the canonical form of a NATS config; "embedded" for the embedded server.
func connKey(n *NATSConfig) string {
	if n == nil || len(n.URLs) == 0 {
		return embeddedKey
	}
	b, _ := json.Marshal(n)
	return string(b)
}

func acquireConn(n *NATSConfig, app *App) (*sharedConn, error) {
	key := connKey(n)
	val, _, err := connPool.LoadOrNew(key, func() (caddy.Destructor, error) {
		c := &sharedConn{key: key, logger: caddy.Log().Named("sse.nats")}
		if key == embeddedKey {
			if err := app.useEmbedded(); err != nil {
				return nil, err
			}
			// the connection holds its own reference, so the server outlives the config that started it
			e, err := acquireEmbedded(app.embeddedConfig(), app.logger)
			if err != nil {
				return nil, err
			}
			c.embedded = e
		} else {
			c.cfg = jetstream.ConnConfig{
				URLs: n.URLs, CredsFile: n.CredsFile, NKeyFile: n.NKeyFile,
				Token: n.Token, User: n.User, Password: n.Password,
			}
		}
		c.cfg.Name = "caddy-sse"
		return c, nil
	})
	if err != nil {
		return nil, err
	}
	return val.(*sharedConn), nil
}

// get connects on first use. It does not wait for the server: the connection retries in the background.
func (c *sharedConn) get() (*jetstream.Conn, error) {
	c.once.Do(func() {
		if c.embedded != nil {
			srv, err := c.embedded.start()
			if err != nil {
				c.err = err
				return
			}
			c.cfg.Embedded = srv
		}
		c.conn, c.err = jetstream.Connect(c.cfg, c.logger)
	})
	return c.conn, c.err
}

func (c *sharedConn) Destruct() error {
	c.once.Do(func() {})
	if c.conn != nil {
		c.conn.Close()
	}
	if c.embedded != nil {
		_, _ = embeddedPool.Delete(embeddedKey)
	}
	return nil
}

// feed is one stream tailed once per process, fanned out by its hub. Routes that share a NATS server, a stream
// and an event header share one feed.
type feed struct {
	key    string
	conn   *sharedConn
	hub    *hub.Hub
	tail   jetstream.TailConfig
	logger *zap.Logger

	mu       sync.Mutex
	subjects []string // subjects the stream must capture, from every route that uses this feed
	started  bool

	once   sync.Once
	cancel context.CancelFunc
	done   chan struct{}
}

// feedKey includes the stream options, so a reload that changes them builds a new feed, which checks the
// existing stream against them (see jetstream.Conn.EnsureStream).
func feedKey(conn string, stream jetstream.StreamConfig, eventHeader string) string {
	o := optionsOf(stream)
	b, _ := json.Marshal([]any{conn, stream.Name, eventHeader, o.replicas, o.maxAge, o.maxBytes, o.memory})
	return string(b)
}

func acquireFeed(n *NATSConfig, app *App, stream jetstream.StreamConfig, eventHeader string) (*feed, error) {
	ck := connKey(n)
	key := feedKey(ck, stream, eventHeader)
	val, loaded, err := feedPool.LoadOrNew(key, func() (caddy.Destructor, error) {
		conn, err := acquireConn(n, app)
		if err != nil {
			return nil, err
		}
		return &feed{
			key:      key,
			conn:     conn,
			hub:      hub.New(hub.Config{}),
			tail:     jetstream.TailConfig{Stream: stream, EventHeader: eventHeader},
			subjects: stream.Subjects,
			logger:   caddy.Log().Named("sse.feed").With(zap.String("stream", stream.Name)),
			done:     make(chan struct{}),
		}, nil
	})
	if err != nil {
		return nil, err
	}
	f := val.(*feed)
	if loaded {
		f.want(stream.Subjects)
	}
	return f, nil
}

// want records subjects a newly provisioned route needs; if the feed is running, the stream is updated to
// capture them (streams created by caddy-sse only; see jetstream.Conn.EnsureStream).
func (f *feed) want(subjects []string) {
	f.mu.Lock()
	merged, changed := mergeSubjects(f.subjects, subjects)
	f.subjects = merged
	started := f.started
	f.mu.Unlock()
	if !changed || !started {
		return // a feed that has not started yet creates the stream with every subject
	}
	conn, err := f.conn.get()
	if err != nil {
		return
	}
	cfg := f.streamConfig()
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := conn.EnsureStream(ctx, cfg); err != nil {
			f.logger.Warn("could not add subjects to the stream; they are added when the feed next restarts",
				zap.Strings("subjects", cfg.Subjects), zap.Error(err))
		}
	}()
}

func (f *feed) streamConfig() jetstream.StreamConfig {
	f.mu.Lock()
	defer f.mu.Unlock()
	cfg := f.tail.Stream
	cfg.Subjects = append([]string(nil), f.subjects...)
	return cfg
}

// start begins tailing; later calls do nothing. It fails only for what no retry can mend (an unreadable
// credentials file, an embedded server that cannot listen): NATS being unreachable is retried in the background.
func (f *feed) start() error {
	var startErr error
	f.once.Do(func() {
		conn, err := f.conn.get()
		if err != nil {
			startErr = fmt.Errorf("sse: stream %q: %v", f.tail.Stream.Name, err)
			close(f.done)
			return
		}
		ctx, cancel := context.WithCancel(context.Background())
		f.cancel = cancel
		tail := f.tail
		f.mu.Lock()
		f.started = true // under the same lock as the subjects read, so want never misses a subject
		tail.Stream.Subjects = append([]string(nil), f.subjects...)
		f.mu.Unlock()
		go func() {
			defer close(f.done)
			conn.Tail(ctx, tail, f.hub)
		}()
		f.logger.Info("feed started", zap.Strings("subjects", tail.Stream.Subjects))
	})
	return startErr
}

// natsConn is the connection for replays and publishing; errNoNATS when the feed could not connect.
func (f *feed) natsConn() (*jetstream.Conn, error) {
	c, err := f.conn.get()
	if c == nil {
		return nil, fmt.Errorf("%w: %v", errNoNATS, err)
	}
	return c, nil
}

func (f *feed) Destruct() error {
	f.once.Do(func() { close(f.done) })
	if f.cancel != nil {
		f.cancel()
	}
	<-f.done
	f.hub.Close()
	_, err := connPool.Delete(f.conn.key)
	f.logger.Info("feed stopped")
	return err
}
