// Command sse-bench load-tests an SSE server fed by NATS JetStream (the
// caddy-sse module) and compares it with a bare reference server built in.
//
//	sse-bench [flags] idle|fanout|storm|slow
//	sse-bench bare -listen 127.0.0.1:PORT -nats URL -subject S
//	sse-bench table FILE...   # scenario JSON lines as a Markdown table
//	sse-bench prototable FILE...   # idle and fanout runs of several protocols as one table
//
// Each scenario run prints exactly one JSON line on stdout; progress goes to
// stderr. Everything it connects to must be on a loopback address.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"syscall"
	"time"
)

var scenarios = map[string]func(context.Context, *targetRun) error{
	"idle":   runIdle,
	"fanout": runFanout,
	"storm":  runStorm,
	"slow":   runSlow,
}

type options struct {
	scenario string
	worker   bool

	target      string
	proto       string
	h2Streams   int
	sseURL      string
	natsURL     string
	subject     string
	stream      string
	pid         int
	clients     int
	rate        float64
	duration    time.Duration
	missed      int
	warmup      int
	slowPercent float64
	sources     int
	timeout     time.Duration

	connectPar  int
	connectWait time.Duration
	perProc     int
	payload     int
	window      int
	readBuf     int
	dialTimeout time.Duration
	backoff     time.Duration
	settle      time.Duration
	drain       time.Duration
	stormWait   time.Duration
	cutWait     time.Duration
	slowRcvBuf  int
	slowMSS     int
	createStrm  bool

	metricsURL string

	bareURL          string
	barePID          int
	bareQueue        int
	bareWriteTimeout time.Duration
	bareConnectRate  float64
	bareRetry        time.Duration
	barePprof        string
}

