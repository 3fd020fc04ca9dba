package caddysse

import (
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// Tests that need a real Caddy process share one binary, built on first use.
var caddyBuild struct {
	once sync.Once
	dir  string
	bin  string
	err  error
	out  []byte
}

func caddyBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds a Caddy binary")
	}
	caddyBuild.once.Do(func() {
		caddyBuild.dir, caddyBuild.err = os.MkdirTemp("", "caddy-sse-bin-")
		if caddyBuild.err != nil {
			return
		}
		caddyBuild.bin = filepath.Join(caddyBuild.dir, "caddy")
		caddyBuild.out, caddyBuild.err = exec.Command("go", "build", "-o", caddyBuild.bin, "./cmd/caddy").CombinedOutput()
	})
	if caddyBuild.err != nil {
		t.Fatalf("go build: %v\n%s", caddyBuild.err, caddyBuild.out)
	}
	return caddyBuild.bin
}

// caddyProcess is a running Caddy binary; exited receives its Wait result.
type caddyProcess struct {
	cmd    *exec.Cmd
	exited chan error
}

// runCaddy starts the binary with a Caddyfile, data and config under dir, and kills it at the end of the test.
func runCaddy(t *testing.T, dir, caddyfile string, env ...string) *caddyProcess {
	t.Helper()
	bin := caddyBinary(t)
	cfgPath := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(cfgPath, []byte(caddyfile), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "run", "--config", cfgPath)
	cmd.Env = append(os.Environ(), "XDG_DATA_HOME="+filepath.Join(dir, "data"), "XDG_CONFIG_HOME="+filepath.Join(dir, "config"))
	cmd.Env = append(cmd.Env, env...)
	if os.Getenv("SSE_TEST_CADDY_LOG") != "" {
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &caddyProcess{cmd: cmd, exited: make(chan error, 1)}
	go func() { p.exited <- cmd.Wait() }()
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	return p
}

// waitServing waits until url answers at all (any status) over plain HTTP.
func waitServing(t *testing.T, url string) {
	t.Helper()
	eventually(t, "caddy serving", func() bool {
		resp, err := http.Head(url)
		if err == nil {
			resp.Body.Close()
		}
		return err == nil
	})
}
