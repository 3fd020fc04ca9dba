package main

import (
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
)

// The protocols a fleet can speak. h1 is the original raw HTTP/1.1 client, untouched; h1tls is the same
// client over a TLS connection; h2c, h2 and h3 go through the Go HTTP/2 client (x/net/http2) and quic-go's
// HTTP/3 client on connections this tool dials itself, so it decides how many streams share one connection.
// Certificates are never verified: every server here is on loopback and the bare one makes up its own.
const (
	protoH1    = "h1"
	protoH1TLS = "h1tls"
	protoH2C   = "h2c"
	protoH2    = "h2"
	protoH3    = "h3"
)

var protocols = []string{protoH1, protoH1TLS, protoH2C, protoH2, protoH3}

// protoScheme is the URL scheme a protocol's server is reached with.
func protoScheme(proto string) string {
	switch proto {
	case protoH1, protoH2C:
		return "http"
	}
	return "https"
}

// multiplexed protocols carry several streams per connection (-h2-streams).
func multiplexed(proto string) bool {
	return proto == protoH2C || proto == protoH2 || proto == protoH3
}

// scenariosFor lists what runs over a protocol. storm and slow reach into each client's TCP socket (the
// drop closes it, the stall watches its send queue through sock_diag), which only the raw h1 client has.
func protoAllows(proto, scenario string) bool {
	return proto == protoH1 || scenario == "idle" || scenario == "fanout"
}

func validateProto(proto, scenario string, streams int) error {
	if !slices.Contains(protocols, proto) {
		return fmt.Errorf("-proto must be one of %s, not %q", strings.Join(protocols, ", "), proto)
	}
	if !protoAllows(proto, scenario) {
		return fmt.Errorf("%s runs over -proto h1 only (it needs each client's own TCP socket); -proto %s supports idle and fanout", scenario, proto)
	}
	if streams < 1 {
		return fmt.Errorf("-h2-streams must be at least 1")
	}
	if streams > 1 && !multiplexed(proto) {
		return fmt.Errorf("-h2-streams %d needs -proto h2c, h2 or h3", streams)
	}
	return nil
}

// clientTLS is the TLS configuration of every client connection: ALPN offers the one protocol being
// measured, so a server that cannot speak it fails the handshake or the protocol check instead of quietly
// falling back.
func clientTLS(proto string) *tls.Config {
	c := &tls.Config{InsecureSkipVerify: true} // loopback only; the bare server's certificate is made up at start
	switch proto {
	case protoH1TLS:
		c.NextProtos = []string{"http/1.1"}
	case protoH2:
		c.NextProtos = []string{"h2"}
	case protoH3:
		c.NextProtos = []string{"h3"}
	default:
		return nil
	}
	return c
}

// wantProtoMajor is the HTTP major version a response must come back with.
func wantProtoMajor(proto string) int {
	switch proto {
	case protoH2, protoH2C:
		return 2
	case protoH3:
		return 3
	}
	return 1
}

// streamConn is what ends one stream: the connection itself for h1 and h1tls, the request for h2c, h2 and h3.
type streamConn interface {
	Close() error
}

// streamBody yields a response body in pieces and the headers a client reads.
type streamBody interface {
	Next() ([]byte, error)
	Header(name string) string
}

// httpBody is a streamBody over a net/http response (h2c, h2, h3), read into the client's own buffer.
type httpBody struct {
	resp *http.Response
	buf  []byte
}

func (b *httpBody) Next() ([]byte, error) {
	n, err := b.resp.Body.Read(b.buf)
	if n > 0 && err == io.EOF {
		err = nil // the next call reports it
	}
	return b.buf[:n], err
}

func (b *httpBody) Header(name string) string { return b.resp.Header.Get(name) }

// muxStream ends one multiplexed stream: cancelling its request resets the stream, not the connection.
type muxStream struct {
	cancel func()
	body   io.Closer
}

func (s *muxStream) Close() error {
	s.cancel()
	return s.body.Close()
}

// protoLabel names a protocol and, when multiplexed, its streams per connection.
func protoLabel(proto string, streams int) string {
	if multiplexed(proto) {
		return fmt.Sprintf("%s, %d per connection", proto, streams)
	}
	return proto
}
