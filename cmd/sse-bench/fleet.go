package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddy-sse/caddy-sse/internal/sseclient"
)

// A fleet is a set of clients driven together. The scenarios talk to fleets
// only through request/response messages, so the same code drives clients in
// this process (localFleet) and in worker processes (remoteFleet, worker.go).

type fleetConfig struct {
	Addr        string        `json:"addr"`   // server ip:port to dial
	Host        string        `json:"host"`   // Host header
	Target      string        `json:"target"` // request-target: path and query
	Sources     []string      `json:"sources"`
	First       int           `json:"first"` // global index of the first client
	Count       int           `json:"count"`
	Run         string        `json:"run"`
	ConnectPar  int           `json:"connect_par"`
	SlowPercent float64       `json:"slow_percent"`
	SlowRcvBuf  int           `json:"slow_rcvbuf"`
	SlowMSS     int           `json:"slow_mss"`
	ReadBuf     int           `json:"read_buf"`
	DialTimeout time.Duration `json:"dial_timeout"`
	Backoff     time.Duration `json:"backoff"`
	CutPoll     time.Duration `json:"cut_poll"`
	Proto       string        `json:"proto"`   // h1 h1tls h2c h2 h3 (proto.go)
	Streams     int           `json:"streams"` // h2c, h2, h3: streams per connection
}

type request struct {
	Op     string       `json:"op"` // start status phase drop reconnect stall report close
	Config *fleetConfig `json:"config,omitempty"`
	N      int64        `json:"n,omitempty"` // status: caught-up target; reconnect: round target; report: last published
	Phase  int          `json:"phase,omitempty"`
}

type response struct {
	Status *status      `json:"status,omitempty"`
	Report *fleetReport `json:"report,omitempty"`
	Error  string       `json:"error,omitempty"`
}

type status struct {
	Clients   int   `json:"clients"`
	Open      int   `json:"open"`      // streams open now
	Connected int   `json:"connected"` // clients that had a stream at least once
	Healthy   int   `json:"healthy"`   // not stalled
	CaughtUp  int   `json:"caught_up"` // healthy clients holding every number up to N
	Stalled   int   `json:"stalled"`
	Cut       int   `json:"cut"`
	Delivered int64 `json:"delivered"`
	Failures  int64 `json:"failures"`
	TurnAways int64 `json:"turn_aways"` // turned-away answers so far
}

func (s status) merge(o status) status {
	return status{
		Clients: s.Clients + o.Clients, Open: s.Open + o.Open, Connected: s.Connected + o.Connected,
		Healthy: s.Healthy + o.Healthy, CaughtUp: s.CaughtUp + o.CaughtUp, Stalled: s.Stalled + o.Stalled,
		Cut: s.Cut + o.Cut, Delivered: s.Delivered + o.Delivered, Failures: s.Failures + o.Failures,
		TurnAways: s.TurnAways + o.TurnAways,
	}
}

const phases = 2 // latency phases: 0 = main (or "before"), 1 = "during" (slow scenario)

type fleetReport struct {
	Clients      int              `json:"clients"`
	Connected    int              `json:"connected"`
	Healthy      int              `json:"healthy"`
	Delivered    int64            `json:"delivered"`
	Foreign      int64            `json:"foreign"`
	Duplicates   int64            `json:"duplicates"`
	OutOfOrder   int64            `json:"out_of_order"`
	Missing      int64            `json:"missing"` // healthy clients: numbers 1..N never received
	Holes        int64            `json:"holes"`   // of those, numbers below a client's highest received
	Resets       int64            `json:"resets"`
	Disconnects  int64            `json:"disconnects"` // streams the server ended unasked
	Reconnects   int64            `json:"reconnects"`
	Attempts     int64            `json:"attempts"`
	Failures     int64            `json:"failures"`
	Dials        int64            `json:"dials"`         // connections dialed (on h2c, h2, h3 shared by up to -h2-streams streams)
	MultiAttempt int              `json:"multi_attempt"` // clients needing >1 attempt this round
	NotCaughtUp  int              `json:"not_caught_up"` // healthy clients short of the round target
	Stalled      int              `json:"stalled"`
	Cut          int              `json:"cut"`
	Latency      [phases]histSnap `json:"latency"`
	Connect      histSnap         `json:"connect"`
	Reconnect    histSnap         `json:"reconnect"`
	CatchUp      histSnap         `json:"catch_up"`
	CutTime      histSnap         `json:"cut_time"`
	FullTime     histSnap         `json:"full_time"`    // stall to the server's send queue last growing
	BlockedTime  histSnap         `json:"blocked_time"` // send queue full to cut
	SendQ        histSnap         `json:"sendq"`        // the server's largest send queue, bytes
	// Turned-away answers (200 with Retry-After, retry: and no events): all of them, those of the current
	// round, the malformed ones (no retry field, not ended at once, events carried), clients turned away at
	// least once this round and how often (per healthy client), how long each answer took to end and the
	// wait it asked for.
	TurnAways      int64    `json:"turn_aways"`
	RoundTurnAways int64    `json:"round_turn_aways"`
	TurnAwayBad    int64    `json:"turn_away_bad"`
	TurnedClients  int      `json:"turned_clients"`
	TurnedPer      histSnap `json:"turned_per_client"` // counts, not ns
	TurnAwayEnd    histSnap `json:"turn_away_end"`
	TurnAwayRetry  histSnap `json:"turn_away_retry"`
	Admitted       histSnap `json:"admitted"` // round start to the first admitted stream of the round
	// HoleSamples name a few clients left with a gap: where it opened and on which connection.
	HoleSamples []string `json:"hole_samples,omitempty"`
	Errors      []string `json:"errors,omitempty"`
}

