package main

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// The tool only ever talks to this machine: every address it dials or
// listens on must be a loopback address, and anything else is refused before
// a socket is opened.

// loopbackIP resolves host to a loopback IP, preferring IPv4.
func loopbackIP(host string) (net.IP, error) {
	if ip := net.ParseIP(host); ip != nil {
		if !ip.IsLoopback() {
			return nil, fmt.Errorf("%s is not a loopback address; sse-bench only targets this machine", host)
		}
		return ip, nil
	}
	if !strings.EqualFold(host, "localhost") {
		return nil, fmt.Errorf("host %q: use a loopback IP or localhost; sse-bench only targets this machine", host)
	}
	ips, err := net.LookupIP(host)
	if err != nil || len(ips) == 0 {
		return net.IPv4(127, 0, 0, 1), nil
	}
	var v6 net.IP
	for _, ip := range ips {
		if !ip.IsLoopback() {
			return nil, fmt.Errorf("localhost resolves to %s, which is not loopback", ip)
		}
		if ip.To4() != nil {
			return ip, nil
		}
		v6 = ip
	}
	return v6, nil
}

// sseEndpoint is where and how a fleet connects.
type sseEndpoint struct {
	addr   string // ip:port to dial
	host   string // Host header
	target string // request-target
}

// resolveSSE checks an SSE URL for a protocol: http:// for h1 and h2c, https:// for the others.
func resolveSSE(raw, proto string) (sseEndpoint, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return sseEndpoint{}, fmt.Errorf("SSE URL %q: %w", raw, err)
	}
	if want := protoScheme(proto); u.Scheme != want {
		return sseEndpoint{}, fmt.Errorf("SSE URL %q: -proto %s needs %s://", raw, proto, want)
	}
	ip, err := loopbackIP(u.Hostname())
	if err != nil {
		return sseEndpoint{}, fmt.Errorf("SSE URL %q: %w", raw, err)
	}
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	return sseEndpoint{addr: net.JoinHostPort(ip.String(), port), host: u.Host, target: u.RequestURI()}, nil
}

// checkLoopbackURLs checks a comma-separated NATS server list.
func checkLoopbackURLs(list string) error {
	for _, raw := range strings.Split(list, ",") {
		raw = strings.TrimSpace(raw)
		if !strings.Contains(raw, "://") {
			raw = "nats://" + raw
		}
		u, err := url.Parse(raw)
		if err != nil {
			return fmt.Errorf("NATS URL %q: %w", raw, err)
		}
		if _, err := loopbackIP(u.Hostname()); err != nil {
			return fmt.Errorf("NATS URL %q: %w", raw, err)
		}
	}
	return nil
}

func checkLoopbackHostPort(hostport string) error {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return fmt.Errorf("listen address %q: %w", hostport, err)
	}
	if _, err := loopbackIP(host); err != nil {
		return fmt.Errorf("listen address %q: %w", hostport, err)
	}
	return nil
}

// sourceAddrs lists n loopback source addresses, 127.0.0.2 upwards. Linux
// routes the whole 127/8 to lo, so they need no setup. An IPv6 server gets
// none (::1 is the only IPv6 loopback address).
func sourceAddrs(n int, serverAddr string) []string {
	host, _, _ := net.SplitHostPort(serverAddr)
	if ip := net.ParseIP(host); ip == nil || ip.To4() == nil {
		return nil
	}
	out := make([]string, 0, n)
	for i := 0; i < n; i++ {
		out = append(out, "127.0."+strconv.Itoa((i+2)/256)+"."+strconv.Itoa((i+2)%256))
	}
	return out
}
