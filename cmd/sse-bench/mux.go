package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/caddy-sse/caddy-sse/internal/sseclient"
	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
)

// A muxPool holds the shared connections of h2c, h2 and h3 fleets: clients first..first+per-1 of a fleet share
// slot 0, the next per clients slot 1, and so on, so -h2-streams 100 is a hundred browser tabs on one
// connection and -h2-streams 1 one connection per tab. A slot dials lazily and again once its connection
// died; streams on a dead connection see an error and reconnect like any other client.
type muxPool struct {
	f     *localFleet
	per   int
	url   string
	slots []muxSlot
	dial  func(ctx context.Context, c *client) (muxConn, error)
}

type muxSlot struct {
	mu   sync.Mutex
	conn muxConn
	all  []muxConn // every connection this slot dialed, closed at the end
}

// muxConn is one HTTP/2 or HTTP/3 connection.
type muxConn interface {
	RoundTrip(*http.Request) (*http.Response, error)
	usable() bool
	Close() error
}

func newMuxPool(f *localFleet, tlsConf *tls.Config) (*muxPool, error) {
	cfg := f.cfg
	per := max(cfg.Streams, 1)
	p := &muxPool{f: f, per: per, slots: make([]muxSlot, (cfg.Count+per-1)/per)}
	p.url = protoScheme(cfg.Proto) + "://" + cfg.Host + cfg.Target
	switch cfg.Proto {
	case protoH2C, protoH2:
		tr := newH2Transport(cfg.Proto, tlsConf)
		p.dial = func(ctx context.Context, c *client) (muxConn, error) { return dialH2(ctx, c, tr) }
	case protoH3:
		server, err := net.ResolveUDPAddr("udp", cfg.Addr)
		if err != nil {
			return nil, err
		}
		tr := &http3.Transport{DisableCompression: true}
		p.dial = func(ctx context.Context, c *client) (muxConn, error) { return dialH3(ctx, c, server, tr, tlsConf) }
	default:
		return nil, fmt.Errorf("protocol %q is not multiplexed", cfg.Proto)
	}
	return p, nil
}

func (p *muxPool) slot(c *client) *muxSlot {
	return &p.slots[min((c.idx-p.f.cfg.First)/p.per, len(p.slots)-1)]
}

// conn returns the slot's live connection, dialing one when there is none.
func (s *muxSlot) get(ctx context.Context, p *muxPool, c *client) (muxConn, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn != nil && s.conn.usable() {
		return s.conn, nil
	}
	dctx, cancel := context.WithTimeout(ctx, p.f.cfg.DialTimeout)
	defer cancel()
	mc, err := p.dial(dctx, c)
	if err != nil {
		return nil, err
	}
	p.f.dials.Add(1)
	s.conn = mc
	s.all = append(s.all, mc)
	return mc, nil
}

// open sends the client's GET on its slot's connection and returns the stream once the response head is in.
func (p *muxPool) open(c *client) (streamConn, streamBody, error) {
	f := p.f
	mc, err := p.slot(c).get(f.ctx, p, c)
	if err != nil {
		return nil, nil, err
	}
	ctx, cancel := context.WithCancel(f.ctx)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.url, nil)
	if err != nil {
		cancel()
		return nil, nil, err
	}
	req.Header.Set("User-Agent", "caddy-sse-client")
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Cache-Control", "no-cache")
	if id := c.p.LastID(); len(id) > 0 {
		req.Header.Set("Last-Event-ID", string(id))
	}
	// The response head must come within the dial timeout, as on h1; the body may then stay quiet forever.
	late := time.AfterFunc(f.cfg.DialTimeout, cancel)
	resp, err := mc.RoundTrip(req)
	if !late.Stop() && err == nil {
		_ = resp.Body.Close()
		err = errors.New("no response head within the dial timeout")
	}
	if err != nil {
		cancel()
		return nil, nil, err
	}
	if err := checkMuxResponse(resp, wantProtoMajor(f.cfg.Proto)); err != nil {
		_ = resp.Body.Close()
		cancel()
		return nil, nil, err
	}
	if c.buf == nil {
		c.buf = make([]byte, f.cfg.ReadBuf)
	}
	c.p.Reset()
	return &muxStream{cancel: cancel, body: resp.Body}, &httpBody{resp: resp, buf: c.buf}, nil
}

