package session

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/caddy-sse/caddy-sse/hub"
)

// These tests run sessions that are taken over, on a real net/http server and real TCP connections: the
// writer pool writes to sockets, so they cannot run in a synctest bubble. Waits are bounded, and nothing here
// measures speed.

// heldServer serves sessions of cfg on a net/http server whose sessions are taken over after their head.
type heldServer struct {
	t       *testing.T
	url     string
	cfg     *Config
	stop    chan struct{}
	exiting atomic.Bool
	ended   chan error    // Client.Ended of every session
	served  chan error    // what Serve returned
	client  func(*Client) // fills in a session's client; nil: the defaults
	refuse  bool          // TakeOver refuses: the session stays on its request
	onTake  func()        // runs in TakeOver, before the hijack; nil: nothing
	taken   atomic.Int32
}

func newHeldServer(t *testing.T, feed Feed, tweak func(*Config)) *heldServer {
	t.Helper()
	cfg := testConfig(feed)
	if tweak != nil {
		tweak(cfg)
	}
	s := &heldServer{t: t, cfg: cfg, stop: make(chan struct{}), ended: make(chan error, 16), served: make(chan error, 16)}
	cfg.Stop = s.stop
	cfg.Exiting = s.exiting.Load
	cfg.Hooks.TakenOver = func(*Client) { s.taken.Add(1) }
	srv := httptest.NewServer(http.HandlerFunc(s.handle))
	t.Cleanup(func() {
		select {
		case <-s.stop:
		default:
			s.exiting.Store(true)
			close(s.stop)
		}
		srv.Close()
	})
	s.url = srv.URL
	return s
}

func (s *heldServer) handle(w http.ResponseWriter, r *http.Request) {
	c := &Client{Patterns: []string{"a.>"}, LastEventID: r.Header.Get("Last-Event-ID"), Remote: r.RemoteAddr}
	if s.client != nil {
		s.client(c)
	}
	c.TakeOver = func() (net.Conn, error) {
		if s.refuse {
			return nil, errors.New("refused")
		}
		if s.onTake != nil {
			s.onTake()
		}
		conn, _, err := w.(http.Hijacker).Hijack()
		return conn, err
	}
	c.Ended = func(err error) { s.ended <- err }
	s.served <- Serve(r.Context(), w, s.cfg, c)
}

// endedWith waits for a session's end and returns its error.
func (s *heldServer) endedWith() error {
	s.t.Helper()
	select {
	case err := <-s.ended:
		return err
	case <-time.After(10 * time.Second):
		s.t.Fatal("no session ended within 10s")
		return nil
	}
}

// stream is one client's event stream read through net/http's client, which undoes the chunked framing.
type stream struct {
	t    *testing.T
	resp *http.Response
	r    *bufio.Reader
}

