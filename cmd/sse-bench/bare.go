package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"golang.org/x/time/rate"
)

// The bare reference server: the least a node can do for the same job.
// Plain net/http, one core NATS subscription on the benchmark subject (so it
// is fed by the very same publishes as the server under test, in its own
// process, and its CPU and memory can be sampled the same way), in-process
// fan-out to a bounded channel per client, a ring of recent frames for
// Last-Event-ID replay, and one flush per batch of queued frames. It has no
// JetStream consumer, no history beyond its ring and no subject routing, so
// ours/bare ratios show what the real module's guarantees cost.

type bareOptions struct {
	listen       string
	natsURL      string
	subject      string
	ring         int
	queue        int
	writeTimeout time.Duration
	timeout      time.Duration
	exitOnStdin  bool
	connectRate  float64
	retry        time.Duration
	proto        string
	pprof        string
}

func bareMain(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("sse-bench bare", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o bareOptions
	fs.StringVar(&o.listen, "listen", "127.0.0.1:0", "loopback `host:port` to serve SSE on (port 0 picks one)")
	fs.StringVar(&o.natsURL, "nats", "nats://127.0.0.1:4222", "NATS `URL` to subscribe to (loopback only)")
	fs.StringVar(&o.subject, "subject", "sse.bench", "NATS `subject` to fan out")
	fs.IntVar(&o.ring, "ring", 1<<16, "frames kept for Last-Event-ID replay")
	fs.IntVar(&o.queue, "queue", 256, "per-client queue length; a client whose queue overflows is disconnected")
	fs.DurationVar(&o.writeTimeout, "write-timeout", 10*time.Second, "per-write deadline")
	fs.DurationVar(&o.timeout, "timeout", time.Hour, "stop after this long")
	fs.BoolVar(&o.exitOnStdin, "exit-on-stdin", false, "stop when stdin closes (used when the tool starts it)")
	fs.Float64Var(&o.connectRate, "max-connect-rate", 0, "new streams per second; over it a client is turned away (200, retry: and Retry-After, no events) (0: no cap)")
	fs.DurationVar(&o.retry, "retry", time.Second, "base of a turned-away answer's retry: 2-6 times this, at least 2 s")
	fs.StringVar(&o.proto, "proto", protoH1, "protocol to serve: h1, h1tls or h2 (net/http; h1tls and h2 are the same TLS server, ALPN decides), h2c or h3 (quic-go, UDP)")
	fs.StringVar(&o.pprof, "pprof", "", "also serve net/http/pprof on this loopback `host:port` (profiles of the bare server itself)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	logger := log.New(stderr, "bare: ", log.Ltime)
	if err := validateProto(o.proto, "idle", 1); err != nil {
		logger.Print(err)
		return 2
	}
	for _, a := range []string{o.listen, o.pprof} {
		if a == "" {
			continue
		}
		if err := checkLoopbackHostPort(a); err != nil {
			logger.Print(err)
			return 2
		}
	}
	if err := checkLoopbackURLs(o.natsURL); err != nil {
		logger.Print(err)
		return 2
	}
	if err := runBare(o, stdout, logger); err != nil {
		logger.Print(err)
		return 1
	}
	return 0
}

func runBare(o bareOptions, stdout io.Writer, logger *log.Logger) error {
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	if o.exitOnStdin {
		go func() {
			_, _ = io.Copy(io.Discard, os.Stdin)
			cancel()
		}()
	}

	hub := newBareHub(o.ring, o.queue)
	nc, err := nats.Connect(o.natsURL, nats.Name("sse-bench-bare"), nats.MaxReconnects(-1),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { logger.Printf("nats: %v", err) }))
	if err != nil {
		return fmt.Errorf("connect to NATS: %w", err)
	}
	defer nc.Close()
	sub, err := nc.Subscribe(o.subject, func(m *nats.Msg) { hub.publish(m.Data) })
	if err != nil {
		return fmt.Errorf("subscribe %q: %w", o.subject, err)
	}
	_ = sub.SetPendingLimits(1<<20, 1<<30)
	if err := nc.Flush(); err != nil {
		return err
	}

	bh := &bareHandler{hub: hub, writeTimeout: o.writeTimeout, retry: o.retry}
	if o.connectRate > 0 {
		bh.rate = rate.NewLimiter(rate.Limit(o.connectRate), max(1, int(o.connectRate)))
	}
	srv, err := listenBare(o.proto, o.listen, bh)
	if err != nil {
		return err
	}
	if o.pprof != "" {
		if err := servePprof(ctx, o.pprof); err != nil {
			return err
		}
	}
	hello, _ := json.Marshal(map[string]any{"listen": srv.addr, "pid": os.Getpid(), "proto": o.proto})
	_, _ = fmt.Fprintf(stdout, "%s\n", hello)
	logger.Printf("serving %s on %s://%s/ from %s subject %s", o.proto, protoScheme(o.proto), srv.addr, o.natsURL, o.subject)

	errc := make(chan error, 1)
	go func() { errc <- srv.serve() }()
	select {
	case <-ctx.Done():
	case err := <-errc:
		return err
	}
	hub.close()
	shutdownCtx, done := context.WithTimeout(context.Background(), 5*time.Second)
	defer done()
	srv.shutdown(shutdownCtx)
	return nil
}

type bareFrame struct {
	seq uint64
	b   []byte
}

type bareClient struct {
	ch   chan *bareFrame
	gone chan struct{} // closed when the hub drops the client (queue overflow)
	rc   *http.ResponseController
}

type bareHub struct {
	mu      sync.Mutex
	epoch   string
	last    uint64
	ring    []*bareFrame // ring[seq % len]
	clients map[*bareClient]struct{}
	queue   int
	closed  bool
}

func newBareHub(ring, queue int) *bareHub {
	return &bareHub{
		epoch:   strconv.FormatInt(time.Now().UnixMicro(), 36),
		ring:    make([]*bareFrame, max(ring, 1)),
		clients: make(map[*bareClient]struct{}),
		queue:   max(queue, 1),
	}
}

func (h *bareHub) publish(data []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.last++
	fr := &bareFrame{seq: h.last}
	fr.b = appendBareFrame(nil, h.epoch, fr.seq, data)
	h.ring[fr.seq%uint64(len(h.ring))] = fr
	for c := range h.clients {
		select {
		case c.ch <- fr:
		default:
			h.dropLocked(c)
		}
	}
}

// dropLocked disconnects a client; the deadline wakes a write blocked on a
// full socket so the connection really closes now.
func (h *bareHub) dropLocked(c *bareClient) {
	delete(h.clients, c)
	close(c.gone)
	_ = c.rc.SetWriteDeadline(time.Now())
}

// subscribe registers c and returns the frames after lastID it must replay
// first, or reset when lastID cannot be honoured from the ring.
func (h *bareHub) subscribe(c *bareClient, lastID string) (replay []*bareFrame, reset bool, ok bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, false, false
	}
	h.clients[c] = struct{}{}
	if lastID == "" {
		return nil, false, true
	}
	epoch, seqText, found := strings.Cut(lastID, "-")
	seq, err := strconv.ParseUint(seqText, 10, 64)
	oldest := uint64(1)
	if h.last >= uint64(len(h.ring)) {
		oldest = h.last - uint64(len(h.ring)) + 1
	}
	if !found || err != nil || epoch != h.epoch || seq > h.last || seq+1 < oldest {
		return nil, true, true
	}
	for s := seq + 1; s <= h.last; s++ {
		replay = append(replay, h.ring[s%uint64(len(h.ring))])
	}
	return replay, false, true
}

