package faults

import (
	"context"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// teardown stops what a run started, last started first.
type teardown struct{ stops []func() }

func (t *teardown) push(f func()) { t.stops = append(t.stops, f) }

func (t *teardown) stop() {
	for i := len(t.stops) - 1; i >= 0; i-- {
		t.stops[i]()
	}
	t.stops = nil
}

// startTopology starts the NATS cluster (and creates the streams), the link
// proxies, the Caddy nodes and the load balancer, and fills e with them. The
// returned stop ends all of it, also after an error.
func startTopology(ctx context.Context, cfg Config, ports portPlan, e *env) (nc *nats.Conn, stop func(), err error) {
	t := &teardown{}
	cluster := newNATSCluster(cfg.NATSBin, cfg.Dir, ports, natsServers)
	e.cluster = cluster
	t.push(cluster.stop)
	e.log.Printf("starting %d nats-servers (JetStream, cluster on loopback)", natsServers)
	if err := cluster.start(ctx); err != nil {
		return nc, t.stop, err
	}
	nc, err = connectNATS(cluster.urls(), "sse-faults")
	if err != nil {
		return nc, t.stop, err
	}
	t.push(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		return nc, t.stop, err
	}
	e.js = js
	if err := createStream(ctx, js, natsServers); err != nil {
		return nc, t.stop, err
	}
	if err := createKVStream(ctx, js, natsServers); err != nil {
		return nc, t.stop, err
	}
	leader, _, err := waitLeader(ctx, js, "", 30*time.Second)
	if err != nil {
		return nc, t.stop, err
	}
	e.log.Printf("stream %s R%d, leader %s", streamName, natsServers, leader)

	var nodeAddrs []string
	for i := range cfg.Nodes {
		var links []string
		var proxies []*linkProxy
		for j := range natsServers {
			p, err := newLinkProxy(ports.proxy(i, j), ports.natsClient(j))
			if err != nil {
				return nc, t.stop, err
			}
			t.push(p.close)
			proxies = append(proxies, p)
			links = append(links, ports.proxy(i, j))
		}
		conf := render(nodeCaddyfile, nodeSettings{
			Name:  "caddy" + strconv.Itoa(i+1),
			Admin: ports.nodeAdmin(i), Listen: ports.node(i), NATS: links,
			Heartbeat: time.Second, ReplayLimit: replayLimit, CloseDelay: time.Second,
		})
		n, err := newCaddy("caddy"+strconv.Itoa(i+1), cfg.CaddyBin, cfg.Dir, ports.node(i), ports.nodeAdmin(i), conf)
		if err != nil {
			return nc, t.stop, err
		}
		n.proxies = proxies
		t.push(func() { n.proc.stop(5 * time.Second) })
		e.nodes = append(e.nodes, n)
		nodeAddrs = append(nodeAddrs, ports.node(i))
	}
	for _, n := range e.nodes {
		e.log.Printf("starting %s on %s", n.name, n.addr)
		if err := n.start(ctx, true); err != nil {
			return nc, t.stop, err
		}
	}
	lb, err := newCaddy("lb", cfg.CaddyBin, cfg.Dir, ports.lb(), ports.lbAdmin(),
		render(lbCaddyfile, lbSettings{Admin: ports.lbAdmin(), Listen: ports.lb(), Nodes: nodeAddrs}))
	if err != nil {
		return nc, t.stop, err
	}
	t.push(func() { lb.proc.stop(5 * time.Second) })
	if err := lb.start(ctx, false); err != nil {
		return nc, t.stop, err
	}
	e.lb = lb
	return nc, t.stop, nil
}
