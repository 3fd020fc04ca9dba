// Package faults is the fault suite: it runs a NATS cluster, Caddy nodes
// with the sse module behind a Caddy load balancer, a publisher and a few
// hundred recording SSE clients as real processes on loopback, injects
// faults, and checks that every client got every acknowledged event of its
// subjects exactly once and in order, or an explicit reset whose reason is
// true.
package faults

import (
	"context"
	"fmt"
	"log"
	"math/rand/v2"
	"os"
	"strconv"
	"time"
)

// Config is one run of the suite.
type Config struct {
	CaddyBin, NATSBin string
	Dir               string // logs and stores; created if missing
	PortBase          int
	Seed              uint64
	Faults            string // comma-separated, in order, or "short" or "all"; see Catalogue
	Mixed             bool   // after the single faults, run three of them at once
	Duration          time.Duration
	Clients           int
	KVClients         int     // clients of the KV-style stream, through the load balancer
	Rate              float64 // events per second
	Nodes             int
	Settle            time.Duration // quiet time after each fault
	Log               *log.Logger
}

// Fault describes one fault of the catalogue.
type Fault struct {
	Name, What string
	Form       string // "short" (also in the short form) or "long"
}

// Catalogue lists the faults the suite knows, most important first.
func Catalogue() []Fault {
	var out []Fault
	for _, f := range catalogue {
		form := "long"
		if f.short {
			form = "short"
		}
		out = append(out, Fault{f.name, f.what, form})
	}
	return out
}

const (
	natsServers = 3
	replayLimit = 100000
)

var topics = []string{subjectPrefix + ".t0", subjectPrefix + ".t1", subjectPrefix + ".t2", subjectPrefix + ".t3"}