func (r fleetReport) merge(o fleetReport) fleetReport {
	out := fleetReport{
		Clients: r.Clients + o.Clients, Connected: r.Connected + o.Connected, Healthy: r.Healthy + o.Healthy,
		Delivered: r.Delivered + o.Delivered, Foreign: r.Foreign + o.Foreign, Duplicates: r.Duplicates + o.Duplicates,
		OutOfOrder: r.OutOfOrder + o.OutOfOrder, Missing: r.Missing + o.Missing, Holes: r.Holes + o.Holes,
		Resets:      r.Resets + o.Resets,
		Disconnects: r.Disconnects + o.Disconnects, Reconnects: r.Reconnects + o.Reconnects,
		Attempts: r.Attempts + o.Attempts, Failures: r.Failures + o.Failures, Dials: r.Dials + o.Dials,
		MultiAttempt: r.MultiAttempt + o.MultiAttempt, NotCaughtUp: r.NotCaughtUp + o.NotCaughtUp,
		Stalled: r.Stalled + o.Stalled, Cut: r.Cut + o.Cut,
		Connect: r.Connect.merge(o.Connect), Reconnect: r.Reconnect.merge(o.Reconnect),
		CatchUp: r.CatchUp.merge(o.CatchUp), CutTime: r.CutTime.merge(o.CutTime),
		FullTime: r.FullTime.merge(o.FullTime), BlockedTime: r.BlockedTime.merge(o.BlockedTime),
		SendQ:     r.SendQ.merge(o.SendQ),
		TurnAways: r.TurnAways + o.TurnAways, RoundTurnAways: r.RoundTurnAways + o.RoundTurnAways,
		TurnAwayBad: r.TurnAwayBad + o.TurnAwayBad, TurnedClients: r.TurnedClients + o.TurnedClients,
		TurnedPer: r.TurnedPer.merge(o.TurnedPer), TurnAwayEnd: r.TurnAwayEnd.merge(o.TurnAwayEnd),
		TurnAwayRetry: r.TurnAwayRetry.merge(o.TurnAwayRetry), Admitted: r.Admitted.merge(o.Admitted),
		HoleSamples: mergeErrors(r.HoleSamples, o.HoleSamples),
		Errors:      mergeErrors(r.Errors, o.Errors),
	}
	for i := range out.Latency {
		out.Latency[i] = r.Latency[i].merge(o.Latency[i])
	}
	return out
}

const maxErrorSamples = 8

func mergeErrors(a, b []string) []string {
	out := append([]string(nil), a...)
	for _, e := range b {
		if len(out) >= maxErrorSamples {
			break
		}
		dup := false
		for _, x := range out {
			dup = dup || x == e
		}
		if !dup {
			out = append(out, e)
		}
	}
	return out
}

// fleetAPI is what the scenarios drive.
type fleetAPI interface {
	call(req request) (response, error)
	pid() int // worker process id; 0 in this process
	close()
}

// localFleet runs clients as goroutines of this process.
type localFleet struct {
	cfg     fleetConfig
	ctx     context.Context
	cancel  context.CancelFunc
	run     []byte
	clients []*client
	wg      sync.WaitGroup
	sem     chan struct{}
	watcher *cutWatcher
	tls     *tls.Config // h1tls: every connection's TLS client
	mux     *muxPool    // h2c, h2, h3: the shared connections

	phase      atomic.Int32
	latency    [phases]histogram
	connectH   histogram
	reconnectH histogram

	turnAways, turnAwayBad       atomic.Int64
	turnAwayEndH, turnAwayRetryH histogram

	delivered, foreign, dups, ooo, resets       atomic.Int64
	disconnects, reconnects, attempts, failures atomic.Int64
	dials                                       atomic.Int64
	open                                        atomic.Int64
	target, roundStart, stallStart              atomic.Int64
	dropped                                     atomic.Bool

	mu   sync.Mutex
	gate chan struct{} // closed while clients may connect
	errs []string
}

