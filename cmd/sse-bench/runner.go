package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// runScenario runs one scenario against each requested target in turn (bare
// first, so both see the same machine state), then prints the JSON line.
func runScenario(ctx context.Context, o *options, stdout, stderr io.Writer) int {
	logger := log.New(stderr, "sse-bench: ", log.Ltime)
	out := &output{Scenario: o.scenario, Target: o.target, Params: o.params(), Results: map[string]*targetResult{}}
	err := runTargets(ctx, o, out, logger)
	if err != nil {
		out.Error = err.Error()
		logger.Print(err)
	}
	out.finish()
	line, _ := json.Marshal(out)
	_, _ = fmt.Fprintf(stdout, "%s\n", line)
	switch {
	case err != nil:
		return 1
	case len(out.Violations) > 0:
		return 3
	}
	return 0
}

func runTargets(ctx context.Context, o *options, out *output, logger *log.Logger) error {
	nc, err := nats.Connect(o.natsURL, nats.Name("sse-bench"), nats.Timeout(5*time.Second))
	if err != nil {
		return fmt.Errorf("connect to NATS %s: %w", o.natsURL, err)
	}
	defer nc.Close()
	stream, err := ensureStream(ctx, nc, o.subject, o.createStrm && o.target == "bare")
	if err != nil {
		return err
	}
	if o.stream != "" {
		stream = o.stream
	}
	run := strconv.FormatUint(rand.Uint64()&0xffffffffff, 36)
	targets := []string{o.target}
	if o.target == "both" {
		targets = []string{"bare", "caddy"}
	}
	for _, name := range targets {
		t := &targetRun{o: o, name: name, nc: nc, stream: stream, run: run + name[:1], res: &targetResult{}}
		t.log = log.New(logger.Writer(), "sse-bench["+name+"]: ", log.Ltime)
		out.Results[name] = t.res
		if err := t.execute(ctx); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	return nil
}

// targetRun is one scenario against one server.
type targetRun struct {
	o      *options
	name   string
	ep     sseEndpoint
	pid    int
	run    string
	nc     *nats.Conn
	stream string
	log    *log.Logger
	res    *targetResult

	g      *group
	server *serverSampler
	pub    *publisher
	tool0  time.Duration
}

func (t *targetRun) execute(ctx context.Context) error {
	o := t.o
	rawURL, pid := o.sseURL, o.pid
	if t.name == "bare" {
		rawURL, pid = o.bareURL, o.barePID
		if rawURL == "" {
			child, err := spawnBare(o, o.timeout+10*time.Second)
			if err != nil {
				return err
			}
			defer child.stop()
			rawURL, pid = protoScheme(o.proto)+"://"+child.addr+"/", child.pid
		}
	}
	ep, err := resolveSSE(rawURL, o.proto)
	if err != nil {
		return err
	}
	t.ep, t.pid = ep, pid
	t.res.URL, t.res.PID = rawURL, pid
	t.server = startSampler(ctx, pid, 200*time.Millisecond)
	defer t.server.close()
	t.res.Server.Sampled = pid != 0
	t.res.Server.RSSKiBStart, _ = t.server.read()
	t.tool0 = selfCPU()
	if t.pub, err = newPublisher(t.nc, o.subject, t.run, o.window, o.payload); err != nil {
		return err
	}
	defer t.closeGroup()
	err = scenarios[o.scenario](ctx, t)
	t.res.Server.RSSKiBEnd, _ = t.server.read()
	t.res.Server.RSSKiBMax = t.server.maxRSS.Load()
	return err
}

// connect opens every connection (bounded ramp) and waits until all have a
// stream, or -connect-wait passes, then lets things settle.
func (t *targetRun) connect(ctx context.Context) error {
	o := t.o
	cfg := fleetConfig{
		Addr: t.ep.addr, Host: t.ep.host, Target: t.ep.target,
		Sources: sourceAddrs(o.sources, t.ep.addr), Count: o.clients, Run: t.run,
		ConnectPar: o.connectPar, SlowPercent: o.slowPercent, SlowRcvBuf: o.slowRcvBuf, SlowMSS: o.slowMSS,
		ReadBuf: o.readBuf, DialTimeout: o.dialTimeout, Backoff: o.backoff,
		CutPoll: cutPollInterval(o.clients), Proto: o.proto, Streams: o.h2Streams,
	}
	if o.scenario != "slow" {
		cfg.SlowPercent = 0
	}
	start := time.Now()
	g, err := newGroup(ctx, cfg, o.perProc, o.timeout)
	if err != nil {
		return err
	}
	t.g = g
	t.res.Workers = len(g.workerPIDs())
	t.log.Printf("connecting %d clients to %s over %s (%d processes, %d source addresses)", o.clients, t.ep.addr, protoLabel(o.proto, o.h2Streams), len(g.members), len(cfg.Sources))
	deadline := time.Now().Add(o.connectWait)
	lastLog := time.Now()
	for {
		st, err := g.status(0)
		if err != nil {
			return err
		}
		if st.Connected >= o.clients {
			t.log.Printf("%d connected in %.2fs (%d turn-aways)", st.Connected, time.Since(start).Seconds(), st.TurnAways)
			break
		}
		if time.Now().After(deadline) {
			t.log.Printf("only %d of %d connected after %s; going on", st.Connected, o.clients, o.connectWait)
			break
		}
		if time.Since(lastLog) > 2*time.Second {
			t.log.Printf("%d/%d connected, %d failed attempts, %d turned away", st.Connected, o.clients, st.Failures, st.TurnAways)
			lastLog = time.Now()
		}
		if !sleepCtx(ctx, 50*time.Millisecond) {
			return ctx.Err()
		}
	}
	if !sleepCtx(ctx, o.settle) {
		return ctx.Err()
	}
	return nil
}

// cutPollInterval trades the resolution of "time until cut" for the cost of
// reading the kernel's socket tables, which grows with the socket count.
func cutPollInterval(clients int) time.Duration {
	switch {
	case clients <= 2000:
		return 50 * time.Millisecond
	case clients <= 20000:
		return 200 * time.Millisecond
	}
	return 500 * time.Millisecond
}

// waitCaughtUp waits until every healthy client holds every number up to n.
func (t *targetRun) waitCaughtUp(ctx context.Context, n int64, limit time.Duration) (status, bool, error) {
	deadline := time.Now().Add(limit)
	for {
		st, err := t.g.status(n)
		if err != nil {
			return st, false, err
		}
		if st.CaughtUp >= st.Healthy {
			return st, true, nil
		}
		if time.Now().After(deadline) {
			t.log.Printf("%d of %d clients hold every event up to %d after %s", st.CaughtUp, st.Healthy, n, limit)
			return st, false, nil
		}
		if !sleepCtx(ctx, 20*time.Millisecond) {
			return st, false, ctx.Err()
		}
	}
}

// waitOpen waits until at most n streams are open.
func (t *targetRun) waitOpen(ctx context.Context, n int, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		st, err := t.g.status(0)
		if err != nil {
			return err
		}
		if st.Open <= n {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d streams still open after %s", st.Open, limit)
		}
		if !sleepCtx(ctx, 20*time.Millisecond) {
			return ctx.Err()
		}
	}
}

