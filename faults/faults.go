package faults

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
)

// window is one fault as it happened. Ready is when the system may be live
// again: the fault healed, the restarted process started, or the stream had
// a new leader. Time until live again is measured from it on every node.
type window struct {
	Fault  string
	Start  time.Time
	Ready  time.Time
	Detail string
}

// fault injects one failure and returns once it has healed.
type fault struct {
	name  string
	what  string
	run   func(e *env) (window, error)
	short bool // in the short form (CI): passes on the current product and takes seconds, not minutes
}

// catalogue is every fault, most important first. The short form runs the
// ones marked short; RELIABILITY.md says why the others are not.
var catalogue = []fault{
	{"caddy-kill", "SIGKILL one Caddy node, restart it 2-3 s later", caddyKill, true},
	{"nats-leader-kill", "SIGKILL the stream leader, restart it once a new leader is elected", leaderKill, true},
	{"caddy-reload", "forced config reload (POST /load) of one Caddy node under load", caddyReload, true},
	{"caddy-freeze", "SIGSTOP one Caddy node for 6-9 s, then SIGCONT", caddyFreeze, true},
	{"partition", "black-hole every link of one Caddy node to NATS for 6-9 s", partition, true},
	{"partition-long", "black-hole every link of one Caddy node to NATS for 65-97 s (past NATS's stale-connection detection: 2 pings 20 s apart)", partitionLong, false},
	{"link-cut", "cut every link of one Caddy node to NATS (close, refuse) for 2-3 s", linkCut, true},
	{"slow-link", "delay every byte between one Caddy node and NATS by 200 ms for 6-9 s", slowLink, true},
	{"nats-follower-kill", "SIGKILL a server that does not lead the stream, restart it 3-4 s later", followerKill, true},
	{"nats-connected-kill", "SIGKILL the server one Caddy node is connected to, restart it 3-4 s later", connectedKill, true},
	{"nats-cluster-restart", "stop all three servers (SIGTERM), start them again", clusterRestart, true},
	{"client-storm", "every balanced client drops at once and reconnects with Last-Event-ID", clientStorm, true},
	{"client-drop-mid-replay", "every balanced client drops, then drops again after 1-5 events of its replay", clientDropMidReplay, true},
	{"client-stall", "a tenth of the clients stop reading for 8-12 s", clientStall, true},
	{"stream-delete-msg", "DeleteMsg of the oldest message and of one recent one", deleteMsg, true},
	{"stream-limits", "MaxMsgs cut to 600 (6 s of events); a node restarts with empty memory while a third of the clients are away 4.5-8 s, so they replay from JetStream at the edge of what the limit removes", streamLimits, true},
	{"stream-recreate", "the stream is deleted and created again (publishing paused meanwhile): a new incarnation, sequences from 1", recreate, true},
	{"kv-burst", "KV-style stream (MaxMsgsPerSubject 1): five bursts of 2,000 publishes to one subject while one node is black-holed from NATS", kvBurst, true},
	{"stream-purge", "clients drop, the stream is purged, clients reconnect into the purged range", purge, true},
}

func lookupFault(name string) (fault, bool) {
	for _, f := range catalogue {
		if f.name == name {
			return f, true
		}
	}
	return fault{}, false
}

// parseFaults reads a comma-separated fault list ("all": every fault;
// "short": the short form's; a+b: a and b at once).
func parseFaults(list string) ([]fault, error) {
	switch list {
	case "all":
		return catalogue, nil
	case "short":
		var out []fault
		for _, f := range catalogue {
			if f.short {
				out = append(out, f)
			}
		}
		return out, nil
	}
	var out []fault
	for _, name := range strings.Split(list, ",") {
		name = strings.TrimSpace(name)
		if name == "" {
			continue
		}
		if strings.Contains(name, "+") { // a+b: these at once
			parts, err := parseFaults(strings.ReplaceAll(name, "+", ","))
			if err != nil {
				return nil, err
			}
			out = append(out, mixed(parts))
			continue
		}
		f, ok := lookupFault(name)
		if !ok {
			var names []string
			for _, c := range catalogue {
				names = append(names, c.name)
			}
			return nil, fmt.Errorf("unknown fault %q (known: %s)", name, strings.Join(names, ", "))
		}
		out = append(out, f)
	}
	return out, nil
}

