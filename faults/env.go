package faults

import (
	"context"
	"fmt"
	"log"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// env is everything a fault acts on.
type env struct {
	ctx     context.Context
	cluster *natsCluster
	nodes   []*caddyNode
	lb      *caddyNode
	js      jetstream.JetStream
	fleet   *fleet
	pub     *publisher
	kvPub   *publisher
	log     *log.Logger

	rngMu sync.Mutex
	rng   *rand.Rand

	mu      sync.Mutex
	deleted map[uint64]bool // positions (posKey) a fault deleted on purpose (DeleteMsg)
	removes bool            // a fault removed messages (purge): acked events may be gone
	inc     int             // the stream's incarnation, 1 up, one more per delete and recreate
}

func (e *env) intn(n int) int {
	e.rngMu.Lock()
	defer e.rngMu.Unlock()
	return e.rng.IntN(n)
}

// jitter is d plus up to half of d more, from the run's seed.
func (e *env) jitter(d time.Duration) time.Duration {
	e.rngMu.Lock()
	defer e.rngMu.Unlock()
	return d + time.Duration(e.rng.Int64N(int64(d)/2+1))
}

func (e *env) pickNode() (int, *caddyNode) {
	i := e.intn(len(e.nodes))
	return i, e.nodes[i]
}

func (e *env) sleep(d time.Duration) error {
	if !sleepCtx(e.ctx, d) {
		return e.ctx.Err()
	}
	return nil
}

// leader is the stream's current leader, waiting out an election.
func (e *env) leader() (*natsServer, error) {
	name, _, err := waitLeader(e.ctx, e.js, "", 30*time.Second)
	if err != nil {
		return nil, err
	}
	s := e.cluster.server(name)
	if s == nil {
		return nil, fmt.Errorf("leader %q is not one of the suite's servers", name)
	}
	return s, nil
}

// restartServer starts a killed NATS server again and waits until it serves.
func (e *env) restartServer(s *natsServer) error {
	if err := s.proc.start(); err != nil {
		return err
	}
	return waitPort(e.ctx, s.clientAddr, 20*time.Second)
}
