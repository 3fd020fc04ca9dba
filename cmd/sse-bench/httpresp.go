package main

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

// appendRequest writes the GET request. lastID is sent as Last-Event-ID when
// not empty.
func appendRequest(dst []byte, target, host string, lastID []byte) []byte {
	dst = append(dst, "GET "...)
	dst = append(dst, target...)
	dst = append(dst, " HTTP/1.1\r\nHost: "...)
	dst = append(dst, host...)
	dst = append(dst, "\r\nUser-Agent: sse-bench\r\nAccept: text/event-stream\r\nCache-Control: no-cache\r\n"...)
	if len(lastID) > 0 {
		dst = append(dst, "Last-Event-ID: "...)
		dst = append(dst, lastID...)
		dst = append(dst, "\r\n"...)
	}
	return append(dst, "\r\n"...)
}

type statusError struct{ code int }

func (e statusError) Error() string { return fmt.Sprintf("HTTP status %d", e.code) }

var (
	errNotEventStream = errors.New("response is not text/event-stream")
	errBadResponse    = errors.New("malformed HTTP response")
)

// body yields the response body in pieces.
type body struct {
	br      *bufio.Reader
	chunked bool
	left    int64 // bytes left in the current chunk or Content-Length body; -1: until EOF
	crlf    bool  // a chunk's trailing CRLF is still to be read
	// retryAfter is the Retry-After header in seconds, -1 when absent. On a 200 event stream it marks a
	// turned-away answer: the server asks the client to come back later (its stream ends at once).
	retryAfter int
}

// readResponse parses the status line and headers and returns the body. Only
// 200 with a text/event-stream content type is accepted.
func readResponse(br *bufio.Reader) (body, error) {
	b := body{br: br, left: -1, retryAfter: -1}
	line, err := br.ReadSlice('\n')
	if err != nil {
		return b, err
	}
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || line[8] != ' ' {
		return b, errBadResponse
	}
	code, err := strconv.Atoi(string(line[9:12]))
	if err != nil {
		return b, errBadResponse
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
			return b, errBadResponse
		}
		name, value := line[:colon], bytes.TrimSpace(line[colon+1:])
		switch {
		case bytes.EqualFold(name, []byte("Content-Type")):
			eventStream = len(value) >= 17 && bytes.EqualFold(value[:17], []byte("text/event-stream"))
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			b.chunked = bytes.Contains(bytes.ToLower(value), []byte("chunked"))
		case bytes.EqualFold(name, []byte("Retry-After")):
			// Only delta-seconds; an HTTP date is not something the servers measured here send.
			if allDigits(value) {
				if n, err := strconv.Atoi(string(value)); err == nil {
					b.retryAfter = n
				}
			}
		case bytes.EqualFold(name, []byte("Content-Length")):
			if n, err := strconv.ParseInt(string(value), 10, 64); err == nil {
				b.left = n
			}
		}
	}
	if code != 200 {
		return b, statusError{code}
	}
	if !eventStream {
		return b, errNotEventStream
	}
	if b.chunked {
		b.left = 0
	}
	return b, nil
}

// next returns the next piece of body. The slice stays valid until the next
// call; io.EOF marks the end of the body.
func (b *body) next() ([]byte, error) {
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

func (b *body) nextChunk() error {
	if b.crlf {
		line, err := b.br.ReadSlice('\n')
		if err != nil {
			return err
		}
		if len(bytes.TrimRight(line, "\r\n")) != 0 {
			return errBadResponse
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
		return errBadResponse
	}
	if size == 0 {
		return io.EOF // trailers, if any, are not needed
	}
	b.left, b.crlf = size, true
	return nil
}