func (h *bareHub) unsubscribe(c *bareClient) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.clients[c]; ok {
		delete(h.clients, c)
		close(c.gone)
	}
}

func (h *bareHub) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for c := range h.clients {
		h.dropLocked(c)
	}
}

type bareHandler struct {
	hub          *bareHub
	writeTimeout time.Duration
	rate         *rate.Limiter // nil: no connect-rate cap
	retry        time.Duration
}

var (
	bareHello = []byte(": ok\n\n")
	bareReset = []byte("event: reset\ndata: {}\n\n")
)

func (bh *bareHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if bh.rate != nil && !bh.rate.Allow() {
		bh.turnAway(w)
		return
	}
	rc := http.NewResponseController(w)
	c := &bareClient{ch: make(chan *bareFrame, bh.hub.queue), gone: make(chan struct{}), rc: rc}
	replay, reset, ok := bh.hub.subscribe(c, r.Header.Get("Last-Event-ID"))
	if !ok {
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
		return
	}
	defer bh.hub.unsubscribe(c)
	hdr := w.Header()
	hdr.Set("Content-Type", "text/event-stream")
	hdr.Set("Cache-Control", "no-cache")
	hdr.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)

	write := func(b []byte) bool {
		_ = rc.SetWriteDeadline(time.Now().Add(bh.writeTimeout))
		_, err := w.Write(b)
		return err == nil
	}
	if !write(bareHello) {
		return
	}
	if reset && !write(bareReset) {
		return
	}
	// Replay is written directly, never through the bounded live queue.
	for _, fr := range replay {
		if !write(fr.b) {
			return
		}
	}
	if rc.Flush() != nil {
		return
	}
	for {
		select {
		case fr := <-c.ch:
			if !write(fr.b) {
				return
			}
		batch:
			for {
				select {
				case fr := <-c.ch:
					if !write(fr.b) {
						return
					}
				default:
					break batch
				}
			}
			if rc.Flush() != nil {
				return
			}
		case <-c.gone:
			return
		case <-r.Context().Done():
			return
		}
	}
}