// publishAndFlush flushes outstanding publishes and returns the last number.
func (t *targetRun) flush(ctx context.Context) (int64, error) {
	err := t.pub.flush(ctx)
	return t.pub.last.Load(), err
}

func (t *targetRun) toolCPU() time.Duration {
	var pids []int
	if t.g != nil {
		pids = t.g.workerPIDs()
	}
	return toolCPU(pids)
}

// report fetches the merged fleet report and fills the common result fields.
func (t *targetRun) report(expected int64) (fleetReport, error) {
	rep, err := t.g.report(expected)
	if err != nil {
		return rep, err
	}
	r := t.res
	r.Clients, r.Connected, r.ConnectFailures = rep.Clients, rep.Connected, rep.Failures
	r.Proto, r.Dials = protoLabel(t.o.proto, t.o.h2Streams), rep.Dials
	r.ConnectMS = msDist(rep.Connect)
	r.Errors = rep.Errors
	r.Publish = publishStats{Published: t.pub.last.Load(), Acked: t.pub.acked.Load(), Errors: t.pub.errs.Load(), Lost: t.pub.lost.Load()}
	return rep, nil
}

func (t *targetRun) closeGroup() {
	if t.g == nil {
		return
	}
	// Tool CPU covers the whole target run, workers included, so read it
	// before the workers exit.
	t.res.ToolCPUS = seconds(t.toolCPU() - t.tool0)
	t.g.close()
	t.g = nil
}

// consumerWatch polls the stream's consumer count and keeps the maximum.
type consumerWatch struct {
	max  int
	err  error
	done chan struct{}
	stop context.CancelFunc
}

func watchConsumers(ctx context.Context, nc *nats.Conn, stream string, every time.Duration) *consumerWatch {
	w := &consumerWatch{max: -1, done: make(chan struct{})}
	ctx, w.stop = context.WithCancel(ctx)
	js, err := jetstream.New(nc)
	if err != nil {
		w.err = err
		close(w.done)
		return w
	}
	go func() {
		defer close(w.done)
		for {
			rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			n, err := consumerCount(rctx, js, stream)
			cancel()
			if err == nil {
				w.max = max(w.max, n)
			} else if !errors.Is(err, context.Canceled) {
				w.err = err
			}
			if !sleepCtx(ctx, every) {
				return
			}
		}
	}()
	return w
}

// result stops polling and returns the maximum seen (-1 if none).
func (w *consumerWatch) result() (int, error) {
	w.stop()
	<-w.done
	return w.max, w.err
}

func countConsumers(ctx context.Context, nc *nats.Conn, stream string) int {
	js, err := jetstream.New(nc)
	if err != nil {
		return -1
	}
	rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	n, err := consumerCount(rctx, js, stream)
	if err != nil {
		return -1
	}
	return n
}