func newFlagSet(o *options, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("sse-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		_, _ = fmt.Fprintf(stderr, "usage: sse-bench [flags] idle|fanout|storm|slow\n       sse-bench bare [-listen 127.0.0.1:PORT] [-nats URL] [-subject S]\n       sse-bench table FILE...\n       sse-bench prototable FILE...\n\nflags:\n")
		fs.PrintDefaults()
	}
	fs.StringVar(&o.target, "target", "caddy", "server(s) to measure: caddy (the -url server), bare (built-in reference) or both")
	fs.StringVar(&o.proto, "proto", protoH1, "protocol: h1 (HTTP/1.1, raw client), h1tls (HTTP/1.1 over TLS), h2c (HTTP/2 cleartext, prior knowledge), h2 (HTTP/2 over TLS) or h3 (HTTP/3 over QUIC); storm and slow need h1. Certificates are not verified")
	fs.IntVar(&o.h2Streams, "h2-streams", 1, "h2c, h2, h3: streams per connection (1: a connection per client; 100: a hundred clients, like browser tabs, on each)")
	fs.StringVar(&o.sseURL, "url", "", "SSE `URL` of the server under test (loopback only; http:// for h1 and h2c, https:// for h1tls, h2 and h3)")
	fs.StringVar(&o.natsURL, "nats", "nats://127.0.0.1:4222", "NATS `URL` to publish to (loopback only)")
	fs.StringVar(&o.subject, "subject", "sse.bench", "NATS `subject` the events are published to")
	fs.StringVar(&o.stream, "stream", "", "JetStream stream to count consumers on (default: the one capturing -subject)")
	fs.IntVar(&o.pid, "pid", 0, "`pid` of the server under test, sampled for RSS and CPU (0: not sampled)")
	fs.IntVar(&o.clients, "c", 100, "number of SSE connections")
	fs.Float64Var(&o.rate, "rate", 10, "events published per second")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "publishing time (fanout, storm live feed, each slow phase) or hold time (idle)")
	fs.IntVar(&o.missed, "missed", 1000, "storm: events published while every client is away")
	fs.IntVar(&o.warmup, "warmup", 10, "storm: events every client receives before the drop")
	fs.Float64Var(&o.slowPercent, "slow-percent", 10, "slow: percentage of clients that stop reading")
	fs.IntVar(&o.sources, "sources", 4, "loopback source addresses to spread connections over (127.0.0.2 ...)")
	fs.DurationVar(&o.timeout, "timeout", 5*time.Minute, "hard limit for the whole run")

	fs.IntVar(&o.connectPar, "connect-par", 200, "connections being opened at once during the initial ramp")
	fs.DurationVar(&o.connectWait, "connect-wait", time.Minute, "how long to wait for all initial connections")
	fs.IntVar(&o.perProc, "per-proc", 19800, "connections per process; more use worker processes")
	fs.IntVar(&o.payload, "payload", 0, "extra padding bytes per event payload")
	fs.IntVar(&o.window, "window", 256, "publishes awaiting a JetStream ack at most")
	fs.IntVar(&o.readBuf, "read-buf", 4096, "read buffer bytes per connection")
	fs.DurationVar(&o.dialTimeout, "dial-timeout", 10*time.Second, "connect and response-head timeout")
	fs.DurationVar(&o.backoff, "backoff", 200*time.Millisecond, "mean delay before a reconnect (jittered)")
	fs.DurationVar(&o.settle, "settle", 500*time.Millisecond, "pause after connecting, before measuring")
	fs.DurationVar(&o.drain, "drain", 15*time.Second, "how long to wait for deliveries after publishing stops")
	fs.DurationVar(&o.stormWait, "storm-wait", time.Minute, "storm: how long to wait for every client to catch up")
	fs.DurationVar(&o.cutWait, "cut-wait", time.Minute, "slow: how long to wait for the server to cut stalled clients")
	fs.IntVar(&o.slowRcvBuf, "slow-rcvbuf", 8192, "slow: SO_RCVBUF of stalling clients (0: kernel default)")
	fs.IntVar(&o.slowMSS, "slow-mss", 1460, "slow: TCP MSS stalling clients advertise, as over the Internet (0: loopback's 64 KiB)")
	fs.BoolVar(&o.createStrm, "create-stream", true, "with -target bare: create a memory stream for -subject if none captures it")

	fs.StringVar(&o.metricsURL, "metrics", "", "storm: Prometheus `URL` of the server under test (Caddy's admin /metrics), read before and after the storm")

	fs.StringVar(&o.bareURL, "bare-url", "", "use an already running bare server at this `URL` instead of starting one")
	fs.IntVar(&o.barePID, "bare-pid", 0, "`pid` of the -bare-url server")
	fs.IntVar(&o.bareQueue, "bare-queue", 256, "queue length per client of the started bare server")
	fs.DurationVar(&o.bareWriteTimeout, "bare-write-timeout", 10*time.Second, "per-write deadline of the started bare server")
	fs.Float64Var(&o.bareConnectRate, "bare-max-connect-rate", 0, "new streams per second the started bare server admits, turning the others away like max_connect_rate (0: no cap)")
	fs.StringVar(&o.barePprof, "bare-pprof", "", "the started bare server also serves net/http/pprof on this loopback `host:port`")
	fs.DurationVar(&o.bareRetry, "bare-retry", time.Second, "the started bare server's retry, which its turned-away answers multiply by 2-6 (at least 2 s)")
	return fs
}

