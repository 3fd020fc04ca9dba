package caddysse

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// h3Site runs a real Caddy with an HTTPS site (internal CA) serving streams on /events over HTTP/3 too.
func h3Site(t *testing.T) (proc *caddyProcess, url string, adminPort int) {
	t.Helper()
	dir := t.TempDir()
	httpsPort, adminPort := freeTCPAndUDPPort(t), freePort(t)
	config := fmt.Sprintf(`{
	admin localhost:%d
	local_certs
	skip_install_trust
	auto_https disable_redirects
	sse {
		listen off
		store_dir %s
	}
}

https://localhost:%d {
	sse /events h3.> {
		stream H3
	}
}
`, adminPort, filepath.Join(dir, "js"), httpsPort)
	proc = startCaddy(t, dir, config)
	url = fmt.Sprintf("https://localhost:%d/events", httpsPort)
	return proc, url, adminPort
}

// freeTCPAndUDPPort is a port free for TCP (HTTPS) and UDP (QUIC) alike: a port free for TCP only may be another
// process's QUIC listener, and the test's client would reach that one.
func freeTCPAndUDPPort(t *testing.T) int {
	t.Helper()
	for range 100 {
		port := freePort(t)
		udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
		if err == nil {
			udp.Close()
			return port
		}
	}
	t.Fatal("no port free for both TCP and UDP")
	return 0
}

// h3Client speaks only HTTP/3 and trusts any certificate (the site's is from Caddy's internal CA). quicConfig
// may be nil.
func h3Client(t *testing.T, quicConfig *quic.Config, dial func(addr string, tlsConf *tls.Config, conf *quic.Config) (*quic.Conn, error)) *http.Client {
	t.Helper()
	tr := &http3.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, QUICConfig: quicConfig}
	if dial != nil {
		tr.Dial = func(ctx context.Context, addr string, tlsConf *tls.Config, conf *quic.Config) (*quic.Conn, error) {
			return dial(addr, tlsConf, conf)
		}
	}
	t.Cleanup(func() { tr.Close() })
	return &http.Client{Transport: tr}
}

func waitH3(t *testing.T, client *http.Client, url string) {
	t.Helper()
	eventually(t, "caddy serving HTTP/3", func() bool {
		resp, err := client.Head(url)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.ProtoMajor == 3
	})
}

// TestCaddyExitEndsHTTP3Streams: HTTP/3 requests do not go through http.Server, whose shutdown hook ends
// streams on exit; with Caddy's default eternal grace period, open h3 streams would hold the exit forever.
func TestCaddyExitEndsHTTP3Streams(t *testing.T) {
	t.Parallel() // its own Caddy process, ports and directories
	proc, url, _ := h3Site(t)
	client := h3Client(t, nil, nil)
	waitH3(t, client, url)
	const streams = 20
	var open []*sseStream
	for range streams {
		s := openStreamWith(t, client, url, nil)
		s.waitOpen()
		if s.resp.ProtoMajor != 3 {
			t.Fatalf("stream over %s, want HTTP/3", s.resp.Proto)
		}
		open = append(open, s)
	}

	start := time.Now()
	if err := proc.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-proc.exited:
	case <-time.After(waitLong):
		t.Fatalf("caddy still running %s after SIGTERM with %d HTTP/3 streams open", waitLong, streams)
	}
	t.Logf("caddy exited %s after SIGTERM with %d HTTP/3 streams open", time.Since(start).Round(time.Millisecond), streams)
	for _, s := range open {
		s.expectEnd()
	}
}

// TestHTTP3VanishedClientsCounted: a client that disappears without closing (here: its UDP socket closed under
// it) leaves its streams open on the server until QUIC's idle timeout, then they end and are counted. The
// client asks for a 2 s idle timeout, which both ends then use, so the test does not wait 30 s.
//
// It runs alone (SSE_TEST_QUIC_IDLE=1, a step of .ci/run of its own): inside the whole package's run the
// vanished client's streams were not counted within a minute in some runs, while alone they are within seconds
// every time; the cause is not found yet. Alone it is timing-dependent too: on 2026-12-02 it failed four runs in a
// row on a 2-core VM (the streams ended after ~5 s, not counted as idle timeouts), then passed four in a row with
// no change, and passed whenever Caddy logged at debug; .ci/run gives it three attempts.
func TestHTTP3VanishedClientsCounted(t *testing.T) {
	if os.Getenv("SSE_TEST_QUIC_IDLE") == "" {
		t.Skip("runs alone: SSE_TEST_QUIC_IDLE=1 go test -run TestHTTP3VanishedClientsCounted .")
	}
	proc, url, adminPort := h3Site(t)
	waitH3(t, h3Client(t, nil, nil), url)

	udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	transport := &quic.Transport{Conn: udp}
	t.Cleanup(func() { transport.Close() })
	client := h3Client(t, &quic.Config{MaxIdleTimeout: 2 * time.Second}, func(addr string, tlsConf *tls.Config, conf *quic.Config) (*quic.Conn, error) {
		raddr, err := net.ResolveUDPAddr("udp", addr)
		if err != nil {
			return nil, err
		}
		return transport.DialEarly(t.Context(), raddr, tlsConf, conf)
	})
	const streams = 5
	for range streams {
		openStreamWith(t, client, url, nil).waitOpen()
	}
	before := quicIdleEnds(t, adminPort)
	udp.Close() // the client is gone: no CONNECTION_CLOSE, no more packets

	proc.eventually(fmt.Sprintf("%d streams ended by QUIC's idle timeout", streams), func() bool {
		return quicIdleEnds(t, adminPort)-before >= streams
	})
}

var quicIdleMetric = regexp.MustCompile(`(?m)^caddy_sse_quic_idle_timeouts_total\{stream="H3"\} (\d+)$`)

func quicIdleEnds(t *testing.T, adminPort int) int {
	t.Helper()
	resp, err := http.Get(fmt.Sprintf("http://localhost:%d/metrics", adminPort))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	m := quicIdleMetric.FindSubmatch(b)
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(string(m[1]))
	return n
}

// heartbeat above 25 s (QUIC's 30 s idle timeout minus a margin) is a warning, not an error: it is fine on plain
// HTTP and HTTP/2 sites.
func TestHeartbeatOverQUICWarns(t *testing.T) {
	cases := []struct {
		heartbeat time.Duration
		warn      bool
	}{
		{15 * time.Second, false},
		{25 * time.Second, false},
		{26 * time.Second, true},
		{60 * time.Second, true},
	}
	for _, tc := range cases {
		t.Run(tc.heartbeat.String(), func(t *testing.T) {
			core, logs := observer.New(zapcore.WarnLevel)
			h := &Handler{Heartbeat: caddy.Duration(tc.heartbeat), logger: zap.New(core)}
			h.warnHeartbeatOverQUIC()
			if got := logs.FilterMessageSnippet("HTTP/3").Len() == 1; got != tc.warn {
				t.Fatalf("warned %v, want %v: %v", got, tc.warn, logs.All())
			}
		})
	}
}
