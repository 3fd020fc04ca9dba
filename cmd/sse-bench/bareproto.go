package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"log"
	"math/big"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
)

// The bare server's listeners, one per protocol, all with the standard library's servers as a plain Go
// program would use them: net/http for h1, h1tls and h2 (its built-in HTTP/2 over TLS with ALPN), h2c through
// http.Protocols, and quic-go's http3.Server for h3. The TLS ones use a certificate made up at start.

// bareServer is a started listener: where it listens, and how to stop it.
type bareServer struct {
	addr     string
	serve    func() error
	shutdown func(context.Context)
}

func listenBare(proto, addr string, h http.Handler) (*bareServer, error) {
	var cert tls.Certificate
	if protoScheme(proto) == "https" {
		var err error
		if cert, err = selfSignedCert(); err != nil {
			return nil, err
		}
	}
	if proto == protoH3 {
		return listenBareH3(addr, h, cert)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ErrorLog: log.New(quietTLS{}, "bare: ", log.Ltime)}
	b := &bareServer{addr: ln.Addr().String(), serve: func() error { return srv.Serve(ln) }}
	b.shutdown = func(ctx context.Context) {
		_ = srv.Shutdown(ctx)
		_ = srv.Close()
	}
	switch proto {
	case protoH1TLS, protoH2:
		// ServeTLS turns on HTTP/2 and offers h2 and http/1.1: the client's ALPN picks one.
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
		b.serve = func() error { return srv.ServeTLS(ln, "", "") }
	case protoH2C:
		srv.Protocols = new(http.Protocols)
		srv.Protocols.SetHTTP1(true)
		srv.Protocols.SetUnencryptedHTTP2(true)
	}
	return b, nil
}

// quietTLS drops net/http's per-connection TLS handshake errors (clients closing during a handshake at the
// end of a run, a mismatch test's plaintext requests) and passes the rest to stderr.
type quietTLS struct{}

func (quietTLS) Write(p []byte) (int, error) {
	if bytes.Contains(p, []byte("TLS handshake error")) {
		return len(p), nil
	}
	return os.Stderr.Write(p)
}

// bareQUICConfig is what Caddy's QUIC listener sets (caddy's listeners.go, ListenQUIC): the rest are
// quic-go's defaults on both sides.
func bareQUICConfig() *quic.Config {
	return &quic.Config{InitialPacketSize: 1200, Allow0RTT: true}
}

func listenBareH3(addr string, h http.Handler, cert tls.Certificate) (*bareServer, error) {
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, err
	}
	udp, err := net.ListenUDP("udp", ua)
	if err != nil {
		return nil, err
	}
	srv := &http3.Server{
		Handler:    h,
		TLSConfig:  http3.ConfigureTLSConfig(&tls.Config{Certificates: []tls.Certificate{cert}}),
		QUICConfig: bareQUICConfig(),
	}
	return &bareServer{
		addr:  udp.LocalAddr().String(),
		serve: func() error { return srv.Serve(udp) },
		shutdown: func(ctx context.Context) {
			_ = srv.Shutdown(ctx)
			_ = srv.Close()
			_ = udp.Close()
		},
	}, nil
}

// selfSignedCert makes an ECDSA P-256 certificate for the loopback names, the key type Caddy's internal
// issuer uses, so both servers' handshakes cost the same.
func selfSignedCert() (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		return tls.Certificate{}, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "sse-bench bare"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(48 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("self-signed certificate: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}
