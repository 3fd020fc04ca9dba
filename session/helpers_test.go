package session

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// recorder is a ResponseWriter that keeps what was written, with the flushes and write deadlines that
// http.ResponseController reaches through its methods.
type recorder struct {
	mu        sync.Mutex
	header    http.Header
	status    int
	out       bytes.Buffer
	writes    []int // sizes of the writes, in order
	flushes   int
	deadlines []time.Time // every SetWriteDeadline, zero for "cleared"
	writeErr  error       // when set, writes fail with it
}

func newRecorder() *recorder { return &recorder{header: http.Header{}} }

func (r *recorder) Header() http.Header { return r.header }

func (r *recorder) WriteHeader(code int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.status = code
}

func (r *recorder) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.writeErr != nil {
		return 0, r.writeErr
	}
	r.writes = append(r.writes, len(p))
	return r.out.Write(p)
}

func (r *recorder) Flush() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.flushes++
}

func (r *recorder) SetWriteDeadline(t time.Time) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.deadlines = append(r.deadlines, t)
	return nil
}

// frame is one block of the event stream as a browser's parser sees it.
type frame struct {
	ID, Type, Data, Retry string
	Comment               bool
}

// frames parses everything written so far.
func (r *recorder) frames() []frame {
	r.mu.Lock()
	text := r.out.String()
	r.mu.Unlock()
	var out []frame
	for _, block := range strings.Split(text, "\n\n") {
		if block == "" {
			continue
		}
		var f frame
		var data []string
		comment := true
		for _, line := range strings.Split(block, "\n") {
			name, value, _ := strings.Cut(line, ": ")
			switch name {
			case "":
				continue // a comment line
			case "id":
				f.ID = value
			case "event":
				f.Type = value
			case "data":
				data = append(data, value)
			case "retry":
				f.Retry = value
			}
			comment = false
		}
		f.Data = strings.Join(data, "\n")
		f.Comment = comment
		out = append(out, f)
	}
	return out
}

// events are the frames a browser dispatches: neither comments nor the retry frame.
func (r *recorder) events() []frame {
	var out []frame
	for _, f := range r.frames() {
		if !f.Comment && f.Retry == "" {
			out = append(out, f)
		}
	}
	return out
}

// data lists the events' data, a reset as "reset:<reason>".
func (r *recorder) data() []string {
	var out []string
	for _, e := range r.events() {
		if e.Type == "reset" {
			out = append(out, "reset:"+strings.TrimSuffix(strings.TrimPrefix(e.Data, `{"reason":"`), `"}`))
			continue
		}
		out = append(out, e.Data)
	}
	return out
}

func (r *recorder) heartbeats() int {
	n := 0
	for _, f := range r.frames() {
		if f.Comment {
			n++
		}
	}
	return n - 1 // the first comment is the ": ok" that opens the stream
}

// running is one session served on its own goroutine inside a synctest bubble.
type running struct {
	rec     *recorder
	cfg     *Config
	stop    chan struct{}
	exiting atomic.Bool
	cancel  context.CancelFunc
	done    chan error

	mu      sync.Mutex
	resets  []Reason
	sources []Source
}

func testConfig(feed Feed) *Config {
	return &Config{
		Feed:         feed,
		Retry:        3 * time.Second,
		Heartbeat:    15 * time.Second,
		WriteTimeout: 10 * time.Second,
		CloseDelay:   5 * time.Second,
		Buffer:       64,
		ReplayLimit:  100,
		ResetEvent:   "reset",
	}
}

// serve starts a session for client with cfg (nil: testConfig) and waits until it blocks.
func serve(t *testing.T, feed Feed, cfg *Config, client Client) *running {
	t.Helper()
	if cfg == nil {
		cfg = testConfig(feed)
	}
	r := &running{rec: newRecorder(), cfg: cfg, stop: make(chan struct{}), done: make(chan error, 1)}
	cfg.Stop = r.stop
	cfg.Exiting = r.exiting.Load
	cfg.Hooks = Hooks{
		Reset: func(_ *Client, reason Reason) {
			r.mu.Lock()
			r.resets = append(r.resets, reason)
			r.mu.Unlock()
		},
		Replayed: func(s Source) {
			r.mu.Lock()
			r.sources = append(r.sources, s)
			r.mu.Unlock()
		},
	}
	if client.Patterns == nil {
		client.Patterns = []string{"a.>"}
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() { r.done <- Serve(ctx, r.rec, cfg, &client) }()
	t.Cleanup(func() {
		cancel()
		<-r.done
	})
	synctest.Wait()
	return r
}

// ended reports whether the session has returned, and its error.
func (r *running) ended() (bool, error) {
	synctest.Wait()
	select {
	case err := <-r.done:
		r.done <- err // keep it for Cleanup
		return true, err
	default:
		return false, nil
	}
}

func (r *running) replays() []Source {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Source(nil), r.sources...)
}