// mixed runs several faults at once; its window spans them all and it is
// ready when the last of them is.
func mixed(faults []fault) fault {
	var names []string
	for _, f := range faults {
		names = append(names, f.name)
	}
	name := "mixed(" + strings.Join(names, "+") + ")"
	return fault{name, "at once: " + strings.Join(names, ", "), func(e *env) (window, error) {
		w := window{Fault: name, Start: time.Now()}
		var mu sync.Mutex
		var errs []error
		var details []string
		var wg sync.WaitGroup
		for _, f := range faults {
			wg.Add(1)
			go func() {
				defer wg.Done()
				fw, err := f.run(e)
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					errs = append(errs, fmt.Errorf("%s: %w", f.name, err))
				}
				details = append(details, f.name+": "+fw.Detail)
				if fw.Ready.After(w.Ready) {
					w.Ready = fw.Ready
				}
			}()
		}
		wg.Wait()
		slices.Sort(details)
		w.Detail = strings.Join(details, "; ")
		if len(errs) > 0 {
			return w, errs[0]
		}
		return w, nil
	}, true}
}

func caddyKill(e *env) (window, error) {
	_, n := e.pickNode()
	w := window{Fault: "caddy-kill", Start: time.Now(), Detail: n.name}
	n.proc.kill()
	if err := e.sleep(e.jitter(2 * time.Second)); err != nil {
		return w, err
	}
	w.Ready = time.Now()
	if err := n.start(e.ctx, true); err != nil {
		return w, err
	}
	w.Detail = fmt.Sprintf("%s killed, restarted, feed up %.2fs after the restart", n.name, time.Since(w.Ready).Seconds())
	return w, nil
}

func caddyReload(e *env) (window, error) {
	_, n := e.pickNode()
	w := window{Fault: "caddy-reload", Start: time.Now(), Detail: n.name}
	if err := n.reload(e.ctx); err != nil {
		return w, err
	}
	w.Ready = time.Now()
	w.Detail = fmt.Sprintf("%s reloaded in %.2fs", n.name, w.Ready.Sub(w.Start).Seconds())
	return w, nil
}

func caddyFreeze(e *env) (window, error) {
	_, n := e.pickNode()
	w := window{Fault: "caddy-freeze", Start: time.Now()}
	n.freeze()
	d := e.jitter(6 * time.Second)
	err := e.sleep(d)
	n.thaw()
	w.Ready = time.Now()
	w.Detail = fmt.Sprintf("%s frozen %.1fs", n.name, d.Seconds())
	return w, err
}

func linkFault(name string, mode linkMode, delay, hold time.Duration) func(e *env) (window, error) {
	return func(e *env) (window, error) {
		_, n := e.pickNode()
		w := window{Fault: name, Start: time.Now()}
		n.setLinks(mode, delay)
		d := e.jitter(hold)
		err := e.sleep(d)
		n.setLinks(modePass, 0)
		w.Ready = time.Now()
		w.Detail = fmt.Sprintf("%s for %.1fs", n.name, d.Seconds())
		return w, err
	}
}

var (
	partition     = linkFault("partition", modeBlackhole, 0, 6*time.Second)
	partitionLong = linkFault("partition-long", modeBlackhole, 0, 65*time.Second)
	linkCut       = linkFault("link-cut", modeCut, 0, 2*time.Second)
	slowLink      = linkFault("slow-link", modePass, 200*time.Millisecond, 6*time.Second)
)

// killServer kills s and measures the election if it led the stream.
func (e *env) killServer(name string, s *natsServer, restartAfter time.Duration) (window, error) {
	w := window{Fault: name, Start: time.Now()}
	old, _ := streamLeader(e.ctx, e.js)
	s.proc.kill()
	w.Ready = time.Now()
	detail := "killed " + s.name
	if old == s.name {
		l, at, err := waitLeader(e.ctx, e.js, s.name, 60*time.Second)
		if err != nil {
			return w, err
		}
		w.Ready = at
		detail += fmt.Sprintf(" (the leader); %s leads after %.2fs", l, at.Sub(w.Start).Seconds())
	}
	if err := e.sleep(e.jitter(restartAfter)); err != nil {
		return w, err
	}
	if err := e.restartServer(s); err != nil {
		return w, err
	}
	w.Detail = detail + ", restarted"
	return w, nil
}

