package faults

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// natsCluster is three nats-server processes with JetStream, routed to each
// other on loopback. Servers do not advertise the cluster to clients
// (no_advertise), so a Caddy node only ever reaches NATS through the
// addresses it was given: the suite's proxies.
type natsCluster struct {
	servers []*natsServer
}

type natsServer struct {
	name        string
	clientAddr  string
	clusterAddr string
	proc        *proc
}

func newNATSCluster(bin, dir string, ports portPlan, n int) *natsCluster {
	c := &natsCluster{}
	var routes []string
	for i := range n {
		routes = append(routes, "nats://"+ports.natsCluster(i))
	}
	for i := range n {
		name := "n" + strconv.Itoa(i+1)
		s := &natsServer{name: name, clientAddr: ports.natsClient(i), clusterAddr: ports.natsCluster(i)}
		_, cport, _ := strings.Cut(s.clusterAddr, ":")
		_, port, _ := strings.Cut(s.clientAddr, ":")
		s.proc = &proc{
			name: "nats-" + name,
			bin:  bin,
			args: []string{
				"-a", "127.0.0.1", "-p", port, "-n", name,
				"-js", "-sd", filepath.Join(dir, "nats-"+name),
				"--cluster_name", "faults", "--cluster", "nats://127.0.0.1:" + cport,
				"--routes", strings.Join(routes, ","), "--no_advertise=true",
			},
			log: filepath.Join(dir, "nats-"+name+".log"),
		}
		c.servers = append(c.servers, s)
	}
	return c
}

func (c *natsCluster) urls() string {
	var u []string
	for _, s := range c.servers {
		u = append(u, "nats://"+s.clientAddr)
	}
	return strings.Join(u, ",")
}

func (c *natsCluster) start(ctx context.Context) error {
	for _, s := range c.servers {
		if err := s.proc.start(); err != nil {
			return err
		}
	}
	for _, s := range c.servers {
		if err := waitPort(ctx, s.clientAddr, 20*time.Second); err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
	}
	return nil
}

func (c *natsCluster) server(name string) *natsServer {
	for _, s := range c.servers {
		if s.name == name {
			return s
		}
	}
	return nil
}

func (c *natsCluster) stop() {
	for _, s := range c.servers {
		s.proc.stop(5 * time.Second)
	}
}

// streamName is the stream every Caddy node tails.
const streamName = "FAULTS"

// subjectPrefix is what the stream captures: faults.<topic>.
const subjectPrefix = "faults"

// createStream makes the R3 stream up front, retrying while the cluster
// forms its JetStream meta group.
func createStream(ctx context.Context, js jetstream.JetStream, replicas int) error {
	return ensureStream(ctx, js, jetstream.StreamConfig{
		Name:       streamName,
		Subjects:   []string{subjectPrefix + ".>"},
		Storage:    jetstream.FileStorage,
		Replicas:   replicas,
		MaxAge:     time.Hour,
		Duplicates: 2 * time.Minute,
	})
}

func ensureStream(ctx context.Context, js jetstream.JetStream, cfg jetstream.StreamConfig) error {
	deadline := time.Now().Add(60 * time.Second)
	for {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := js.CreateOrUpdateStream(cctx, cfg)
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("create stream %s: %w", cfg.Name, err)
		}
		sleepCtx(ctx, 500*time.Millisecond)
	}
}

// streamLeader asks the cluster which server leads the stream ("" while an
// election is on).
func streamLeader(ctx context.Context, js jetstream.JetStream) (string, error) {
	cctx, cancel := context.WithTimeout(ctx, 1*time.Second)
	defer cancel()
	s, err := js.Stream(cctx, streamName)
	if err != nil {
		return "", err
	}
	info := s.CachedInfo()
	if info.Cluster == nil {
		return "", errors.New("stream info has no cluster")
	}
	return info.Cluster.Leader, nil
}

// waitLeader polls every 50 ms until the stream has a leader other than
// not (when not is set) and returns it with the time it was first seen.
func waitLeader(ctx context.Context, js jetstream.JetStream, not string, limit time.Duration) (string, time.Time, error) {
	deadline := time.Now().Add(limit)
	for {
		l, err := streamLeader(ctx, js)
		if err == nil && l != "" && l != not {
			return l, time.Now(), nil
		}
		if time.Now().After(deadline) {
			return "", time.Time{}, fmt.Errorf("no stream leader after %s (last: %q, %v)", limit, l, err)
		}
		if !sleepCtx(ctx, 50*time.Millisecond) {
			return "", time.Time{}, ctx.Err()
		}
	}
}

// connectNATS is the suite's own connection (publisher, admin, read-back),
// straight to the servers, not through the proxies.
func connectNATS(urls, name string) (*nats.Conn, error) {
	// Async errors (a write to a server being killed) are the faults at work.
	return nats.Connect(urls, nats.Name(name), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond),
		nats.Timeout(2*time.Second), nats.RetryOnFailedConnect(true),
		nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {}))
}
