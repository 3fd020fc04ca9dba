package faults

import (
	"context"
	"time"
)

// runSchedule runs the faults in order, then (with cfg.Mixed) three at
// once, then random ones, alone or mixed, until cfg.Duration has passed since
// began. After each it waits until every node is live again (bounded) and
// for cfg.Settle. A fault that cannot be applied is a failure of the run,
// not a reason to stop it.
func (e *env) runSchedule(cfg Config, faults []fault, began time.Time, clients []*sseClient) ([]window, []string, error) {
	var windows []window
	var failures []string
	step := func(f fault) error {
		e.log.Printf("fault %s: %s", f.name, f.what)
		w, err := f.run(e)
		if w.Ready.IsZero() {
			w.Ready = time.Now()
		}
		windows = append(windows, w)
		if err != nil {
			failures = append(failures, f.name+": "+err.Error())
			e.log.Printf("fault %s failed: %v", f.name, err)
			if e.ctx.Err() != nil {
				return err
			}
		}
		e.log.Printf("  %s", w.Detail)
		waitLive(e.ctx, clients, e.pub, w.Ready, 30*time.Second)
		return e.sleep(cfg.Settle)
	}
	for _, f := range faults {
		if err := step(f); err != nil {
			return windows, failures, err
		}
	}
	if cfg.Mixed && len(faults) >= 2 {
		if err := step(mixed(e.pickMix(faults, 3))); err != nil {
			return windows, failures, err
		}
	}
	for cfg.Duration > 0 && time.Since(began) < cfg.Duration && len(faults) > 0 {
		f := faults[e.intn(len(faults))]
		if e.intn(4) == 0 && len(faults) >= 2 {
			f = mixed(e.pickMix(faults, 2+e.intn(2)))
		}
		if err := step(f); err != nil {
			return windows, failures, err
		}
	}
	return windows, failures, nil
}

// pickMix chooses k distinct faults of the list, at most one of each kind
// that kills NATS servers (two at once would take the stream's quorum).
func (e *env) pickMix(faults []fault, k int) []fault {
	idx := make([]int, len(faults))
	for i := range idx {
		idx[i] = i
	}
	e.rngMu.Lock()
	e.rng.Shuffle(len(idx), func(a, b int) { idx[a], idx[b] = idx[b], idx[a] })
	e.rngMu.Unlock()
	var out []fault
	natsKills, nodeFaults := 0, 0
	for _, i := range idx {
		f := faults[i]
		if isNATSKill(f.name) {
			if natsKills > 0 {
				continue
			}
			natsKills++
		}
		if isNodeFault(f.name) {
			if nodeFaults > 0 {
				continue
			}
			nodeFaults++
		}
		if isStreamFault(f.name) {
			continue
		}
		out = append(out, f)
		if len(out) == k {
			break
		}
	}
	return out
}

func isNATSKill(name string) bool {
	switch name {
	case "nats-leader-kill", "nats-follower-kill", "nats-connected-kill", "nats-cluster-restart":
		return true
	}
	return false
}

// isNodeFault: faults that pick one Caddy node; two at once could pick the
// same node and undo each other (a restart of a frozen process).
func isNodeFault(name string) bool {
	switch name {
	case "caddy-kill", "caddy-reload", "caddy-freeze", "partition", "partition-long", "link-cut", "slow-link":
		return true
	}
	return false
}

// isStreamFault: faults that change the stream or need every client; they
// run alone.
func isStreamFault(name string) bool {
	switch name {
	case "stream-purge", "stream-delete-msg", "stream-limits", "stream-recreate", "kv-burst":
		return true
	}
	return false
}

// waitLive waits until every node's probe got an event published after
// ready (bounded), so the next fault starts on a live system.
func waitLive(ctx context.Context, clients []*sseClient, pub *publisher, ready time.Time, limit time.Duration) {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		live := true
		for _, c := range clients {
			if c.node < 0 {
				continue
			}
			n := c.lastN()
			if n == 0 || pub.publishedAt(n) < ready.UnixNano() {
				live = false
			}
		}
		if live || !sleepCtx(ctx, 50*time.Millisecond) {
			return
		}
	}
}
