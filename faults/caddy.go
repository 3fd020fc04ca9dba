package faults

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"text/template"
	"time"
)

// caddyNode is one Caddy process: a node serving /events from the cluster
// through its own link proxies, or the load balancer in front of the nodes.
type caddyNode struct {
	name    string
	addr    string // where it serves HTTP
	admin   string // its admin API
	config  string // the Caddyfile text
	proc    *proc
	proxies []*linkProxy // node i's links, one per NATS server (nodes only)
}

// nodeSettings are the sse options every node runs with. A short heartbeat
// lets clients notice a frozen node; close_delay bounds how long a reload
// keeps old streams.
type nodeSettings struct {
	Name          string
	Admin, Listen string
	NATS          []string
	Heartbeat     time.Duration
	ReplayLimit   int
	CloseDelay    time.Duration
}

var nodeCaddyfile = template.Must(template.New("node").Parse(`{
	admin {{.Admin}}
	persist_config off
	grace_period 2s
	log {
		level INFO
	}
}

http://{{.Listen}} {
	bind 127.0.0.1
	# Which node served a stream, for the suite's diagnostics.
	header X-Sse-Node {{.Name}}
	respond /healthz 200
	sse /events faults.> {
		stream FAULTS
		nats_url{{range .NATS}} nats://{{.}}{{end}}
		topic_param topic
		heartbeat {{.Heartbeat}}
		write_timeout 5s
		buffer 1024
		replay_limit {{.ReplayLimit}}
		close_delay {{.CloseDelay}}
	}
	sse /kv kv.> {
		stream FAULTS_KV
		nats_url{{range .NATS}} nats://{{.}}{{end}}
		heartbeat {{.Heartbeat}}
		write_timeout 5s
		buffer 1024
		replay_limit {{.ReplayLimit}}
		close_delay {{.CloseDelay}}
	}
}
`))

type lbSettings struct {
	Admin, Listen string
	Nodes         []string
}

// The load balancer moves clients off a dead node by dial errors and retries
// (lb_try_duration), and off a frozen one by active health checks and the
// response header timeout (a node that accepts but never answers).
var lbCaddyfile = template.Must(template.New("lb").Parse(`{
	admin {{.Admin}}
	persist_config off
	grace_period 1s
	log {
		level WARN
	}
}

http://{{.Listen}} {
	bind 127.0.0.1
	reverse_proxy{{range .Nodes}} {{.}}{{end}} {
		flush_interval -1
		lb_policy round_robin
		lb_try_duration 10s
		lb_try_interval 100ms
		fail_duration 2s
		health_uri /healthz
		health_interval 250ms
		health_timeout 500ms
		health_fails 1
		transport http {
			dial_timeout 1s
			response_header_timeout 2s
		}
	}
}
`))

func render(t *template.Template, v any) string {
	var b bytes.Buffer
	if err := t.Execute(&b, v); err != nil {
		panic(err)
	}
	return b.String()
}

func newCaddy(name, bin, dir, addr, admin, config string) (*caddyNode, error) {
	file := filepath.Join(dir, name+".Caddyfile")
	if err := os.WriteFile(file, []byte(config), 0o644); err != nil {
		return nil, err
	}
	data := filepath.Join(dir, name+"-data")
	return &caddyNode{
		name: name, addr: addr, admin: admin, config: config,
		proc: &proc{
			name: name, bin: bin,
			args: []string{"run", "--config", file, "--adapter", "caddyfile"},
			env:  []string{"XDG_DATA_HOME=" + data, "XDG_CONFIG_HOME=" + data, "HOME=" + data},
			log:  filepath.Join(dir, name+".log"),
		},
	}, nil
}

// start runs the process and waits until it serves HTTP and, for a node,
// until its feed tails the stream (its log says so).
func (c *caddyNode) start(ctx context.Context, node bool) error {
	before := logSize(c.proc.log)
	if err := c.proc.start(); err != nil {
		return err
	}
	if err := waitPort(ctx, c.addr, 30*time.Second); err != nil {
		return fmt.Errorf("%s: %w", c.name, err)
	}
	if !node {
		return nil
	}
	// Generous: a node restarted during a NATS election waits for it.
	deadline := time.Now().Add(60 * time.Second)
	for !logContains(c.proc.log, before, `"tail running"`) {
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: its feed did not start within 60 s (see %s)", c.name, c.proc.log)
		}
		if !sleepCtx(ctx, 50*time.Millisecond) {
			return ctx.Err()
		}
	}
	return nil
}

// reload posts the same Caddyfile to the admin API, forced, so Caddy runs a
// real reload (new handlers, shared feeds reused) rather than a no-op.
func (c *caddyNode) reload(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+c.admin+"/load", strings.NewReader(c.config))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "text/caddyfile")
	req.Header.Set("Cache-Control", "must-revalidate")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("%s reload: %w", c.name, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var b bytes.Buffer
		_, _ = b.ReadFrom(resp.Body)
		return fmt.Errorf("%s reload: %s: %s", c.name, resp.Status, strings.TrimSpace(b.String()))
	}
	return nil
}

func (c *caddyNode) freeze() { c.proc.signal(syscall.SIGSTOP) }
func (c *caddyNode) thaw()   { c.proc.signal(syscall.SIGCONT) }

// connectedServer is the NATS server index this node's connection goes
// through now (-1: none).
func (c *caddyNode) connectedServer() int {
	for j, p := range c.proxies {
		if p.open() > 0 {
			return j
		}
	}
	return -1
}

func (c *caddyNode) setLinks(mode linkMode, delay time.Duration) {
	for _, p := range c.proxies {
		p.set(mode, delay)
	}
}

func logSize(path string) int64 {
	st, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return st.Size()
}

func logContains(path string, from int64, s string) bool {
	b, err := os.ReadFile(path)
	if err != nil || int64(len(b)) < from {
		return false
	}
	return bytes.Contains(b[from:], []byte(s))
}
