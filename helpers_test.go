package caddysse

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddytest"
	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/caddy-sse/caddy-sse/hub"
)

// The integration tests share one in-process Caddy (caddytest) and, like a real process, one embedded NATS
// server, started by the first config and kept while configs change.
const waitLong = 20 * time.Second // generous: only how long a test waits for something that must happen

// Ports are chosen once per test process, so test runs of several checkouts on one machine do not meet.
var (
	storeDir     string
	embeddedAddr string // a free loopback port, chosen once: the embedded server keeps the first config's
	// Caddy's ports are chosen at start too, so test processes running side by side on one machine do not load
	// their configs into each other's Caddy.
	httpPort, httpsPort, adminPort int
	httpHost                       string // host:port of the test Caddy's HTTP server
	baseURL, adminURL              string
)

func TestMain(m *testing.M) {
	if os.Getenv(runCaddyEnv) != "" {
		caddycmd.Main() // the test binary as a Caddy child process: see startCaddy
		return
	}
	dir, err := os.MkdirTemp("", "caddy-sse-test-")
	if err != nil {
		panic(err)
	}
	storeDir = dir
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	embeddedAddr = l.Addr().String()
	l.Close()
	httpPort, httpsPort, adminPort = pickPort(), pickPort(), pickPort()
	httpHost = fmt.Sprintf("localhost:%d", httpPort)
	baseURL = "http://" + httpHost
	caddytest.Default.AdminPort = adminPort
	adminURL = fmt.Sprintf("http://localhost:%d", adminPort)
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// siteConfig wraps site directives in a Caddyfile with the test server's globals.
func siteConfig(site string) string { return siteConfigWith("", site) }

// siteConfigWith adds Caddy server options (inside the global servers block) to the test config.
func siteConfigWith(serverOptions, site string) string {
	return fmt.Sprintf(`{
	admin localhost:%d
	http_port %d
	https_port %d
	grace_period 1s
	skip_install_trust
	servers {
		protocols h1 h2 h2c
		%s
	}
	sse {
		listen %s
		store_dir %s
	}
}

http://localhost:%d {
%s
}
`, adminPort, httpPort, httpsPort, serverOptions, embeddedAddr, storeDir, httpPort, site)
}

// loadSite loads a config into the shared test Caddy.
func loadSite(t *testing.T, site string) *caddytest.Tester {
	t.Helper()
	return loadSiteWith(t, "", site)
}

// loadSiteWith loads a config with extra Caddy server options.
func loadSiteWith(t *testing.T, serverOptions, site string) *caddytest.Tester {
	t.Helper()
	tester := caddytest.NewTester(t)
	tester.InitServer(siteConfigWith(serverOptions, site), "caddyfile")
	if t.Failed() {
		t.FailNow()
	}
	// Idle keep-alive connections belong to the previous config's server, which is shutting down.
	http.DefaultClient.CloseIdleConnections()
	return tester
}

// natsJS connects a publisher to the given server.
func natsJS(t *testing.T, url string) natsjs.JetStream {
	t.Helper()
	nc, err := nats.Connect(url, nats.RetryOnFailedConnect(true), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatalf("connect to NATS %s: %v", url, err)
	}
	t.Cleanup(nc.Close)
	js, err := natsjs.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

func embeddedJS(t *testing.T) natsjs.JetStream { return natsJS(t, "nats://"+embeddedAddr) }

// publish sends one event and returns its stream sequence, retrying while the stream is being created.
func publish(t *testing.T, js natsjs.JetStream, subject, eventType, data string) uint64 {
	t.Helper()
	msg := nats.NewMsg(subject)
	msg.Data = []byte(data)
	if eventType != "" {
		msg.Header.Set(defaultEventHeader, eventType)
	}
	deadline := time.Now().Add(waitLong)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		ack, err := js.PublishMsg(ctx, msg)
		cancel()
		if err == nil {
			return ack.Sequence
		}
		if time.Now().After(deadline) {
			t.Fatalf("publish %s: %v", subject, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// sseEvent is one dispatched event as a browser's EventSource sees it.
type sseEvent struct {
	ID, Type, Data string
	Retry          string
}

// sseStream is a test client reading one event stream with a WHATWG-style parser.
type sseStream struct {
	t      *testing.T
	resp   *http.Response
	events chan sseEvent
	raw    chan string // every line read, comments included
	done   chan struct{}
	cancel context.CancelFunc
}

func openStream(t *testing.T, url string, header map[string]string) *sseStream {
	t.Helper()
	return openStreamWith(t, http.DefaultClient, url, header)
}

func openStreamWith(t *testing.T, client *http.Client, url string, header map[string]string) *sseStream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		cancel()
		t.Fatalf("GET %s: %v", url, err)
	}
	s := &sseStream{t: t, resp: resp, events: make(chan sseEvent, 100000), raw: make(chan string, 100000),
		done: make(chan struct{}), cancel: cancel}
	go s.read(resp.Body)
	t.Cleanup(s.close)
	return s
}

func (s *sseStream) close() {
	s.cancel()
	s.resp.Body.Close()
	<-s.done
}

func (s *sseStream) read(body io.Reader) {
	defer close(s.done)
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	var ev sseEvent
	var data []string
	hasData := false
	for sc.Scan() {
		line := sc.Text()
		select {
		case s.raw <- line:
		default: // only the first lines matter to tests
		}
		if line == "" {
			if hasData {
				ev.Data = strings.Join(data, "\n")
				if ev.Type == "" {
					ev.Type = "message"
				}
				s.events <- ev
			}
			ev, data, hasData = sseEvent{ID: ev.ID}, nil, false
			continue
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "id":
			ev.ID = value
		case "event":
			ev.Type = value
		case "data":
			data, hasData = append(data, value), true
		case "retry":
			ev.Retry = value
		}
	}
}

// next waits for the next event.
func (s *sseStream) next() sseEvent {
	s.t.Helper()
	select {
	case ev := <-s.events:
		return ev
	case <-s.done:
		select {
		case ev := <-s.events:
			return ev
		default:
		}
		s.t.Fatalf("stream ended while waiting for an event")
	case <-time.After(waitLong):
		s.t.Fatalf("no event within %s", waitLong)
	}
	return sseEvent{}
}

// expectData reads events and checks their data, in order.
func (s *sseStream) expectData(want ...string) []sseEvent {
	s.t.Helper()
	var got []sseEvent
	for i, w := range want {
		ev := s.next()
		if ev.Data != w {
			s.t.Fatalf("event %d: data %q, want %q (id %s, type %s)", i, ev.Data, w, ev.ID, ev.Type)
		}
		got = append(got, ev)
	}
	return got
}

// expectEnd waits for the server to end the stream, with no further event.
func (s *sseStream) expectEnd() {
	s.t.Helper()
	select {
	case <-s.done:
	case <-time.After(waitLong):
		s.t.Fatalf("stream still open after %s", waitLong)
	}
	select {
	case ev := <-s.events:
		s.t.Fatalf("unexpected event before the end: %+v", ev)
	default:
	}
}

// expectQuiet checks that no event arrives for a short while (used only to assert absence).
func (s *sseStream) expectQuiet(d time.Duration) {
	s.t.Helper()
	select {
	case ev := <-s.events:
		s.t.Fatalf("unexpected event: %+v", ev)
	case <-time.After(d):
	}
}

// waitOpen waits until the stream's first comment arrived, i.e. the handler is serving it.
func (s *sseStream) waitOpen() {
	s.t.Helper()
	select {
	case line := <-s.raw:
		if line != ": ok" {
			s.t.Fatalf("first line %q, want \": ok\"", line)
		}
	case <-time.After(waitLong):
		s.t.Fatalf("stream did not open")
	}
}

// pickPort returns a loopback port that is free now.
func pickPort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// freePort returns a loopback port nobody listens on right now.
func freePort(t *testing.T) int {
	t.Helper()
	return pickPort()
}

// eventually polls cond until it holds.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLong)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, waitLong)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// feedSubscriptions counts the open subscriptions of this process's feed for a stream.
func feedSubscriptions(t *testing.T, stream string) int {
	t.Helper()
	return streamHub(t, stream).Stats().Subscriptions
}

// streamHub is this process's hub for a stream.
func streamHub(t *testing.T, stream string) *hub.Hub {
	t.Helper()
	var h *hub.Hub
	feedPool.Range(func(_, v any) bool {
		if f := v.(*feed); f.tail.Stream.Name == stream {
			h = f.hub
			return false
		}
		return true
	})
	if h == nil {
		t.Fatalf("no feed for stream %s", stream)
	}
	return h
}

// waitSubscribed waits until at least n clients are subscribed to the stream's hub: the first comment goes out
// before the subscription is registered, so a test that publishes "after connecting" must wait for this.
func waitSubscribed(t *testing.T, stream string, n int) {
	t.Helper()
	eventually(t, fmt.Sprintf("%d subscriptions on %s", n, stream), func() bool { return feedSubscriptions(t, stream) >= n })
}

// openLive opens a stream and waits until it is subscribed (the stream's n-th subscription), so that what the
// test publishes next reaches it live.
func openLive(t *testing.T, path, stream string, n int) *sseStream {
	t.Helper()
	s := openStream(t, baseURL+path, nil)
	s.waitOpen()
	waitSubscribed(t, stream, n)
	return s
}

// waitDispatched waits until the stream's hub has dispatched seq.
func waitDispatched(t *testing.T, stream string, seq uint64) {
	t.Helper()
	eventually(t, fmt.Sprintf("%s dispatched %d", stream, seq), func() bool {
		_, last := streamHub(t, stream).Position()
		return last >= seq
	})
}
