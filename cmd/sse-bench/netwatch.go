package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"net"
	"os"
	"sync"
	"time"
)

// A client that stops reading cannot see the server hang up: the server's FIN
// waits behind unsent data in a zero window. The server's own socket, however,
// leaves ESTABLISHED the moment the server closes it (FIN_WAIT1) or resets it
// (gone). cutWatcher polls the kernel's socket tables (/proc/net/tcp and tcp6,
// same host, loopback only) for the server side of each stalled connection.

// sockKey identifies one end of a TCP connection: IPv4 addresses in their
// IPv4-mapped IPv6 form, then the port.
type sockKey [18]byte

func keyOf(a net.Addr) sockKey {
	var k sockKey
	if t, ok := a.(*net.TCPAddr); ok {
		copy(k[:16], t.IP.To16())
		k[16], k[17] = byte(t.Port>>8), byte(t.Port)
	}
	return k
}

const tcpEstablished = "01"

type cutWatcher struct {
	server   sockKey
	interval time.Duration

	mu      sync.Mutex
	pending map[sockKey]chan struct{}
	started bool
	broken  bool // the socket tables cannot be read: never report a cut
}

func newCutWatcher(server sockKey, interval time.Duration) *cutWatcher {
	return &cutWatcher{server: server, interval: interval, pending: make(map[sockKey]chan struct{})}
}

// add starts watching the connection whose client end is local; the channel
// is closed once the server has let go of it.
func (w *cutWatcher) add(ctx context.Context, local sockKey) <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	ch := make(chan struct{})
	w.pending[local] = ch
	if !w.started {
		w.started = true
		go w.loop(ctx)
	}
	return ch
}

func (w *cutWatcher) loop(ctx context.Context) {
	t := time.NewTicker(w.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			w.scan()
		}
	}
}

func (w *cutWatcher) scan() {
	w.mu.Lock()
	n := len(w.pending)
	w.mu.Unlock()
	if n == 0 {
		return
	}
	live := make(map[sockKey]struct{}, n)
	ok4 := scanProcNet("/proc/net/tcp", w.server, live)
	ok6 := scanProcNet("/proc/net/tcp6", w.server, live)
	w.mu.Lock()
	defer w.mu.Unlock()
	if !ok4 && !ok6 {
		w.broken = true
		return
	}
	for k, ch := range w.pending {
		if _, ok := live[k]; !ok {
			close(ch)
			delete(w.pending, k)
		}
	}
}

// scanProcNet adds to live the remote end of every ESTABLISHED socket whose
// local end is server. It reports whether the table could be read.
func scanProcNet(path string, server sockKey, live map[sockKey]struct{}) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer func() { _ = f.Close() }()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	sc.Scan() // header
	for sc.Scan() {
		fields := splitFields(sc.Bytes(), 4) // sl local remote st
		if len(fields) < 4 || string(fields[3]) != tcpEstablished {
			continue
		}
		local, ok := parseProcAddr(fields[1])
		if !ok || local != server {
			continue
		}
		if remote, ok := parseProcAddr(fields[2]); ok {
			live[remote] = struct{}{}
		}
	}
	return sc.Err() == nil
}

// splitFields returns the first n space-separated fields without allocating
// more than the result slice.
func splitFields(line []byte, n int) [][]byte {
	out := make([][]byte, 0, n)
	for len(out) < n {
		line = bytes.TrimLeft(line, " ")
		if len(line) == 0 {
			break
		}
		i := bytes.IndexByte(line, ' ')
		if i < 0 {
			i = len(line)
		}
		out = append(out, line[:i])
		line = line[i:]
	}
	return out
}

// parseProcAddr decodes "0100007F:1F90" (IPv4) or a 32-hex-digit IPv6
// address and port. The kernel prints each 32-bit word in host (little
// endian) order.
func parseProcAddr(s []byte) (sockKey, bool) {
	var k sockKey
	colon := bytes.IndexByte(s, ':')
	if colon < 0 || len(s)-colon-1 != 4 {
		return k, false
	}
	var port [2]byte
	if _, err := hex.Decode(port[:], s[colon+1:]); err != nil {
		return k, false
	}
	var raw [16]byte
	switch colon {
	case 8:
		if _, err := hex.Decode(raw[:4], s[:8]); err != nil {
			return k, false
		}
		ip := net.IPv4(raw[3], raw[2], raw[1], raw[0])
		copy(k[:16], ip.To16())
	case 32:
		if _, err := hex.Decode(raw[:], s[:32]); err != nil {
			return k, false
		}
		for w := 0; w < 4; w++ {
			k[w*4], k[w*4+1], k[w*4+2], k[w*4+3] = raw[w*4+3], raw[w*4+2], raw[w*4+1], raw[w*4]
		}
	default:
		return k, false
	}
	k[16], k[17] = port[0], port[1]
	return k, true
}
