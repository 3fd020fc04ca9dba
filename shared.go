package caddysse

import (
	"encoding/json"
	"sync"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

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
		return &sharedEmbedded{cfg: cfg, logger: caddy.Log().Named("sse")}, nil // jetstream adds "nats-server"
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
		e.server, e.err = jetstream.StartEmbedded(e.cfg, e.logger) // it logs its start
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
		c := &sharedConn{key: key, logger: caddy.Log().Named("sse")} // jetstream adds "nats"
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
