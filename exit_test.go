package caddysse

import (
	"fmt"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// TestCaddyExitEndsStreamsAtOnce runs the real binary with Caddy's default (eternal) grace period: without the
// handler ending its own streams on exit, an open stream would hold the process forever.
func TestCaddyExitEndsStreamsAtOnce(t *testing.T) {
	dir := t.TempDir()
	httpPort, adminPort := freePort(t), freePort(t)
	config := fmt.Sprintf(`{
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
`, adminPort, filepath.Join(dir, "js"), httpPort)
	proc := runCaddy(t, dir, config)
	cmd, exited := proc.cmd, proc.exited

	url := fmt.Sprintf("http://localhost:%d/events", httpPort)
	waitServing(t, url)
	s := openStream(t, url, nil)
	s.waitOpen()

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-exited:
	case <-time.After(waitLong):
		t.Fatalf("caddy still running %s after SIGTERM with a stream open", waitLong)
	}
	s.expectEnd()
}
