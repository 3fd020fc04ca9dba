package caddysse

import (
	"context"
	"errors"
	"net"
	"net/http"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/caddy-sse/caddy-sse/session"
)

// connKeyType keys the request context's value holding the request's connection, as Caddy's server gave it
// to net/http (RegisterConnContext): what the connection is decides whether a stream can be taken over.
type connKeyType struct{}

// registerConnContext makes the server of this handler record each connection in its requests' contexts,
// once per server of the config.
func (h *Handler) registerConnContext(ctx caddy.Context, app *App) {
	srv, ok := ctx.Value(caddyhttp.ServerCtxKey).(*caddyhttp.Server)
	if !ok || srv == nil {
		return
	}
	if app.connServers == nil {
		app.connServers = make(map[*caddyhttp.Server]struct{})
	}
	if _, done := app.connServers[srv]; done {
		return
	}
	app.connServers[srv] = struct{}{}
	srv.RegisterConnContext(func(ctx context.Context, c net.Conn) context.Context {
		return context.WithValue(ctx, connKeyType{}, c)
	})
}

// takeOverFunc returns how a stream's session takes its connection over once it is live (see
// session.Client.TakeOver), or nil where the stream must stay on its request: only plaintext HTTP/1.1 GETs on
// a connection Caddy's server accepted as it is (no TLS, no listener wrapper), and only with http1_takeover on.
func (h *Handler) takeOverFunc(w http.ResponseWriter, r *http.Request) func() (net.Conn, error) {
	if !h.takeoverOn() || r.ProtoMajor != 1 || r.ProtoMinor < 1 || r.Method != http.MethodGet {
		return nil
	}
	conn, _ := r.Context().Value(connKeyType{}).(net.Conn)
	if conn == nil || !session.CanTakeOver(conn) {
		return nil
	}
	return func() (net.Conn, error) { return hijackAfterHead(w) }
}

// Why a stream stays on its request after all.
var (
	errEncoded     = errors.New("the response is encoded")
	errBuffered    = errors.New("a handler buffers the response")
	errNoHijacker  = errors.New("the response cannot be hijacked")
	errNotChunked  = errors.New("the response is not chunked")
	errLengthKnown = errors.New("the response has a length")
)

// hijackAfterHead takes the connection of w over after the response head and what followed it have been
// flushed: the head went through every handler of the chain (header operations, logging), so from here on
// only the body's chunks are written, by the session. It refuses when a handler transforms or holds the body
// (an encoder, a buffering recorder), whose bytes must keep going through it.
func hijackAfterHead(w http.ResponseWriter) (net.Conn, error) {
	hdr := w.Header()
	switch {
	case hdr.Get("Content-Encoding") != "":
		return nil, errEncoded
	case hdr.Get("Transfer-Encoding") != "": // net/http chunks only when no handler set one
		return nil, errNotChunked
	case hdr.Get("Content-Length") != "":
		return nil, errLengthKnown
	}
	for {
		if b, ok := w.(interface{ Buffered() bool }); ok && b.Buffered() {
			return nil, errBuffered
		}
		u, ok := w.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			break
		}
		w = u.Unwrap()
	}
	// The server's own writer, under every wrapper: a wrapper's Hijack would wrap the connection again (Caddy's
	// access-log recorder counts its bytes), keeping the request's state alive as long as the stream.
	hj, ok := w.(http.Hijacker)
	if !ok {
		return nil, errNoHijacker
	}
	conn, _, err := hj.Hijack()
	return conn, err
}
