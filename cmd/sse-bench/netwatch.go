package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"net"
	"os"
	"sync"
	"syscall"
	"time"
)

// A client that stops reading cannot see the server hang up: the server's FIN
// waits behind unsent data in a zero window. The server's own socket, however,
// leaves ESTABLISHED the moment the server closes it (FIN_WAIT1) or resets it
// (gone). cutWatcher polls the server side of each stalled connection (same
// host, loopback only): by exact sock_diag lookups when the kernel offers
// them, which also give the server's send queue, else by reading the
// kernel's socket tables (/proc/net/tcp and tcp6).

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

// diagPoll is the polling interval with sock_diag: its cost grows with the
// stalled connections only, so it can be short.
const diagPoll = 100 * time.Millisecond

type cutWatcher struct {
	server   sockKey
	interval time.Duration // for /proc scans

	mu      sync.Mutex
	pending map[sockKey]*watched
	started bool
	probed  bool
	diag    *sockDiag // nil: scan /proc
	family  uint8     // of the server's sockets, for sock_diag
	broken  bool      // the socket tables cannot be read: never report a cut
}

// watched is one stalled connection. done is closed once the server has let
// go of it; the other fields are final by then.
type watched struct {
	done    chan struct{}
	sendq   uint32    // largest server send queue seen, bytes (sock_diag only)
	grownAt time.Time // when that queue last grew: the buffers were full from then on
}

func newCutWatcher(server sockKey, interval time.Duration) *cutWatcher {
	return &cutWatcher{server: server, interval: interval, pending: make(map[sockKey]*watched)}
}

// add starts watching the connection whose client end is local.
func (w *cutWatcher) add(ctx context.Context, local sockKey) *watched {
	w.mu.Lock()
	defer w.mu.Unlock()
	e := &watched{done: make(chan struct{})}
	w.pending[local] = e
	if !w.probed {
		// The first stalled connection is still established: find the
		// family under which sock_diag sees the server's end of it.
		w.probed = true
		w.diag, w.family = probeSockDiag(w.server, local)
	}
	if !w.started {
		w.started = true
		go w.loop(ctx)
	}
	return e
}

func probeSockDiag(server, client sockKey) (*sockDiag, uint8) {
	d, err := openSockDiag()
	if err != nil {
		return nil, 0
	}
	for _, fam := range []uint8{syscall.AF_INET, syscall.AF_INET6} {
		if fam == syscall.AF_INET && !isV4Mapped(server) {
			continue
		}
		if info, err := d.lookup(fam, server, client); err == nil && info.found && info.state == tcpStateEstab {
			return d, fam
		}
	}
	d.close()
	return nil, 0
}

func isV4Mapped(k sockKey) bool {
	return net.IP(k[:16]).To4() != nil
}

func (w *cutWatcher) loop(ctx context.Context) {
	defer func() {
		w.mu.Lock()
		if w.diag != nil {
			w.diag.close()
			w.diag = nil
		}
		w.mu.Unlock()
	}()
	for {
		w.mu.Lock()
		every := w.interval
		if w.diag != nil {
			every = diagPoll
		}
		w.mu.Unlock()
		if !sleepCtx(ctx, every) {
			return
		}
		w.scan()
	}
}

func (w *cutWatcher) scan() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.pending) == 0 {
		return
	}
	if w.diag != nil {
		if w.scanDiag() {
			return
		}
		w.diag.close() // lookups fail: fall back to the socket tables
		w.diag = nil
	}
	live := make(map[sockKey]struct{}, len(w.pending))
	ok4 := scanProcNet("/proc/net/tcp", w.server, live)
	ok6 := scanProcNet("/proc/net/tcp6", w.server, live)
	if !ok4 && !ok6 {
		w.broken = true
		return
	}
	for k, e := range w.pending {
		if _, ok := live[k]; !ok {
			close(e.done)
			delete(w.pending, k)
		}
	}
}

// scanDiag looks up every pending connection; false if a lookup failed.
func (w *cutWatcher) scanDiag() bool {
	now := time.Now()
	for k, e := range w.pending {
		info, err := w.diag.lookup(w.family, w.server, k)
		if err != nil {
			return false
		}
		if !info.found || info.state != tcpStateEstab {
			close(e.done)
			delete(w.pending, k)
			continue
		}
		if info.wqueue > e.sendq {
			e.sendq, e.grownAt = info.wqueue, now
		}
	}
	return true
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