// parseArgs accepts the scenario before or after the flags. A leading
// -worker (not in the usage: only the tool itself starts workers) selects
// worker mode.
func parseArgs(args []string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := newFlagSet(o, stderr)
	if len(args) > 0 && args[0] == "-worker" {
		o.worker = true
		args = args[1:]
	}
	if len(args) > 0 && scenarios[args[0]] != nil {
		o.scenario = args[0]
		args = args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if o.scenario == "" && fs.NArg() > 0 {
		o.scenario = fs.Arg(0)
		if err := fs.Parse(fs.Args()[1:]); err != nil {
			return nil, err
		}
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if o.worker {
		return o, nil
	}
	if scenarios[o.scenario] == nil {
		fs.Usage()
		return nil, fmt.Errorf("unknown or missing scenario %q", o.scenario)
	}
	return o, o.validate()
}

func (o *options) validate() error {
	if !slices.Contains([]string{"caddy", "bare", "both"}, o.target) {
		return fmt.Errorf("-target must be caddy, bare or both, not %q", o.target)
	}
	if err := validateProto(o.proto, o.scenario, o.h2Streams); err != nil {
		return err
	}
	if o.target != "bare" {
		if o.sseURL == "" {
			return fmt.Errorf("-target %s needs -url", o.target)
		}
		if _, err := resolveSSE(o.sseURL, o.proto); err != nil {
			return err
		}
	}
	if o.bareURL != "" {
		if _, err := resolveSSE(o.bareURL, o.proto); err != nil {
			return err
		}
	}
	if err := checkLoopbackURLs(o.natsURL); err != nil {
		return err
	}
	if o.barePprof != "" {
		if err := checkLoopbackHostPort(o.barePprof); err != nil {
			return err
		}
	}
	if o.metricsURL != "" {
		if err := checkLoopbackHTTP(o.metricsURL); err != nil {
			return err
		}
	}
	switch {
	case o.clients < 1:
		return fmt.Errorf("-c must be at least 1")
	case o.rate < 0 || o.missed < 0 || o.warmup < 0 || o.payload < 0:
		return fmt.Errorf("-rate, -missed, -warmup and -payload cannot be negative")
	case o.slowPercent < 0 || o.slowPercent > 100:
		return fmt.Errorf("-slow-percent must be within 0..100")
	case o.sources < 0 || o.sources > 250:
		return fmt.Errorf("-sources must be within 0..250")
	case o.timeout <= 0:
		return fmt.Errorf("-timeout must be positive")
	case o.bareConnectRate < 0:
		return fmt.Errorf("-bare-max-connect-rate cannot be negative")
	case o.perProc < 1 || o.window < 1 || o.readBuf < 64:
		return fmt.Errorf("-per-proc and -window must be positive, -read-buf at least 64")
	case o.scenario == "slow" && o.slowPercent == 0:
		return fmt.Errorf("slow needs -slow-percent above 0")
	}
	// Each source address offers ~28k ephemeral ports towards one server
	// port; keep well inside that.
	if need := (o.clients + perSourceConns - 1) / perSourceConns; o.sources > 0 && o.sources < need {
		o.sources = need
	}
	return nil
}

const perSourceConns = 25000

func (o *options) params() map[string]any {
	return map[string]any{
		"c": o.clients, "rate": o.rate, "duration_s": o.duration.Seconds(), "missed": o.missed,
		"warmup": o.warmup, "slow_percent": o.slowPercent, "sources": o.sources, "subject": o.subject,
		"payload_pad": o.payload, "window": o.window, "per_proc": o.perProc, "read_buf": o.readBuf,
		"timeout_s": o.timeout.Seconds(), "connect_par": o.connectPar, "cut_wait_s": o.cutWait.Seconds(),
		"slow_rcvbuf": o.slowRcvBuf, "slow_mss": o.slowMSS, "bare_queue": o.bareQueue,
		"bare_write_timeout_s": o.bareWriteTimeout.Seconds(), "bare_external": o.bareURL != "",
		"bare_max_connect_rate": o.bareConnectRate, "bare_retry_s": o.bareRetry.Seconds(), "metrics": o.metricsURL != "",
		"backoff_s": o.backoff.Seconds(), "proto": o.proto, "h2_streams": o.h2Streams,
	}
}

func main() {
	os.Exit(realMain(os.Args[1:], os.Stdout, os.Stderr))
}

// realMain is the whole program; tests and re-executed children enter here.
func realMain(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "bare" {
		return bareMain(args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "table" {
		return tableMain(args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "prototable" {
		return protoTableMain(args[1:], stdout, stderr)
	}
	o, err := parseArgs(args, stderr)
	if err != nil {
		if err != flag.ErrHelp {
			_, _ = fmt.Fprintln(stderr, "sse-bench:", err)
		}
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()
	// Ctrl-C ends the run early but still prints the JSON line.
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	// The hard stop: whatever hangs, the process ends a little after -timeout.
	watchdog := time.AfterFunc(o.timeout+20*time.Second, func() {
		if !o.worker {
			line, _ := json.Marshal(map[string]any{"scenario": o.scenario, "ok": false, "error": "hard timeout"})
			_, _ = fmt.Fprintf(stdout, "%s\n", line)
		}
		_, _ = fmt.Fprintln(stderr, "sse-bench: hard timeout, exiting")
		os.Exit(2)
	})
	defer watchdog.Stop()

	if o.worker {
		if err := runWorker(ctx, os.Stdin, stdout); err != nil {
			_, _ = fmt.Fprintln(stderr, "sse-bench worker:", err)
			return 1
		}
		return 0
	}
	return runScenario(ctx, o, stdout, stderr)
}
