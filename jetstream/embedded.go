package jetstream

import (
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// Defaults for the embedded server's JetStream limits. nats-server would
// otherwise size them from the machine (75% of RAM, 1 TB of disk).
const (
	DefaultEmbeddedMaxStore  int64 = 1 << 30
	DefaultEmbeddedMaxMemory int64 = 256 << 20

	embeddedReadyTimeout = time.Minute // recovering a large store takes a while
)

// EmbeddedConfig configures an in-process nats-server with JetStream.
type EmbeddedConfig struct {
	Listen    string // "host:port" for local apps (port 0 picks one); "" = in-process only
	StoreDir  string // required; JetStream keeps its files under it
	MaxStore  int64  // JetStream disk limit in bytes; 0 = 1 GiB
	MaxMemory int64  // JetStream memory limit in bytes; 0 = 256 MiB
	// SyncAlways makes JetStream fsync every write before acknowledging it. Otherwise file stores are synced
	// every SyncInterval (0 = nats-server's default, 2 minutes) and a power loss can take acknowledged writes.
	SyncAlways   bool
	SyncInterval time.Duration
	// Token, or User and Password: credentials every client needs, the in-process connection too.
	// None: any client that reaches the listener may publish and read everything.
	Token, User, Password string
}

// Redacted is cfg without its secrets, for logs.
func (cfg EmbeddedConfig) Redacted() EmbeddedConfig {
	for _, secret := range []*string{&cfg.Token, &cfg.Password} {
		if *secret != "" {
			*secret = "REDACTED"
		}
	}
	return cfg
}

// Embedded is a running in-process nats-server.
type Embedded struct {
	srv      *server.Server
	cfg      EmbeddedConfig // its credentials are used by in-process connections
	storeDir string
	url      string
	once     sync.Once
}

// nats-server does not lock its store directory: two servers on one
// directory in one process would corrupt it. Guard against that here.
var storeDirs = struct {
	sync.Mutex
	inUse map[string]bool
}{inUse: map[string]bool{}}

// StartEmbedded starts a nats-server with JetStream and waits until it
// accepts clients. It never installs signal handlers (NoSigs), so a SIGTERM
// meant for the host process does not make it exit on its own.
func StartEmbedded(cfg EmbeddedConfig, log *zap.Logger) (*Embedded, error) {
	if log == nil {
		log = zap.NewNop()
	}
	if cfg.StoreDir == "" {
		return nil, errors.New("jetstream: embedded server needs a store directory")
	}
	dir, err := filepath.Abs(cfg.StoreDir)
	if err != nil {
		return nil, fmt.Errorf("jetstream: store directory %q: %w", cfg.StoreDir, err)
	}
	opts := &server.Options{
		ServerName:         "caddy-sse-embedded",
		JetStream:          true,
		StoreDir:           dir,
		JetStreamMaxStore:  cfg.MaxStore,
		JetStreamMaxMemory: cfg.MaxMemory,
		NoSigs:             true,
		DontListen:         cfg.Listen == "",
		SyncAlways:         cfg.SyncAlways,
		SyncInterval:       cfg.SyncInterval,
		Authorization:      cfg.Token,
		Username:           cfg.User,
		Password:           cfg.Password,
	}
	if cfg.Token != "" && cfg.User != "" {
		return nil, errors.New("jetstream: embedded server: use a token or a user, not both")
	}
	if opts.JetStreamMaxStore <= 0 {
		opts.JetStreamMaxStore = DefaultEmbeddedMaxStore
	}
	if opts.JetStreamMaxMemory <= 0 {
		opts.JetStreamMaxMemory = DefaultEmbeddedMaxMemory
	}
	if cfg.Listen != "" {
		host, port, err := splitListen(cfg.Listen)
		if err != nil {
			return nil, err
		}
		opts.Host, opts.Port = host, port
		if err := probeListen(host, port); err != nil {
			return nil, fmt.Errorf("jetstream: embedded server cannot listen on %s (another NATS server? use another address or listen off): %w", cfg.Listen, err)
		}
	}

	storeDirs.Lock()
	if storeDirs.inUse[dir] {
		storeDirs.Unlock()
		return nil, fmt.Errorf("jetstream: store directory %q is already used by an embedded server in this process", dir)
	}
	storeDirs.inUse[dir] = true
	storeDirs.Unlock()
	release := func() {
		storeDirs.Lock()
		delete(storeDirs.inUse, dir)
		storeDirs.Unlock()
	}

	srv, err := server.NewServer(opts)
	if err != nil {
		release()
		return nil, fmt.Errorf("jetstream: embedded server: %w", err)
	}
	slog := log.Named("nats-server")
	srv.SetLoggerV2(serverLogger{slog.Sugar()}, slog.Core().Enabled(zapcore.DebugLevel), false, false)
	srv.Start()
	if !srv.ReadyForConnections(embeddedReadyTimeout) || !srv.JetStreamEnabled() {
		srv.Shutdown()
		srv.WaitForShutdown()
		release()
		return nil, fmt.Errorf("jetstream: embedded server with store %q did not become ready (see the nats-server log lines)", dir)
	}

	e := &Embedded{srv: srv, storeDir: dir, cfg: cfg}
	if addr, ok := srv.Addr().(*net.TCPAddr); ok && !opts.DontListen {
		host := opts.Host
		if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
			host = "127.0.0.1" // the listener is on every interface; loopback is one
		}
		e.url = "nats://" + net.JoinHostPort(host, strconv.Itoa(addr.Port))
	}
	log.Info("embedded nats-server started",
		zap.String("store_dir", dir),
		zap.String("client_url", e.url),
		zap.Int64("max_store", opts.JetStreamMaxStore),
		zap.Int64("max_memory", opts.JetStreamMaxMemory),
		zap.String("sync", syncDescription(cfg)),
		zap.Bool("auth", cfg.Token != "" || cfg.User != ""))
	return e, nil
}