// slowIndex spreads the stalling clients evenly: exactly floor(C*pct/100) of
// the first C indexes are slow.
func slowIndex(i int, pct float64) bool {
	return int(float64(i+1)*pct/100) > int(float64(i)*pct/100)
}

func newLocalFleet(parent context.Context, cfg fleetConfig) (*localFleet, error) {
	server, err := net.ResolveTCPAddr("tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("server address %q: %w", cfg.Addr, err)
	}
	f := &localFleet{cfg: cfg, run: []byte(cfg.Run), sem: make(chan struct{}, max(cfg.ConnectPar, 1))}
	f.ctx, f.cancel = context.WithCancel(parent)
	f.gate = make(chan struct{})
	close(f.gate)
	f.watcher = newCutWatcher(keyOf(server), cfg.CutPoll)
	if multiplexed(cfg.Proto) {
		if f.mux, err = newMuxPool(f, clientTLS(cfg.Proto)); err != nil {
			return nil, err
		}
	} else {
		f.tls = clientTLS(cfg.Proto)
	}

	network := "tcp4"
	if server.IP.To4() == nil {
		network = "tcp6"
	}
	type dialers struct{ normal, slow *net.Dialer }
	var byIP []dialers
	mk := func(ip net.IP, rcvbuf, mss int) *net.Dialer {
		d := &net.Dialer{Timeout: cfg.DialTimeout, KeepAlive: -1, Control: dialControl(rcvbuf, mss)}
		if ip != nil {
			d.LocalAddr = &net.TCPAddr{IP: ip}
		}
		return d
	}
	for _, s := range cfg.Sources {
		ip := net.ParseIP(s)
		if ip == nil || (network == "tcp4") != (ip.To4() != nil) {
			continue
		}
		byIP = append(byIP, dialers{mk(ip, 0, 0), mk(ip, cfg.SlowRcvBuf, cfg.SlowMSS)})
	}
	if len(byIP) == 0 {
		byIP = append(byIP, dialers{mk(nil, 0, 0), mk(nil, cfg.SlowRcvBuf, cfg.SlowMSS)})
	}

	f.clients = make([]*client, cfg.Count)
	for i := range f.clients {
		idx := cfg.First + i
		c := &client{f: f, idx: idx, slow: slowIndex(idx, cfg.SlowPercent)}
		d := byIP[idx%len(byIP)]
		c.dialer = d.normal
		if c.slow {
			c.dialer = d.slow
		}
		c.p = sseclient.NewParser(c)
		f.clients[i] = c
	}
	f.wg.Add(len(f.clients))
	for _, c := range f.clients {
		go c.run()
	}
	return f, nil
}

func (f *localFleet) pid() int { return 0 }

func (f *localFleet) call(req request) (response, error) {
	switch req.Op {
	case "status":
		s := f.status(req.N)
		return response{Status: &s}, nil
	case "phase":
		f.phase.Store(int32(min(max(req.Phase, 0), phases-1)))
	case "drop":
		f.drop()
	case "reconnect":
		f.reconnect(req.N)
	case "stall":
		f.stall()
	case "report":
		r := f.report(req.N)
		return response{Report: &r}, nil
	case "close":
		f.close()
	default:
		return response{}, fmt.Errorf("unknown fleet op %q", req.Op)
	}
	return response{}, nil
}

func (f *localFleet) status(target int64) status {
	s := status{Clients: len(f.clients), Open: int(f.open.Load()), Delivered: f.delivered.Load(), Failures: f.failures.Load(),
		TurnAways: f.turnAways.Load()}
	for _, c := range f.clients {
		if c.everOpen.Load() {
			s.Connected++
		}
		switch {
		case c.stalled.Load():
			s.Stalled++
			if c.cut.Load() {
				s.Cut++
			}
		default:
			s.Healthy++
			if c.contig.Load() >= target {
				s.CaughtUp++
			}
		}
	}
	return s
}

// drop closes every connection at once; clients wait for reconnect.
func (f *localFleet) drop() {
	f.mu.Lock()
	f.dropped.Store(true)
	f.gate = make(chan struct{})
	f.mu.Unlock()
	for _, c := range f.clients {
		c.closeConn()
	}
}

