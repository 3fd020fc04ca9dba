package caddysse

import (
	"errors"
	"fmt"
	"net"
	"path/filepath"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/caddy-sse/caddy-sse/jetstream"
)

// App is the `sse` app: the settings of the embedded JetStream server that handlers without a NATS URL use,
// and the place where this config's shared feeds are started. It is configured by the global option `sse`;
// handlers load it with its defaults when the option is absent.
type App struct {
	// Listen is the address local applications publish to. "off" keeps the embedded server in-process only.
	// Default: 127.0.0.1:4222.
	Listen string `json:"listen,omitempty"`
	// StoreDir holds the embedded server's JetStream files. Default: <Caddy data dir>/sse/jetstream.
	StoreDir string `json:"store_dir,omitempty"`
	// MaxStore is the JetStream disk limit in bytes. Default: 1 GiB.
	MaxStore int64 `json:"max_store,omitempty"`
	// MaxMemory is the JetStream memory limit in bytes. Default: 256 MiB.
	MaxMemory int64 `json:"max_memory,omitempty"`
	// MaxConnections caps the event streams open at once in this process, over every route, on top of each
	// route's own max_connections; clients over it are turned away the same way. Default: 0 (no cap).
	MaxConnections int `json:"max_connections,omitempty"`
	// Sync is when JetStream writes reach the disk: "always" (fsync before every acknowledgement) or a duration
	// such as "1s" (fsync in the background that often; a power loss can take the acknowledged writes of the
	// last interval). Default: "always". The embedded server has no replicas, so its disk is the only copy.
	Sync string `json:"sync,omitempty"`
	// AuthToken, or AuthUser and AuthPassword, are credentials every client of the embedded server must
	// present, caddy-sse's own in-process connection included. Placeholders such as {env.NATS_TOKEN} are
	// expanded at provision. Default: none, so any local process that reaches Listen may publish to and read
	// every subject.
	AuthToken    string `json:"auth_token,omitempty"`
	AuthUser     string `json:"auth_user,omitempty"`
	AuthPassword string `json:"auth_password,omitempty"`

	logger   *zap.Logger
	embedded *sharedEmbedded // this config's reference, nil until a handler needs it
	// feeds are acquired by this config's handlers while Caddy provisions them (one at a time) and started by
	// Start, which comes after.
	feeds   []*feed
	streams streamClaims // stream options per stream, which this config's routes must agree on
	exit    exitWatch    // ends this config's streams when Caddy exits
	// connServers are the HTTP servers that record each connection in their requests' contexts (takeover.go).
	connServers map[*caddyhttp.Server]struct{}
}

const (
	defaultEmbeddedListen = "127.0.0.1:4222"
	defaultMaxStore       = jetstream.DefaultEmbeddedMaxStore
	defaultMaxMemory      = jetstream.DefaultEmbeddedMaxMemory
	listenOff             = "off"
)

// CaddyModule returns the Caddy module information.
func (App) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "sse", New: func() caddy.Module { return new(App) }}
}

// Provision applies defaults, expands placeholders in the credentials and subscribes to Caddy's exit.
func (a *App) Provision(ctx caddy.Context) error {
	a.logger = ctx.Logger()
	if err := a.settle(); err != nil {
		return err
	}
	return a.watchExit(ctx)
}

// settle applies defaults and expands placeholders.
func (a *App) settle() error {
	if a.Listen == "" {
		a.Listen = defaultEmbeddedListen
	}
	if a.StoreDir == "" {
		a.StoreDir = filepath.Join(caddy.AppDataDir(), "sse", "jetstream")
	}
	if a.MaxStore == 0 {
		a.MaxStore = defaultMaxStore
	}
	if a.MaxMemory == 0 {
		a.MaxMemory = defaultMaxMemory
	}
	if a.Sync == "" {
		a.Sync = syncAlways
	}
	return a.expandAuth()
}

// Validate checks the embedded server settings.
func (a *App) Validate() error {
	if a.Listen != listenOff {
		if _, _, err := net.SplitHostPort(a.Listen); err != nil {
			return fmt.Errorf("sse: listen %q: want host:port or off: %w", a.Listen, err)
		}
	}
	if a.MaxConnections < 0 {
		return fmt.Errorf("sse: max_connections must not be negative, got %d", a.MaxConnections)
	}
	if a.MaxStore < 0 {
		return fmt.Errorf("sse: max_store must be a positive size, got %d", a.MaxStore)
	}
	if a.MaxMemory < 0 {
		return fmt.Errorf("sse: max_memory must be a positive size, got %d", a.MaxMemory)
	}
	if _, _, err := parseSync(a.Sync); err != nil {
		return err
	}
	return a.validateAuth()
}

// Start starts the feeds this config's handlers acquired. Feeds shared with the previous config are already
// running and are left as they are. A feed that cannot start (bad credentials file, embedded server port taken)
// fails the config load, so the previous config stays in place.
func (a *App) Start() error {
	var errs []error
	for _, f := range a.feeds {
		if err := f.start(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Stop does nothing: streams end through the handlers' own shutdown, and shared resources through Cleanup.
func (a *App) Stop() error { return nil }

// Cleanup releases this config's reference to the embedded server.
func (a *App) Cleanup() error {
	if a.embedded != nil {
		_, err := embeddedPool.Delete(embeddedKey)
		a.embedded = nil
		return err
	}
	return nil
}

func (a *App) embeddedConfig() jetstream.EmbeddedConfig {
	listen := a.Listen
	if listen == listenOff {
		listen = ""
	}
	always, interval, _ := parseSync(a.Sync) // checked by Validate
	return jetstream.EmbeddedConfig{
		Listen: listen, StoreDir: a.StoreDir, MaxStore: a.MaxStore, MaxMemory: a.MaxMemory,
		SyncAlways: always, SyncInterval: interval,
		Token: a.AuthToken, User: a.AuthUser, Password: a.AuthPassword,
	}
}

// useEmbedded takes this config's reference to the process-wide embedded server (not started yet).
func (a *App) useEmbedded() error {
	if a.embedded != nil {
		return nil
	}
	e, err := acquireEmbedded(a.embeddedConfig(), a.logger)
	if err != nil {
		return err
	}
	a.embedded = e
	return nil
}

func (a *App) addFeed(f *feed) {
	a.feeds = append(a.feeds, f)
}