func syncDescription(cfg EmbeddedConfig) string {
	switch {
	case cfg.SyncAlways:
		return "always"
	case cfg.SyncInterval > 0:
		return cfg.SyncInterval.String()
	}
	return "nats-server default (2m)"
}

// probeListen checks that host:port can be listened on. nats-server only logs a listen failure and then never
// becomes ready, so without this a taken port would cost the whole ready timeout and an unclear error. A random
// port (-1) needs no check.
func probeListen(host string, port int) error {
	if port < 0 {
		return nil
	}
	l, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		return err
	}
	return l.Close()
}

// splitListen parses "host:port". Port 0 asks for a free port, which
// nats-server spells -1 (its 0 means the default port 4222).
func splitListen(listen string) (string, int, error) {
	host, portStr, err := net.SplitHostPort(listen)
	if err != nil {
		return "", 0, fmt.Errorf("jetstream: listen address %q: %w", listen, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("jetstream: listen address %q: bad port", listen)
	}
	if port == 0 {
		port = server.RANDOM_PORT
	}
	return host, port, nil
}

// ClientURL is the URL local apps connect to, "" when the server does not
// listen on TCP.
func (e *Embedded) ClientURL() string { return e.url }

// Shutdown stops the server and waits until it has flushed its store. It is
// safe to call more than once.
func (e *Embedded) Shutdown() {
	e.once.Do(func() {
		e.srv.Shutdown()
		e.srv.WaitForShutdown()
		storeDirs.Lock()
		delete(storeDirs.inUse, e.storeDir)
		storeDirs.Unlock()
	})
}

// serverLogger routes nats-server's log lines to zap. Fatalf only logs:
// the server's own logger would exit the whole process.
type serverLogger struct{ l *zap.SugaredLogger }

func (s serverLogger) Noticef(format string, v ...any) { s.l.Infof(format, v...) }
func (s serverLogger) Warnf(format string, v ...any)   { s.l.Warnf(format, v...) }
func (s serverLogger) Errorf(format string, v ...any)  { s.l.Errorf(format, v...) }
func (s serverLogger) Fatalf(format string, v ...any)  { s.l.Errorf(format, v...) }
func (s serverLogger) Debugf(format string, v ...any)  { s.l.Debugf(format, v...) }
func (s serverLogger) Tracef(format string, v ...any)  { s.l.Debugf(format, v...) }