func (s *heldServer) open(lastEventID string) *stream {
	s.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, s.url, nil)
	if lastEventID != "" {
		req.Header.Set("Last-Event-ID", lastEventID)
	}
	tr := &http.Transport{DisableKeepAlives: true}
	s.t.Cleanup(tr.CloseIdleConnections)
	// A bound on the whole exchange: a missing event or end fails the test instead of hanging it.
	resp, err := (&http.Client{Transport: tr, Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	st := &stream{t: s.t, resp: resp, r: bufio.NewReader(resp.Body)}
	s.t.Cleanup(func() { _ = resp.Body.Close() })
	return st
}

// next returns the next block of the stream (its lines without the blank line), or the read error.
func (st *stream) next() (string, error) {
	var b strings.Builder
	for {
		line, err := st.r.ReadString('\n')
		if err != nil {
			return b.String(), err
		}
		if line == "\n" {
			return strings.TrimSuffix(b.String(), "\n"), nil
		}
		b.WriteString(line)
	}
}

// events reads blocks until n events (blocks with data) came, skipping comments and retry.
func (st *stream) events(n int) []string {
	st.t.Helper()
	var out []string
	for len(out) < n {
		block, err := st.next()
		if err != nil {
			st.t.Fatalf("after %d of %d events: %v", len(out), n, err)
		}
		if strings.Contains(block, "data:") {
			out = append(out, block)
		}
	}
	return out
}

// rest reads to the end of the stream: a nil error means the body ended as a complete chunked response.
func (st *stream) rest() (string, error) {
	b, err := io.ReadAll(st.r)
	return string(b), err
}

func eventBlock(epoch string, seq uint64, data string) string {
	return fmt.Sprintf("id: %s-%d\ndata: %s", epoch, seq, data)
}

// A taken-over session writes what a session on its request would: the replay from memory, then live
// events in order, with the same frames, including a burst far larger than one write.
func TestTakenOverSessionDelivers(t *testing.T) {
	f := newFakeFeed("e1", 64)
	f.publish("a.x", "1", "2", "3")
	s := newHeldServer(t, f, func(c *Config) { c.Buffer = 4096 })
	st := s.open("e1-1")
	want := []string{eventBlock("e1", 2, "2"), eventBlock("e1", 3, "3")}
	if got := st.events(2); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("replay %q, want %q", got, want)
	}
	if err := <-s.served; !errors.Is(err, ErrTakenOver) || s.taken.Load() != 1 {
		t.Fatalf("Serve returned %v with %d taken over, want ErrTakenOver and 1", err, s.taken.Load())
	}
	big := strings.Repeat("x", 2000)
	for i := 4; i <= 1003; i++ {
		f.publish("a.x", fmt.Sprint(i, big))
	}
	got := st.events(1000)
	for i, block := range got {
		seq := uint64(i + 4)
		if want := eventBlock("e1", seq, fmt.Sprint(seq, big)); block != want {
			t.Fatalf("live event %d: %.60q, want %.60q", i, block, want)
		}
	}
}

// Every way a taken-over session ends: the client gets a complete response (a clean end, so a browser
// reconnects after retry) unless it left itself, the subscription is given back, and Ended says why.
func TestTakenOverSessionEnds(t *testing.T) {
	final := func() (string, []byte, time.Duration) { return "replaced", []byte(`{"reason":"replaced"}`), time.Hour }
	cases := []struct {
		name     string
		tweak    func(*Config)
		client   func(*Client, context.Context)
		end      func(s *heldServer, f *fakeFeed, st *stream, cancel context.CancelFunc)
		want     error
		wantTail string // what the response ends with; "" for a client that left
	}{
		{name: "exit", want: ErrStopped, end: func(s *heldServer, _ *fakeFeed, _ *stream, _ context.CancelFunc) {
			s.exiting.Store(true)
			close(s.stop)
		}},
		{name: "reload", tweak: func(c *Config) { c.CloseDelay = 200 * time.Millisecond }, want: ErrStopped,
			end: func(s *heldServer, _ *fakeFeed, _ *stream, _ context.CancelFunc) { close(s.stop) }},
		{name: "lifetime", tweak: func(c *Config) { c.MaxLifetime = 300 * time.Millisecond }, want: ErrLifetime},
		{name: "ended by the caller", want: ErrEnded, wantTail: "retry: 3600000\n\nevent: replaced\ndata: {\"reason\":\"replaced\"}\n\n",
			client: func(c *Client, end context.Context) { c.End, c.Final = end, final },
			end:    func(_ *heldServer, _ *fakeFeed, _ *stream, cancel context.CancelFunc) { cancel() }},
		{name: "stream restarted", want: hub.ErrRestarted, end: func(_ *heldServer, f *fakeFeed, _ *stream, _ context.CancelFunc) {
			f.hub.Begin("e2", 0)
		}},
		{name: "client left", end: func(_ *heldServer, _ *fakeFeed, st *stream, _ context.CancelFunc) {
			_ = st.resp.Body.Close()
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeFeed("e1", 64)
			s := newHeldServer(t, f, tc.tweak)
			end, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tc.client != nil {
				s.client = func(c *Client) { tc.client(c, end) }
			}
			st := s.open("")
			if err := <-s.served; !errors.Is(err, ErrTakenOver) {
				t.Fatalf("Serve returned %v, want ErrTakenOver", err)
			}
			f.publish("a.x", "live")
			st.events(1)
			if tc.end != nil {
				tc.end(s, f, st, cancel)
			}
			err := s.endedWith()
			if tc.name == "client left" {
				var gone connError
				if !errors.As(err, &gone) {
					t.Fatalf("ended with %v, want a connection error", err)
				}
			} else {
				if !errors.Is(err, tc.want) {
					t.Fatalf("ended with %v, want %v", err, tc.want)
				}
				tail, rerr := st.rest()
				if rerr != nil {
					t.Fatalf("the response did not end cleanly: %v (read %q)", rerr, tail)
				}
				if !strings.HasSuffix(tail, tc.wantTail) {
					t.Fatalf("the response ended with %q, want %q", tail, tc.wantTail)
				}
			}
			if n := f.hub.Stats().Subscriptions; n != 0 {
				t.Fatalf("%d subscriptions left, want 0", n)
			}
		})
	}
}

