package caddysse

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestCaddyExitEndsStreamsAtOnce runs Caddy as a process with its default (eternal) grace period: without the
// handler ending its own sessions on exit, an open stream would hold the process forever.
func TestCaddyExitEndsStreamsAtOnce(t *testing.T) {
	t.Parallel() // its own Caddy process, ports and directories
	child, httpPort, _ := startExitCaddy(t, "exit.>", "EXIT")

	url := fmt.Sprintf("http://localhost:%d/events", httpPort)
	child.eventually("caddy serving", func() bool {
		resp, err := http.Head(url)
		if err == nil {
			resp.Body.Close()
		}
		return err == nil
	})
	s := openStream(t, url, nil)
	s.waitOpen()

	start := time.Now()
	if err := child.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-child.exited:
	case <-time.After(waitLong):
		t.Fatalf("caddy still running %s after SIGTERM with a stream open; its output:\n%s", waitLong, child.output())
	}
	s.expectEnd()
	t.Logf("caddy exited %s after SIGTERM", time.Since(start).Round(time.Millisecond))
}

// Streams taken over from Caddy's HTTP server are not the server's any more: its shutdown does not wait for
// them. When Caddy exits, each must still get the end of its response (the last chunk), as a stream on its
// request does, before the process is gone.
func TestCaddyExitEndsTakenOverStreamsCleanly(t *testing.T) {
	t.Parallel() // its own Caddy process, ports and directories
	child, httpPort, adminPort := startExitCaddy(t, "exittk.>", "EXITTK")
	addr := fmt.Sprintf("localhost:%d", httpPort)
	child.eventually("caddy serving", func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	const n = 500
	conns := make([]*bufio.Reader, n)
	for i := range conns {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		fmt.Fprintf(c, "GET /events HTTP/1.1\r\nHost: %s\r\n\r\n", addr)
		conns[i] = bufio.NewReader(c)
		if _, err := conns[i].ReadString(':'); err != nil { // the head and the first comment started
			t.Fatal(err)
		}
	}
	gauge := fmt.Sprintf("caddy_sse_taken_over_connections{stream=\"EXITTK\"} %d\n", n)
	child.eventually("all taken over", func() bool {
		resp, err := http.Get(fmt.Sprintf("http://localhost:%d/metrics", adminPort))
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return strings.Contains(string(b), gauge)
	})
	if err := child.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	cut := 0
	for _, r := range conns {
		b, _ := io.ReadAll(r)
		if !strings.HasSuffix(string(b), "\r\n0\r\n\r\n") {
			cut++
		}
	}
	if cut > 0 {
		t.Fatalf("%d of %d streams cut without the end of their response", cut, n)
	}
}

// startExitCaddy runs Caddy as a process with one route streaming subjects of stream at /events, and
// returns it with its HTTP and admin ports.
func startExitCaddy(t *testing.T, subjects, stream string) (child *caddyProcess, httpPort, adminPort int) {
	t.Helper()
	dir := t.TempDir()
	httpPort, adminPort = freePort(t), freePort(t)
	child = startCaddy(t, dir, fmt.Sprintf(`{
	admin localhost:%d
	sse {
		listen off
		store_dir %s
	}
}

http://localhost:%d {
	sse /events %s {
		stream %s
	}
}
`, adminPort, filepath.Join(dir, "js"), httpPort, subjects, stream))
	return child, httpPort, adminPort
}
