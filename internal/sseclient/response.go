package sseclient

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// A minimal HTTP/1.1 response reader for one long-lived GET: status line,
// headers, then the body as slices viewed straight out of the connection's
// bufio buffer (identity, Content-Length or chunked), so a connection costs
// one read buffer and nothing else.

// AppendRequest writes the GET request. lastID is sent as Last-Event-ID when
// not empty.
func AppendRequest(dst []byte, target, host string, lastID []byte) []byte {
	dst = append(dst, "GET "...)
	dst = append(dst, target...)
	dst = append(dst, " HTTP/1.1\r\nHost: "...)
	dst = append(dst, host...)
	dst = append(dst, "\r\nUser-Agent: caddy-sse-client\r\nAccept: text/event-stream\r\nCache-Control: no-cache\r\n"...)
	if len(lastID) > 0 {
		dst = append(dst, "Last-Event-ID: "...)
		dst = append(dst, lastID...)
		dst = append(dst, "\r\n"...)
	}
	return append(dst, "\r\n"...)
}

type StatusError struct{ Code int }

func (e StatusError) Error() string { return fmt.Sprintf("HTTP status %d", e.Code) }

var (
	ErrNotEventStream = errors.New("response is not text/event-stream")
	ErrBadResponse    = errors.New("malformed HTTP response")
)

// Body yields the response body in pieces.
type Body struct {
	br      *bufio.Reader
	chunked bool
	left    int64 // bytes left in the current chunk or Content-Length body; -1: until EOF
	crlf    bool  // a chunk's trailing CRLF is still to be read
	kept    [][2]string
}

// Header is the value of a response header ReadResponse was asked to keep.
func (b *Body) Header(name string) string {
	for _, h := range b.kept {
		if h[0] == name {
			return h[1]
		}
	}
	return ""
}

// ReadResponse parses the status line and headers and returns the body. Only
// 200 with a text/event-stream content type is accepted. The values of the
// headers named in keep are kept for Body.Header.
func ReadResponse(br *bufio.Reader, keep ...string) (Body, error) {
	b := Body{br: br, left: -1}
	line, err := br.ReadSlice('\n')
	if err != nil {
		return b, err
	}
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || line[8] != ' ' {
		return b, ErrBadResponse
	}
	code, err := strconv.Atoi(string(line[9:12]))
	if err != nil {
		return b, ErrBadResponse
	}
	eventStream := false
	for {
		line, err = br.ReadSlice('\n')
		if err != nil {
			return b, err
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			break
		}
		colon := bytes.IndexByte(line, ':')
		if colon < 0 {
			return b, ErrBadResponse
		}
		name, value := line[:colon], bytes.TrimSpace(line[colon+1:])
		switch {
		case bytes.EqualFold(name, []byte("Content-Type")):
			eventStream = len(value) >= 17 && bytes.EqualFold(value[:17], []byte("text/event-stream"))
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			b.chunked = bytes.Contains(bytes.ToLower(value), []byte("chunked"))
		case bytes.EqualFold(name, []byte("Content-Length")):
			if n, err := strconv.ParseInt(string(value), 10, 64); err == nil {
				b.left = n
			}
		}
		for _, k := range keep {
			if bytes.EqualFold(name, []byte(k)) {
				b.kept = append(b.kept, [2]string{k, string(value)})
			}
		}
	}
	if code != 200 {
		return b, StatusError{code}
	}
	if !eventStream {
		return b, ErrNotEventStream
	}
	if b.chunked {
		b.left = 0
	}
	return b, nil
}

// Next returns the next piece of body. The slice stays valid until the next
// call; io.EOF marks the end of the body.
func (b *Body) Next() ([]byte, error) {
	if b.chunked && b.left == 0 {
		if err := b.nextChunk(); err != nil {
			return nil, err
		}
	}
	if b.left == 0 {
		return nil, io.EOF
	}
	if b.br.Buffered() == 0 {
		if _, err := b.br.Peek(1); err != nil {
			return nil, err
		}
	}
	n := b.br.Buffered()
	if b.left >= 0 && int64(n) > b.left {
		n = int(b.left)
	}
	p, _ := b.br.Peek(n)
	_, _ = b.br.Discard(n)
	if b.left >= 0 {
		b.left -= int64(n)
	}
	return p, nil
}

func (b *Body) nextChunk() error {
	if b.crlf {
		line, err := b.br.ReadSlice('\n')
		if err != nil {
			return err
		}
		if len(bytes.TrimRight(line, "\r\n")) != 0 {
			return ErrBadResponse
		}
		b.crlf = false
	}
	line, err := b.br.ReadSlice('\n')
	if err != nil {
		return err
	}
	line = bytes.TrimRight(line, "\r\n")
	if i := bytes.IndexByte(line, ';'); i >= 0 {
		line = line[:i]
	}
	size, err := strconv.ParseInt(string(bytes.TrimSpace(line)), 16, 64)
	if err != nil || size < 0 {
		return ErrBadResponse
	}
	if size == 0 {
		return io.EOF // trailers, if any, are not needed
	}
	b.left, b.crlf = size, true
	return nil
}
