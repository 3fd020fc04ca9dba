package caddysse

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// TestCaddyExitEndsStreamsAtOnce runs the real binary with Caddy's default (eternal) grace period: without the
// handler ending its own streams on exit, an open stream would hold the process forever.
func TestCaddyExitEndsStreamsAtOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a Caddy binary")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "caddy")
	build := exec.Command("go", "build", "-o", bin, "./cmd/caddy")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
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
	cfgPath := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(cfgPath, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "run", "--config", cfgPath)
	cmd.Env = append(os.Environ(), "XDG_DATA_HOME="+filepath.Join(dir, "data"), "XDG_CONFIG_HOME="+filepath.Join(dir, "config"))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer cmd.Process.Kill()

	url := fmt.Sprintf("http://localhost:%d/events", httpPort)
	eventually(t, "caddy serving", func() bool {
		resp, err := http.Head(url)
		if err == nil {
			resp.Body.Close()
		}
		return err == nil
	})
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
