//go:build !unix

package session

import (
	"errors"
	"net"
)

// rawConn is only available where writes can be made without blocking (unix).
type rawConn struct{ net.Conn }

// CanTakeOver is false here: sessions stay on their request.
func CanTakeOver(net.Conn) bool { return false }

func newRawConn(net.Conn) (*rawConn, error) {
	return nil, errors.New("session: taking connections over is not supported on this platform")
}

func (c *rawConn) tryWrite([]byte) (int, error) { return 0, errors.ErrUnsupported }
