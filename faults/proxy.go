package faults

import (
	"context"
	"net"
	"sync"
	"time"
)

// linkMode is what a link proxy does with the bytes it carries.
type linkMode int

const (
	modePass      linkMode = iota // forward (after the configured delay)
	modeBlackhole                 // forward nothing, keep connections open: a partition
	modeCut                       // close every connection and refuse new ones
)

// linkProxy is a TCP proxy for one link from a Caddy node to one NATS server.
// It can black-hole (bytes read are held back until the link heals, the way
// TCP delivers after a partition ends), delay every chunk, or cut.
type linkProxy struct {
	listen, upstream string
	ln               net.Listener

	mu      sync.Mutex
	mode    linkMode
	delay   time.Duration
	changed chan struct{} // closed and replaced on every change, to wake held pumps
	conns   map[net.Conn]struct{}
	wg      sync.WaitGroup
}

func newLinkProxy(listen, upstream string) (*linkProxy, error) {
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, err
	}
	p := &linkProxy{listen: listen, upstream: upstream, ln: ln, changed: make(chan struct{}), conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

func (p *linkProxy) set(mode linkMode, delay time.Duration) {
	p.mu.Lock()
	p.mode, p.delay = mode, delay
	close(p.changed)
	p.changed = make(chan struct{})
	var cut []net.Conn
	if mode == modeCut {
		for c := range p.conns {
			cut = append(cut, c)
		}
	}
	p.mu.Unlock()
	for _, c := range cut {
		_ = c.Close()
	}
}

func (p *linkProxy) state() (linkMode, time.Duration, <-chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.mode, p.delay, p.changed
}

// open counts the client connections the proxy holds now.
func (p *linkProxy) open() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.conns) / 2
}

func (p *linkProxy) track(c net.Conn, add bool) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if add {
		if p.mode == modeCut {
			return false
		}
		p.conns[c] = struct{}{}
	} else {
		delete(p.conns, c)
	}
	return true
}

func (p *linkProxy) accept() {
	defer p.wg.Done()
	for {
		down, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.wg.Add(1)
		go p.serve(down)
	}
}

func (p *linkProxy) serve(down net.Conn) {
	defer p.wg.Done()
	if !p.track(down, true) {
		_ = down.Close()
		return
	}
	defer p.track(down, false)
	defer down.Close()
	// A black-holed link still accepts (the kernel would too), but holds the
	// dial until it heals: the client sees a connection that never answers.
	if !p.hold(context.Background()) {
		return
	}
	up, err := net.DialTimeout("tcp", p.upstream, 2*time.Second)
	if err != nil {
		return
	}
	if !p.track(up, true) {
		_ = up.Close()
		return
	}
	defer p.track(up, false)
	defer up.Close()
	done := make(chan struct{}, 2)
	go func() { p.pump(up, down); done <- struct{}{} }()
	go func() { p.pump(down, up); done <- struct{}{} }()
	<-done
	_ = up.Close()
	_ = down.Close()
	<-done
}

// hold waits while the link is black-holed; false when it is cut.
func (p *linkProxy) hold(ctx context.Context) bool {
	for {
		mode, _, changed := p.state()
		switch mode {
		case modePass:
			return true
		case modeCut:
			return false
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return false
		}
	}
}

type chunk struct {
	b  []byte
	at time.Time
}

// pump copies src to dst, chunk by chunk, each held while the link is
// black-holed and delayed by the link's delay from when it was read.
func (p *linkProxy) pump(dst, src net.Conn) {
	q := make(chan chunk, 64)
	go func() {
		defer close(q)
		for {
			b := make([]byte, 32<<10)
			n, err := src.Read(b)
			if n > 0 {
				q <- chunk{b[:n], time.Now()}
			}
			if err != nil {
				return
			}
		}
	}()
	for c := range q {
		if !p.hold(context.Background()) {
			break
		}
		_, delay, _ := p.state()
		if wait := time.Until(c.at.Add(delay)); wait > 0 {
			time.Sleep(wait)
		}
		if _, err := dst.Write(c.b); err != nil {
			break
		}
	}
	_ = dst.Close()
	_ = src.Close()
	for range q {
	}
}

func (p *linkProxy) close() {
	_ = p.ln.Close()
	p.set(modeCut, 0)
	p.wg.Wait()
}