func leaderKill(e *env) (window, error) {
	s, err := e.leader()
	if err != nil {
		return window{Fault: "nats-leader-kill", Start: time.Now()}, err
	}
	return e.killServer("nats-leader-kill", s, 1*time.Second)
}

func followerKill(e *env) (window, error) {
	s, err := e.leader()
	if err != nil {
		return window{Fault: "nats-follower-kill", Start: time.Now()}, err
	}
	var others []*natsServer
	for _, o := range e.cluster.servers {
		if o != s {
			others = append(others, o)
		}
	}
	return e.killServer("nats-follower-kill", others[e.intn(len(others))], 3*time.Second)
}

func connectedKill(e *env) (window, error) {
	_, n := e.pickNode()
	j := n.connectedServer()
	for try := 0; j < 0 && try < 100; try++ { // it may be reconnecting after an earlier fault
		if err := e.sleep(100 * time.Millisecond); err != nil {
			return window{Fault: "nats-connected-kill", Start: time.Now()}, err
		}
		j = n.connectedServer()
	}
	if j < 0 {
		return window{Fault: "nats-connected-kill", Start: time.Now()}, fmt.Errorf("%s has no NATS connection", n.name)
	}
	w, err := e.killServer("nats-connected-kill", e.cluster.servers[j], 3*time.Second)
	w.Detail = n.name + "'s server: " + w.Detail
	return w, err
}

func clusterRestart(e *env) (window, error) {
	w := window{Fault: "nats-cluster-restart", Start: time.Now()}
	e.cluster.stop()
	for _, s := range e.cluster.servers {
		if err := s.proc.start(); err != nil {
			return w, err
		}
	}
	for _, s := range e.cluster.servers {
		if err := waitPort(e.ctx, s.clientAddr, 20*time.Second); err != nil {
			return w, err
		}
	}
	l, at, err := waitLeader(e.ctx, e.js, "", 60*time.Second)
	w.Ready = at
	w.Detail = fmt.Sprintf("down %.2fs until %s led the stream", at.Sub(w.Start).Seconds(), l)
	return w, err
}

func clientStorm(e *env) (window, error) {
	return dropAll(e, "client-storm", "dropped at once", nil)
}

// clientDropMidReplay drops every client, and each again after 1-5 events
// of the stream it reconnects to: the replay of what it missed.
func clientDropMidReplay(e *env) (window, error) {
	return dropAll(e, "client-drop-mid-replay", "dropped twice", func(c *sseClient) {
		c.dropAfter.Store(int64(1 + e.intn(5)))
	})
}

// dropAll ends every balanced client's stream at once (after prepare); they
// all reconnect with Last-Event-ID together.
func dropAll(e *env, name, what string, prepare func(*sseClient)) (window, error) {
	w := window{Fault: name, Start: time.Now()}
	cs := e.fleet.balanced()
	for _, c := range cs {
		if prepare != nil {
			prepare(c)
		}
		c.drop()
	}
	w.Ready = time.Now()
	w.Detail = fmt.Sprintf("%d clients %s", len(cs), what)
	return w, e.sleep(2 * time.Second)
}

func clientStall(e *env) (window, error) {
	w := window{Fault: "client-stall", Start: time.Now()}
	cs := e.fleet.balanced()
	d := e.jitter(8 * time.Second)
	until := time.Now().Add(d).UnixNano()
	k := 0
	for i, c := range cs {
		if i%10 == 0 {
			c.stallUntil.Store(until)
			k++
		}
	}
	err := e.sleep(d)
	w.Ready = time.Now()
	w.Detail = fmt.Sprintf("%d clients stalled %.1fs", k, d.Seconds())
	return w, err
}

func deleteMsg(e *env) (window, error) {
	w := window{Fault: "stream-delete-msg", Start: time.Now()}
	ctx, cancel := context.WithTimeout(e.ctx, 10*time.Second)
	defer cancel()
	s, err := e.js.Stream(ctx, streamName)
	if err != nil {
		return w, err
	}
	st := s.CachedInfo().State
	recent := st.LastSeq - uint64(e.intn(20))
	var done []string
	for _, seq := range []uint64{st.FirstSeq, recent} {
		if err := s.DeleteMsg(ctx, seq); err != nil {
			return w, fmt.Errorf("delete %d: %w", seq, err)
		}
		e.mu.Lock()
		e.deleted[posKey(e.inc, seq)] = true
		e.mu.Unlock()
		done = append(done, fmt.Sprint(seq))
	}
	w.Ready = time.Now()
	w.Detail = "deleted seq " + strings.Join(done, ", ")
	return w, e.sleep(time.Second)
}