// checkMuxResponse accepts what the raw client accepts (200, text/event-stream), over the protocol asked for:
// a server that answered on another one would measure the wrong thing.
func checkMuxResponse(resp *http.Response, major int) error {
	if resp.ProtoMajor != major {
		return fmt.Errorf("response over %s, want HTTP/%d", resp.Proto, major)
	}
	if resp.StatusCode != http.StatusOK {
		return sseclient.StatusError{Code: resp.StatusCode}
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(strings.ToLower(ct), "text/event-stream") {
		return sseclient.ErrNotEventStream
	}
	return nil
}

func (p *muxPool) close() {
	for i := range p.slots {
		s := &p.slots[i]
		s.mu.Lock()
		for _, mc := range s.all {
			_ = mc.Close()
		}
		s.all, s.conn = nil, nil
		s.mu.Unlock()
	}
}

// h2Conn is an HTTP/2 connection of net/http's client, over TCP (h2c, prior knowledge) or TLS (h2, ALPN
// offering h2 alone).
type h2Conn struct{ cc *http.ClientConn }

func (h *h2Conn) RoundTrip(r *http.Request) (*http.Response, error) { return h.cc.RoundTrip(r) }
func (h *h2Conn) usable() bool                                      { return h.cc.Err() == nil }
func (h *h2Conn) Close() error                                      { return h.cc.Close() }

// dialerKey carries the dialing client's net.Dialer (its source address) to the transport's DialContext.
type dialerKey struct{}

func newH2Transport(proto string, tlsConf *tls.Config) *http.Transport {
	tr := &http.Transport{
		TLSClientConfig: tlsConf, DisableCompression: true, Protocols: new(http.Protocols),
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return ctx.Value(dialerKey{}).(*net.Dialer).DialContext(ctx, network, addr)
		},
	}
	if proto == protoH2C {
		tr.Protocols.SetUnencryptedHTTP2(true)
	} else {
		tr.Protocols.SetHTTP2(true)
	}
	return tr
}

func dialH2(ctx context.Context, c *client, tr *http.Transport) (muxConn, error) {
	cc, err := tr.NewClientConn(context.WithValue(ctx, dialerKey{}, c.dialer), protoScheme(c.f.cfg.Proto), c.f.cfg.Addr)
	if err != nil {
		return nil, err
	}
	return &h2Conn{cc: cc}, nil
}

// h3Conn is an HTTP/3 connection on a UDP socket of its own, as a browser tab's would be.
type h3Conn struct {
	udp  *net.UDPConn
	qc   *quic.Conn
	conn *http3.ClientConn
}

func (h *h3Conn) RoundTrip(r *http.Request) (*http.Response, error) { return h.conn.RoundTrip(r) }
func (h *h3Conn) usable() bool                                      { return h.qc.Context().Err() == nil }
func (h *h3Conn) Close() error {
	err := h.qc.CloseWithError(0, "")
	_ = h.udp.Close()
	return err
}

// h3Config is the client's QUIC configuration: quic-go's defaults (30 s idle timeout, no keep-alive), as a
// browser's idle stream relies on the server's heartbeats.
var h3Config = &quic.Config{}

func dialH3(ctx context.Context, c *client, server *net.UDPAddr, tr *http3.Transport, tlsConf *tls.Config) (muxConn, error) {
	var local *net.UDPAddr
	if la, ok := c.dialer.LocalAddr.(*net.TCPAddr); ok {
		local = &net.UDPAddr{IP: la.IP}
	}
	udp, err := net.ListenUDP("udp", local)
	if err != nil {
		return nil, err
	}
	qc, err := quic.Dial(ctx, udp, server, tlsConf, h3Config)
	if err != nil {
		_ = udp.Close()
		return nil, err
	}
	return &h3Conn{udp: udp, qc: qc, conn: tr.NewClientConn(qc)}, nil
}