// turnAway answers like the module over max_connect_rate: 200 (an EventSource gives up on anything else), a
// jittered retry of 2-6 times the retry (at least 2 s), Retry-After with the same delay, no events, and the
// stream ends at once.
func (bh *bareHandler) turnAway(w http.ResponseWriter) {
	base := max(bh.retry, time.Second)
	backoff := 2*base + rand.N(4*base)
	hdr := w.Header()
	hdr.Set("Content-Type", "text/event-stream")
	hdr.Set("Cache-Control", "no-cache")
	hdr.Set("Retry-After", strconv.Itoa(int(backoff.Round(time.Second)/time.Second)))
	w.WriteHeader(http.StatusOK)
	_, _ = fmt.Fprintf(w, "retry: %d\n: over capacity, retry later\n\n", backoff.Milliseconds())
}

// appendBareFrame encodes one event: id, then one data line per payload line
// (split on CR, LF and CRLF), then the blank line.
func appendBareFrame(dst []byte, epoch string, seq uint64, data []byte) []byte {
	dst = append(dst, "id: "...)
	dst = append(dst, epoch...)
	dst = append(dst, '-')
	dst = strconv.AppendUint(dst, seq, 10)
	dst = append(dst, '\n')
	for {
		i := indexLineBreak(data)
		dst = append(dst, "data: "...)
		if i < 0 {
			dst = append(dst, data...)
			dst = append(dst, '\n')
			break
		}
		dst = append(dst, data[:i]...)
		dst = append(dst, '\n')
		if data[i] == '\r' && i+1 < len(data) && data[i+1] == '\n' {
			i++
		}
		data = data[i+1:]
	}
	return append(dst, '\n')
}

func indexLineBreak(b []byte) int {
	for i, c := range b {
		if c == '\r' || c == '\n' {
			return i
		}
	}
	return -1
}

// bareChild is a bare server this tool started as a child process.
type bareChild struct {
	cmd    *exec.Cmd
	in     io.WriteCloser
	exited chan struct{}
	addr   string
	pid    int
}

// spawnBare starts "sse-bench bare" as a child and waits for its address.
func spawnBare(o *options, timeout time.Duration) (*bareChild, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	ring := max(1<<16, 2*(o.missed+int(o.rate*o.duration.Seconds())*3))
	cmd := exec.Command(exe, "bare", "-listen", "127.0.0.1:0", "-nats", o.natsURL, "-subject", o.subject,
		"-ring", strconv.Itoa(ring), "-queue", strconv.Itoa(o.bareQueue),
		"-write-timeout", o.bareWriteTimeout.String(), "-timeout", timeout.String(), "-exit-on-stdin",
		"-max-connect-rate", strconv.FormatFloat(o.bareConnectRate, 'g', -1, 64), "-retry", o.bareRetry.String(),
		"-proto", cmp.Or(o.proto, protoH1))
	if o.barePprof != "" {
		cmd.Args = append(cmd.Args, "-pprof", o.barePprof)
	}
	cmd.Env = append(os.Environ(), childEnv)
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	first := &firstLine{got: make(chan []byte, 1)}
	cmd.Stdout = first
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start bare server: %w", err)
	}
	child := &bareChild{cmd: cmd, in: in, pid: cmd.Process.Pid, exited: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(child.exited) }()
	type hello struct {
		Listen string `json:"listen"`
		PID    int    `json:"pid"`
	}
	select {
	case line := <-first.got:
		var h hello
		if json.Unmarshal(line, &h) != nil || h.Listen == "" {
			child.stop()
			return nil, errors.New("bare server did not start (see its log above)")
		}
		child.addr = h.Listen
	case <-child.exited:
		return nil, errors.New("bare server exited at start (see its log above)")
	case <-time.After(15 * time.Second):
		child.stop()
		return nil, errors.New("bare server did not report its address in time")
	}
	return child, nil
}

// stop closes the child's stdin (its signal to exit) and waits a bounded time.
func (b *bareChild) stop() {
	_ = b.in.Close()
	select {
	case <-b.exited:
	case <-time.After(10 * time.Second):
		_ = b.cmd.Process.Kill()
		<-b.exited
	}
}

// firstLine is a child's stdout: it hands over the first line and discards
// the rest.
type firstLine struct {
	got  chan []byte
	buf  []byte
	sent bool
}

func (f *firstLine) Write(p []byte) (int, error) {
	if !f.sent {
		f.buf = append(f.buf, p...)
		if i := bytes.IndexByte(f.buf, '\n'); i >= 0 {
			f.got <- f.buf[:i]
			f.sent = true
		}
	}
	return len(p), nil
}