func purge(e *env) (window, error) {
	w := window{Fault: "stream-purge", Start: time.Now()}
	cs := e.fleet.balanced()
	for _, c := range cs {
		c.drop()
	}
	ctx, cancel := context.WithTimeout(e.ctx, 10*time.Second)
	defer cancel()
	s, err := e.js.Stream(ctx, streamName)
	if err != nil {
		return w, err
	}
	e.mu.Lock()
	e.removes = true
	e.mu.Unlock()
	if err := s.Purge(ctx); err != nil {
		return w, err
	}
	w.Ready = time.Now()
	w.Detail = fmt.Sprintf("purged with %d clients reconnecting", len(cs))
	return w, e.sleep(2 * time.Second)
}

// firstAck is when NATS first acknowledged an event published at or after t:
// the stream was writable again.
func firstAck(sent []published, t time.Time) time.Time {
	var best int64
	for _, p := range sent {
		if p.At >= t.UnixNano() && p.AckAt > 0 && (best == 0 || p.AckAt < best) {
			best = p.AckAt
		}
	}
	if best == 0 {
		return time.Time{}
	}
	return time.Unix(0, best)
}

func setMaxMsgs(e *env, n int64) error {
	ctx, cancel := context.WithTimeout(e.ctx, 10*time.Second)
	defer cancel()
	s, err := e.js.Stream(ctx, streamName)
	if err != nil {
		return err
	}
	cfg := s.CachedInfo().Config
	cfg.MaxMsgs = n
	_, err = e.js.UpdateStream(ctx, cfg)
	return err
}

func streamLimits(e *env) (window, error) {
	w := window{Fault: "stream-limits", Start: time.Now()}
	e.mu.Lock()
	e.removes = true
	e.mu.Unlock()
	if err := setMaxMsgs(e, 600); err != nil {
		return w, err
	}
	defer func() { _ = setMaxMsgs(e, -1) }()
	_, n := e.pickNode()
	n.proc.kill()
	cs := e.fleet.balanced()
	// Away 4.5-8 s each: at the publisher's 100/s some come back inside the
	// 600 kept events, some at their edge, some past it.
	now := time.Now()
	var away time.Duration
	k := 0
	for i, c := range cs {
		if i%3 == 0 {
			d := 4500*time.Millisecond + time.Duration(e.intn(3500))*time.Millisecond
			away = max(away, d)
			c.awayUntil.Store(now.Add(d).UnixNano())
			c.drop()
			k++
		}
	}
	if err := e.sleep(2 * time.Second); err != nil {
		return w, err
	}
	w.Ready = time.Now()
	if err := n.start(e.ctx, true); err != nil {
		return w, err
	}
	if err := e.sleep(time.Until(now.Add(away)) + time.Second); err != nil {
		return w, err
	}
	w.Detail = fmt.Sprintf("MaxMsgs 600; %s restarted; %d clients away 4.5-%.1fs", n.name, k, away.Seconds())
	return w, nil
}

func recreate(e *env) (window, error) {
	w := window{Fault: "stream-recreate", Start: time.Now()}
	e.pub.pause(e.ctx)
	resumed := false
	defer func() {
		if !resumed {
			e.pub.resume(e.inc)
		}
	}()
	e.mu.Lock()
	e.removes = true
	e.mu.Unlock()
	ctx, cancel := context.WithTimeout(e.ctx, 30*time.Second)
	defer cancel()
	if err := e.js.DeleteStream(ctx, streamName); err != nil {
		return w, fmt.Errorf("delete stream: %w", err)
	}
	if err := createStream(ctx, e.js, natsServers); err != nil {
		return w, err
	}
	e.inc++
	e.pub.resume(e.inc)
	resumed = true
	w.Ready = time.Now()
	w.Detail = fmt.Sprintf("deleted and created again in %.2fs (incarnation %d)", w.Ready.Sub(w.Start).Seconds(), e.inc)
	return w, e.sleep(2 * time.Second)
}
