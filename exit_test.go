package caddysse

import (
	"fmt"
	"net/http"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// TestCaddyExitEndsStreamsAtOnce runs Caddy as a process with its default (eternal) grace period: without the
// handler ending its own sessions on exit, an open stream would hold the process forever.
func TestCaddyExitEndsStreamsAtOnce(t *testing.T) {
	t.Parallel() // its own Caddy process, ports and directories
	dir := t.TempDir()
	httpPort, adminPort := freePort(t), freePort(t)
	child := startCaddy(t, dir, fmt.Sprintf(`{
	admin localhost:%d
	sse {
		listen off
		store_dir %s
	}
}

http://localhost:%d {
	sse /events exit.> {
		stream EXIT
	}
}
`, adminPort, filepath.Join(dir, "js"), httpPort))

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