// reconnect releases every dropped client at once and starts a round: each
// client notes when it holds every number up to target.
func (f *localFleet) reconnect(target int64) {
	for _, c := range f.clients {
		c.roundAttempts.Store(0)
		c.caughtAt.Store(0)
		c.admittedAt.Store(0)
		c.roundTurned.Store(0)
	}
	f.roundStart.Store(time.Now().UnixNano())
	f.target.Store(target)
	f.mu.Lock()
	if f.dropped.Load() {
		f.dropped.Store(false)
		close(f.gate)
	}
	f.mu.Unlock()
}

// waitGate blocks while the fleet is dropped; false when the fleet ends.
func (f *localFleet) waitGate() bool {
	f.mu.Lock()
	g := f.gate
	f.mu.Unlock()
	select {
	case <-g:
		return f.ctx.Err() == nil
	case <-f.ctx.Done():
		return false
	}
}

// stall makes every slow client stop reading, with its socket left open.
func (f *localFleet) stall() {
	f.stallStart.Store(time.Now().UnixNano())
	for _, c := range f.clients {
		if c.slow {
			c.stalled.Store(true)
			c.interrupt()
		}
	}
}

func (f *localFleet) report(expected int64) fleetReport {
	r := fleetReport{
		Clients: len(f.clients), Delivered: f.delivered.Load(), Foreign: f.foreign.Load(),
		Duplicates: f.dups.Load(), OutOfOrder: f.ooo.Load(), Resets: f.resets.Load(),
		Disconnects: f.disconnects.Load(), Reconnects: f.reconnects.Load(),
		Attempts: f.attempts.Load(), Failures: f.failures.Load(), Dials: f.dials.Load(),
		Connect: f.connectH.snapshot(), Reconnect: f.reconnectH.snapshot(),
		TurnAways: f.turnAways.Load(), TurnAwayBad: f.turnAwayBad.Load(),
		TurnAwayEnd: f.turnAwayEndH.snapshot(), TurnAwayRetry: f.turnAwayRetryH.snapshot(),
	}
	for i := range r.Latency {
		r.Latency[i] = f.latency[i].snapshot()
	}
	var catchUp, cutTime, fullTime, blockedTime, sendq, turnedPer, admitted histogram
	target := f.target.Load()
	for _, c := range f.clients {
		if c.everOpen.Load() {
			r.Connected++
		}
		if c.roundAttempts.Load() > 1 {
			r.MultiAttempt++
		}
		if c.stalled.Load() {
			r.Stalled++
			if c.cut.Load() {
				r.Cut++
				cutTime.record(c.cutAfter.Load())
				if full := c.fullAfter.Load(); full > 0 {
					fullTime.record(full - 1)
					blockedTime.record(c.cutAfter.Load() - (full - 1))
					sendq.record(c.sendq.Load())
				}
			}
			continue
		}
		r.Healthy++
		r.Missing += missing(c.maxSeen.Load(), c.gap.Load(), expected)
		if gap := c.gap.Load(); gap > 0 {
			r.Holes += gap
			if len(r.HoleSamples) < maxErrorSamples {
				r.HoleSamples = append(r.HoleSamples, fmt.Sprintf("client %d: %d missing, first gap %d-%d opened on attempt %d of the round, highest %d",
					c.idx, gap, c.holeLo.Load(), c.holeHi.Load(), c.holeAttempt.Load(), c.maxSeen.Load()))
			}
		}
		turned := c.roundTurned.Load()
		r.RoundTurnAways += int64(turned)
		if turned > 0 {
			r.TurnedClients++
		}
		turnedPer.record(int64(turned))
		if at := c.admittedAt.Load(); at > 0 {
			admitted.record(at - 1)
		}
		if target > 0 {
			if at := c.caughtAt.Load(); at > 0 {
				catchUp.record(at - 1)
			} else {
				r.NotCaughtUp++
			}
		}
	}
	r.CatchUp, r.CutTime = catchUp.snapshot(), cutTime.snapshot()
	r.FullTime, r.BlockedTime, r.SendQ = fullTime.snapshot(), blockedTime.snapshot(), sendq.snapshot()
	r.TurnedPer, r.Admitted = turnedPer.snapshot(), admitted.snapshot()
	f.mu.Lock()
	r.Errors = append([]string(nil), f.errs...)
	f.mu.Unlock()
	return r
}

func (f *localFleet) noteErr(err error) {
	if err == nil {
		return
	}
	f.mu.Lock()
	f.errs = mergeErrors(f.errs, []string{err.Error()})
	f.mu.Unlock()
}

// close ends every client and waits (bounded) for their goroutines.
func (f *localFleet) close() {
	f.cancel()
	for _, c := range f.clients {
		c.closeConn()
	}
	if f.mux != nil {
		f.mux.close()
	}
	done := make(chan struct{})
	go func() { f.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
	}
}
