package caddysse

import (
	"bytes"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// runCaddyEnv makes the test binary run Caddy's command line instead of the tests (TestMain): a child Caddy
// with this module, without building a binary.
const runCaddyEnv = "CADDY_SSE_TEST_RUN_CADDY"

// caddyProcess is a child Caddy whose output is kept for failure messages.
type caddyProcess struct {
	t       *testing.T
	cmd     *exec.Cmd
	exited  chan struct{} // closed when the process has exited; then waitErr says how
	waitErr error
	mu      sync.Mutex
	out     bytes.Buffer
}

func (p *caddyProcess) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.Write(b)
}

func (p *caddyProcess) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// eventually is the package's eventually with the child's output in the failure, and an end when it exits.
func (p *caddyProcess) eventually(what string, cond func() bool) {
	p.t.Helper()
	deadline := time.Now().Add(3 * waitLong) // starting a process with JetStream is slow on a loaded machine
	for !cond() {
		select {
		case <-p.exited:
			p.t.Fatalf("%s: caddy exited (%v); its output:\n%s", what, p.waitErr, p.output())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("%s: not within %s; caddy's output:\n%s", what, 3*waitLong, p.output())
		}
	}
}

// startCaddy runs this test binary as Caddy with config; it is killed when the test ends.
func startCaddy(t *testing.T, dir, config string, env ...string) *caddyProcess {
	t.Helper()
	cfgPath := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(cfgPath, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable() // not os.Args[0]: caddytest rewrites os.Args
	if err != nil {
		t.Fatal(err)
	}
	p := &caddyProcess{t: t, exited: make(chan struct{})}
	p.cmd = exec.Command(self, "run", "--config", cfgPath)
	p.cmd.Env = append(os.Environ(), runCaddyEnv+"=1",
		"XDG_DATA_HOME="+filepath.Join(dir, "data"), "XDG_CONFIG_HOME="+filepath.Join(dir, "config"))
	p.cmd.Env = append(p.cmd.Env, env...)
	p.cmd.Stdout, p.cmd.Stderr = p, p
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.waitErr = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.exited
		if t.Failed() {
			t.Logf("caddy's output:\n%s", p.output())
		}
	})
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
