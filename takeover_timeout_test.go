package caddysse

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// With Caddy's `timeouts write` and an access log, Caddy flushes the response once more after a handler that
// ran longer than the write timeout. After a takeover that flush reaches net/http's hijacked response, which
// panics. A stream live only after the write timeout (here: NATS comes up later) must not be taken over.
func TestNoTakeoverPastCaddysWriteTimeout(t *testing.T) {
	t.Parallel() // its own Caddy process, ports and directories
	dir := t.TempDir()
	httpPort, adminPort, natsPort := freePort(t), freePort(t), freePort(t)
	child := startCaddy(t, dir, fmt.Sprintf(`{
	admin localhost:%d
	servers {
		timeouts {
			write 1s
		}
	}
	sse {
		listen off
		store_dir %s
	}
}

http://localhost:%d {
	log
	sse /events late.> {
		stream LATE
		nats_url nats://127.0.0.1:%d
		heartbeat 1m
	}
}
`, adminPort, filepath.Join(dir, "js"), httpPort, natsPort))
	url := fmt.Sprintf("http://localhost:%d/events", httpPort)
	child.eventually("caddy serving", func() bool { return strings.Contains(child.output(), "serving initial configuration") })
	s := openStream(t, url, nil)
	s.waitOpen()
	time.Sleep(1500 * time.Millisecond) // past the write timeout, still waiting for NATS
	srv := startNATS(t, natsPort, t.TempDir())
	defer srv.Shutdown()
	// The event's write ends the request one way or the other: past Caddy's hard write deadline on the request,
	// or through the takeover (the handler returns as it happens).
	publish(t, natsJS(t, fmt.Sprintf("nats://127.0.0.1:%d", natsPort)), "late.a", "", "live")
	child.eventually("the stream's request handled", func() bool {
		return strings.Contains(child.output(), "handled request") || strings.Contains(child.output(), "panic")
	})
	time.Sleep(100 * time.Millisecond)
	if out := child.output(); strings.Contains(out, "http: panic serving") {
		t.Fatalf("Caddy logged a panic:\n%s", out)
	}
}
