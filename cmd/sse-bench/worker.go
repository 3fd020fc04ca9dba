package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"time"
)

// One process may hold only so many sockets (the open-file limit). Above
// that the tool re-executes itself as hidden worker processes, each running a
// localFleet; the parent sends one JSON request per line on the worker's
// stdin and reads one JSON response per line from its stdout. A worker exits
// when its stdin closes, so it never outlives the parent for long.

// childEnv marks a process started by this tool (see TestMain as well).
const childEnv = "SSE_BENCH_CHILD=1"

// runWorker serves fleet requests until stdin closes or "close" arrives.
func runWorker(ctx context.Context, in io.Reader, out io.Writer) error {
	dec := json.NewDecoder(bufio.NewReader(in))
	enc := json.NewEncoder(out)
	var f *localFleet
	defer func() {
		if f != nil {
			f.close()
		}
	}()
	for {
		var req request
		if err := dec.Decode(&req); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		var resp response
		var err error
		switch {
		case req.Op == "start" && f == nil && req.Config != nil:
			f, err = newLocalFleet(ctx, *req.Config)
		case f == nil:
			err = fmt.Errorf("worker: %q before start", req.Op)
		default:
			resp, err = f.call(req)
		}
		if err != nil {
			resp.Error = err.Error()
		}
		if err := enc.Encode(resp); err != nil {
			return err
		}
		if req.Op == "close" {
			return nil
		}
	}
}

// remoteFleet is a worker process seen from the parent.
type remoteFleet struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	enc *json.Encoder
	dec *json.Decoder
	mu  sync.Mutex
}

func startWorker(exe string, timeout time.Duration, cfg fleetConfig) (*remoteFleet, error) {
	cmd := exec.Command(exe, "-worker", "-timeout", timeout.String())
	cmd.Env = append(os.Environ(), childEnv)
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start worker: %w", err)
	}
	r := &remoteFleet{cmd: cmd, in: in, enc: json.NewEncoder(in), dec: json.NewDecoder(bufio.NewReader(out))}
	if _, err := r.call(request{Op: "start", Config: &cfg}); err != nil {
		r.close()
		return nil, err
	}
	return r, nil
}

func (r *remoteFleet) pid() int { return r.cmd.Process.Pid }

func (r *remoteFleet) call(req request) (response, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var resp response
	if err := r.enc.Encode(req); err != nil {
		return resp, fmt.Errorf("worker %d: %w", r.pid(), err)
	}
	if err := r.dec.Decode(&resp); err != nil {
		return resp, fmt.Errorf("worker %d: %w", r.pid(), err)
	}
	if resp.Error != "" {
		return resp, fmt.Errorf("worker %d: %s", r.pid(), resp.Error)
	}
	return resp, nil
}

// close asks the worker to finish, then closes its stdin and waits a bounded
// time before killing it.
func (r *remoteFleet) close() {
	done := make(chan struct{})
	go func() {
		_, _ = r.call(request{Op: "close"})
		_ = r.in.Close()
		_ = r.cmd.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		_ = r.cmd.Process.Kill()
		<-done
	}
}

// group drives all fleets of one target run as one.
type group struct {
	members []fleetAPI
}

// newGroup puts up to perProc clients in each process: all in this process
// when they fit, otherwise in ceil(C/perProc) workers.
func newGroup(ctx context.Context, base fleetConfig, perProc int, timeout time.Duration) (*group, error) {
	g := &group{}
	if base.Count <= perProc {
		f, err := newLocalFleet(ctx, base)
		if err != nil {
			return nil, err
		}
		g.members = append(g.members, f)
		return g, nil
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	workers := (base.Count + perProc - 1) / perProc
	first := base.First
	for w := 0; w < workers; w++ {
		cfg := base
		cfg.First = first
		cfg.Count = base.Count / workers
		if w < base.Count%workers {
			cfg.Count++
		}
		first += cfg.Count
		r, err := startWorker(exe, timeout, cfg)
		if err != nil {
			g.close()
			return nil, err
		}
		g.members = append(g.members, r)
	}
	return g, nil
}

func (g *group) workerPIDs() []int {
	var pids []int
	for _, m := range g.members {
		if p := m.pid(); p != 0 {
			pids = append(pids, p)
		}
	}
	return pids
}

// all sends req to every member concurrently.
func (g *group) all(req request) ([]response, error) {
	out := make([]response, len(g.members))
	errs := make([]error, len(g.members))
	var wg sync.WaitGroup
	for i, m := range g.members {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i], errs[i] = m.call(req)
		}()
	}
	wg.Wait()
	return out, errors.Join(errs...)
}

func (g *group) send(req request) error {
	_, err := g.all(req)
	return err
}

func (g *group) status(target int64) (status, error) {
	rs, err := g.all(request{Op: "status", N: target})
	var s status
	for _, r := range rs {
		if r.Status != nil {
			s = s.merge(*r.Status)
		}
	}
	return s, err
}

func (g *group) report(expected int64) (fleetReport, error) {
	rs, err := g.all(request{Op: "report", N: expected})
	var rep fleetReport
	for _, r := range rs {
		if r.Report != nil {
			rep = rep.merge(*r.Report)
		}
	}
	return rep, err
}

func (g *group) close() {
	var wg sync.WaitGroup
	for _, m := range g.members {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m.close()
		}()
	}
	wg.Wait()
}