// An idle taken-over session sends heartbeats, and events push them back.
func TestTakenOverSessionHeartbeats(t *testing.T) {
	f := newFakeFeed("e1", 64)
	s := newHeldServer(t, f, func(c *Config) { c.Heartbeat = 50 * time.Millisecond })
	st := s.open("")
	<-s.served
	comments := 0
	for comments < 3 { // the opening ": ok" is one
		block, err := st.next()
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(block, ":") {
			comments++
		}
	}
}

// A taken-over session that the client stopped reading is cut after the write timeout, and meanwhile it
// holds up nobody: the other sessions on the same writer pool keep getting every event.
func TestTakenOverSlowClientIsCutAlone(t *testing.T) {
	f := newFakeFeed("e1", 64)
	s := newHeldServer(t, f, func(c *Config) {
		c.WriteTimeout = 500 * time.Millisecond
		c.Buffer = 100000
	})
	healthy := s.open("")
	<-s.served

	// The stalled client: a raw connection with a small receive buffer that never reads past the head.
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) { _ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
	}}
	conn, err := d.Dial("tcp", strings.TrimPrefix(s.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := fmt.Fprintf(conn, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	<-s.served

	payload := strings.Repeat("y", 16<<10)
	var cut error
	for i := 1; cut == nil; i++ {
		if i > 5000 {
			t.Fatal("the stalled client was not cut after 5000 events of 16 KiB")
		}
		f.publish("a.x", payload)
		if got := healthy.events(1); !strings.HasPrefix(got[0], fmt.Sprintf("id: e1-%d\n", i)) {
			t.Fatalf("healthy client got %.20q as event %d", got[0], i)
		}
		select {
		case cut = <-s.ended:
		default:
		}
		time.Sleep(time.Millisecond) // let the stalled socket fill at a pace the healthy reader keeps up with
	}
	if !errors.Is(cut, os.ErrDeadlineExceeded) {
		t.Fatalf("stalled client ended with %v, want a write timeout", cut)
	}
}

// When TakeOver refuses, the session stays on its request and serves as before.
func TestTakeOverRefusedStaysOnRequest(t *testing.T) {
	f := newFakeFeed("e1", 64)
	s := newHeldServer(t, f, nil)
	s.refuse = true
	st := s.open("")
	// The head goes out before the session subscribes: an event published earlier is not the session's.
	for deadline := time.Now().Add(10 * time.Second); f.hub.Stats().Subscriptions == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the session did not subscribe within 10s")
		}
	}
	f.publish("a.x", "1")
	if got := st.events(1); got[0] != eventBlock("e1", 1, "1") {
		t.Fatalf("got %q", got)
	}
	if s.taken.Load() != 0 {
		t.Fatal("taken over despite the refusal")
	}
	_ = st.resp.Body.Close()
	if err := <-s.served; errors.Is(err, ErrTakenOver) {
		t.Fatalf("Serve returned %v", err)
	}
}
