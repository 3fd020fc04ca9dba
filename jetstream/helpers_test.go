package jetstream

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	natsjs "github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
)

// Generous: the tests run on a loaded 2-core machine. Only waits use it,
// never an assertion about speed.
const waitLong = 60 * time.Second

// testLogger is silent unless JETSTREAM_TEST_LOG is set. zaptest would fail
// tests for lines logged by nats goroutines after the test ended.
func testLogger(t *testing.T) *zap.Logger {
	t.Helper()
	if os.Getenv("JETSTREAM_TEST_LOG") == "" {
		return zap.NewNop()
	}
	l, err := zap.NewDevelopment()
	if err != nil {
		t.Fatal(err)
	}
	return l.With(zap.String("test", t.Name()))
}

func startServer(t *testing.T, cfg EmbeddedConfig) *Embedded {
	t.Helper()
	if cfg.StoreDir == "" {
		cfg.StoreDir = t.TempDir()
	}
	if cfg.MaxStore == 0 {
		cfg.MaxStore = 256 << 20
	}
	if cfg.MaxMemory == 0 {
		cfg.MaxMemory = 64 << 20
	}
	e, err := StartEmbedded(cfg, testLogger(t))
	if err != nil {
		t.Fatalf("StartEmbedded: %v", err)
	}
	t.Cleanup(e.Shutdown)
	return e
}

func connect(t *testing.T, cfg ConnConfig) *Conn {
	t.Helper()
	c, err := Connect(cfg, testLogger(t))
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

// inProcess starts a server without a listener and connects to it.
func inProcess(t *testing.T) (*Embedded, *Conn) {
	t.Helper()
	e := startServer(t, EmbeddedConfig{})
	return e, connect(t, ConnConfig{Embedded: e})
}

func ctxFor(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	t.Cleanup(cancel)
	return ctx
}

// testStream is a small file stream; history limits are wide open.
func testStream(name string, subjects ...string) StreamConfig {
	return StreamConfig{Name: name, Subjects: subjects, MaxBytes: 64 << 20}
}

func ensure(t *testing.T, c *Conn, cfg StreamConfig) StreamState {
	t.Helper()
	st, err := c.EnsureStream(ctxFor(t), cfg)
	if err != nil {
		t.Fatalf("EnsureStream(%s): %v", cfg.Name, err)
	}
	return st
}

func publish(t *testing.T, c *Conn, subject, eventType, data string) uint64 {
	t.Helper()
	_, seq, err := c.Publish(ctxFor(t), subject, "Sse-Event", eventType, []byte(data))
	if err != nil {
		t.Fatalf("Publish(%s): %v", subject, err)
	}
	return seq
}

func consumerCount(t *testing.T, c *Conn, stream string) int {
	t.Helper()
	s, err := c.js.Stream(ctxFor(t), stream)
	if err != nil {
		t.Fatalf("stream info: %v", err)
	}
	return s.CachedInfo().State.Consumers
}

// waitFor polls cond until it holds or the generous deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLong)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func waitConnected(t *testing.T, c *Conn) {
	t.Helper()
	if _, err := c.waitConnected(ctxFor(t)); err != nil {
		t.Fatalf("waiting for connection: %v", err)
	}
}

func jsStream(t *testing.T, c *Conn, name string) natsjs.Stream {
	t.Helper()
	s, err := c.js.Stream(ctxFor(t), name)
	if err != nil {
		t.Fatalf("stream %s: %v", name, err)
	}
	return s
}

// recSink records what a tail does, and keeps a position like the hub:
// Begin sets it, Publish advances it and ignores duplicates.
type recSink struct {
	mu     sync.Mutex
	epoch  string
	last   uint64
	begins []beginCall
	events []recEvent
	trims  []uint64
	closed bool // set when the tail has returned; later calls are a bug
	late   int
}

type beginCall struct {
	Epoch  string
	Last   uint64
	Resume bool // same epoch and position as before
}

type recEvent struct {
	Epoch     string
	Seq       uint64
	Subject   string
	EventType string
	Data      string
}

func (s *recSink) Position() (string, uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.epoch, s.last
}

func (s *recSink) Begin(epoch string, last uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		s.late++
	}
	s.begins = append(s.begins, beginCall{epoch, last, epoch == s.epoch && last == s.last})
	s.epoch, s.last = epoch, last
}

func (s *recSink) Publish(seq uint64, subject, eventType string, data []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		s.late++
	}
	s.events = append(s.events, recEvent{s.epoch, seq, subject, eventType, string(data)})
	if seq > s.last {
		s.last = seq
	}
}

func (s *recSink) Trim(firstSeq uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		s.late++
	}
	s.trims = append(s.trims, firstSeq)
}

func (s *recSink) snapshot() ([]beginCall, []recEvent) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]beginCall(nil), s.begins...), append([]recEvent(nil), s.events...)
}

func (s *recSink) resets() []beginCall {
	begins, _ := s.snapshot()
	var out []beginCall
	for _, b := range begins {
		if !b.Resume {
			out = append(out, b)
		}
	}
	return out
}

func (s *recSink) hasEvent(epoch string, seq uint64) bool {
	_, events := s.snapshot()
	for _, e := range events {
		if e.Epoch == epoch && e.Seq == seq {
			return true
		}
	}
	return false
}

// runTail starts Tail and returns a stop function that cancels it and waits
// for it to return. A *recSink is marked closed then.
func runTail(t *testing.T, c *Conn, cfg TailConfig, sink Sink) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.Tail(ctx, cfg, sink)
		if rs, ok := sink.(*recSink); ok {
			rs.mu.Lock()
			rs.closed = true
			rs.mu.Unlock()
		}
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case <-done:
			case <-time.After(waitLong):
				t.Errorf("Tail did not return after its context was cancelled")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// matches is the test's own subject matcher, independent of subjects.go.
func matches(pattern, subject string) bool {
	p, s := strings.Split(pattern, "."), strings.Split(subject, ".")
	for i := range p {
		if p[i] == ">" {
			return len(s) > i
		}
		if i >= len(s) || (p[i] != "*" && p[i] != s[i]) {
			return false
		}
	}
	return len(p) == len(s)
}

func seqs(events []recEvent) []uint64 {
	out := make([]uint64, len(events))
	for i, e := range events {
		out[i] = e.Seq
	}
	return out
}

func seqRange(from, to uint64) []uint64 {
	var out []uint64
	for s := from; s <= to; s++ {
		out = append(out, s)
	}
	return out
}

func equalSeqs(a, b []uint64) bool {
	return fmt.Sprint(a) == fmt.Sprint(b)
}
