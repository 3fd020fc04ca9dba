//go:build unix

package session

import (
	"errors"
	"net"
	"os"
	"syscall"
	"time"
)

// rawConn is a taken-over connection written without blocking: a writer of the pool must never wait for one
// client's socket.
type rawConn struct {
	net.Conn
	raw syscall.RawConn
}

// CanTakeOver reports whether conn can be held by the writer pool: a plain TCP connection on a platform
// with non-blocking writes. TLS and wrapped connections stay on their request.
func CanTakeOver(conn net.Conn) bool {
	_, ok := conn.(*net.TCPConn)
	return ok
}

func newRawConn(conn net.Conn) (*rawConn, error) {
	tcp, ok := conn.(*net.TCPConn)
	if !ok {
		return nil, errors.New("session: not a TCP connection")
	}
	raw, err := tcp.SyscallConn()
	if err != nil {
		return nil, err
	}
	return &rawConn{Conn: conn, raw: raw}, nil
}

// tryWrite writes as much of p as the socket takes now and returns how much that was. A full socket is not
// an error: n < len(p) with a nil error.
//
// A non-blocking write has no deadline of its own, yet the runtime refuses a write once the connection's
// write deadline has passed. The HTTP server's handlers can still arm one after the takeover (Caddy's
// idle-timeout writer moves the deadline it had armed when the handler returns), so such a refusal clears
// the deadline and writes again.
func (c *rawConn) tryWrite(p []byte) (int, error) {
	n, err := c.write(p)
	if errors.Is(err, os.ErrDeadlineExceeded) && n == 0 {
		if err := c.SetWriteDeadline(time.Time{}); err != nil {
			return 0, err
		}
		return c.write(p)
	}
	return n, err
}

func (c *rawConn) write(p []byte) (n int, err error) {
	var werr error
	cerr := c.raw.Write(func(fd uintptr) bool {
		for n < len(p) {
			k, e := syscall.Write(int(fd), p[n:])
			if k > 0 {
				n += k
			}
			switch {
			case e == syscall.EINTR:
				continue
			case e == syscall.EAGAIN:
				return true
			case e != nil:
				werr = e
				return true
			case k == 0:
				werr = syscall.EPIPE
				return true
			}
		}
		return true // done: never wait for the socket here
	})
	if cerr != nil {
		return n, cerr
	}
	return n, werr
}