// Run runs the suite and returns its result. Every process it started is
// stopped before it returns, also on error or when ctx ends.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	faults, err := parseFaults(cfg.Faults)
	if err != nil {
		return nil, err
	}
	ports := portPlan{cfg.PortBase}
	if err := ports.check(cfg.Nodes, natsServers); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, err
	}
	lg := cfg.Log
	run := "r" + strconv.FormatInt(time.Now().UnixNano()%1e9, 36)
	e := &env{ctx: ctx, log: lg, rng: rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x5eed)), deleted: map[uint64]bool{}, inc: 1}

	nc, stopTopology, err := startTopology(ctx, cfg, ports, e)
	defer stopTopology()
	if err != nil {
		return nil, err
	}
	js := e.js

	var clients []*sseClient
	for i := range cfg.Clients {
		var t []string
		if i%2 == 1 {
			t = []string{topics[(i/2)%len(topics)]}
		}
		clients = append(clients, newSSEClient(i, ports.lb(), "/events", t, -1, run))
	}
	for i := range e.nodes {
		clients = append(clients, newSSEClient(len(clients), ports.node(i), "/events", nil, i, run))
	}
	var kvClients []*sseClient
	for i := range cfg.KVClients {
		kvClients = append(kvClients, newSSEClient(len(clients)+i, ports.lb(), kvPath, nil, -1, run))
	}
	e.fleet = startFleet(ctx, append(append([]*sseClient(nil), clients...), kvClients...))
	defer e.fleet.stop()
	if err := waitConnected(ctx, e.fleet.clients, 30*time.Second); err != nil {
		return nil, err
	}
	lg.Printf("%d clients connected (%d through the load balancer, one probe per node, %d on the KV-style stream)",
		len(e.fleet.clients), cfg.Clients, len(kvClients))

	pub, err := newPublisher(nc, run, topics)
	if err != nil {
		return nil, err
	}
	kvPub, err := newPublisher(nc, run, kvTopics)
	if err != nil {
		return nil, err
	}
	e.pub, e.kvPub = pub, kvPub
	pubCtx, stopPub := context.WithCancel(ctx)
	pubDone := make(chan struct{}, 2)
	go func() { defer func() { pubDone <- struct{}{} }(); pub.publish(pubCtx, cfg.Rate) }()
	go func() { defer func() { pubDone <- struct{}{} }(); kvPub.publish(pubCtx, kvRate) }()
	stopped := false
	stopPublishing := func() {
		if !stopped {
			stopped = true
			stopPub()
			<-pubDone
			<-pubDone
		}
	}
	defer stopPublishing()

	began := time.Now()
	if err := e.sleep(3 * time.Second); err != nil {
		return nil, err
	}
	windows, failures, err := e.runSchedule(cfg, faults, began, clients)
	if err != nil {
		return nil, err
	}

	stopPublishing()
	lg.Printf("publishing stopped; waiting for acknowledgements and for clients to catch up")
	if err := pub.settle(ctx, 30*time.Second); err != nil {
		failures = append(failures, "publisher: "+err.Error())
		lg.Printf("publisher: %v", err)
	}
	if err := kvPub.settle(ctx, 30*time.Second); err != nil {
		failures = append(failures, "KV publisher: "+err.Error())
		lg.Printf("KV publisher: %v", err)
	}
	sent, kvSent := pub.snapshot(), kvPub.snapshot()
	if n := drain(ctx, clients, sent, 30*time.Second); n > 0 {
		lg.Printf("%d clients did not get the last event within 30 s", n)
	}
	if n := drain(ctx, kvClients, kvSent, 10*time.Second); n > 0 {
		lg.Printf("%d KV clients did not get the last event within 10 s", n)
	}
	lg.Printf("reading the streams back")
	e.fleet.stop()
	back, err := readBack(ctx, js, streamName, run)
	if err != nil {
		return nil, fmt.Errorf("read back the stream: %w", err)
	}
	kvBack, err := readBack(ctx, js, kvStreamName, run)
	if err != nil {
		return nil, fmt.Errorf("read back the KV stream: %w", err)
	}
	e.mu.Lock()
	h := buildHistory(sent, back, e.deleted, e.inc)
	removes := e.removes
	e.mu.Unlock()
	res := judge(cfg, h, sent, clients, windows, removes)
	res.KV = judgeKV(buildHistory(kvSent, kvBack, nil, 1), kvSent, kvClients, windows)
	res.Failures = failures
	res.Elapsed = time.Since(began)
	return res, nil
}

func waitConnected(ctx context.Context, clients []*sseClient, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		n := 0
		for _, c := range clients {
			if c.connects.Load() > 0 {
				n++
			}
		}
		if n == len(clients) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d clients connected after %s", n, len(clients), limit)
		}
		if !sleepCtx(ctx, 100*time.Millisecond) {
			return ctx.Err()
		}
	}
}

// drain waits until every client holds the last acknowledged event of its
// subjects (bounded) and says how many do not.
func drain(ctx context.Context, clients []*sseClient, sent []published, limit time.Duration) (behind int) {
	// The last event by stream position (incarnation, then sequence), per
	// subject and overall: retries store some events after higher numbers.
	last := map[string]int64{}
	lastKey := map[string]uint64{}
	var lastAll int64
	var lastAllKey uint64
	for i, p := range sent {
		if p.Seq == 0 {
			continue
		}
		k := posKey(p.Inc, p.Seq)
		if k > lastKey[p.Subject] {
			last[p.Subject], lastKey[p.Subject] = int64(i+1), k
		}
		if k > lastAllKey {
			lastAll, lastAllKey = int64(i+1), k
		}
	}
	deadline := time.Now().Add(limit)
	for {
		behind = 0
		for _, c := range clients {
			want := lastAll
			if len(c.topics) == 1 {
				want = last[c.topics[0]]
			}
			if !c.holds(want) {
				behind++
			}
		}
		if behind == 0 || time.Now().After(deadline) || !sleepCtx(ctx, 100*time.Millisecond) {
			return behind
		}
	}
}
