package caddysse

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// deadlineModes: by default Caddy's idle-timeout writer carries write_timeout; with write_idle_timeout disabled
// the handler sets and clears its own deadlines. Slow clients must be cut and idle HTTP/2 streams kept in both.
var deadlineModes = []struct{ name, serverOptions string }{
	{"caddy idle writer", ""},
	{"handler deadlines", "timeouts {\n\t\t\twrite_idle -1s\n\t\t}"},
}

func TestThroughEncodeAndHTTP2(t *testing.T) {
	for _, mode := range deadlineModes {
		t.Run(mode.name, func(t *testing.T) { testThroughEncodeAndHTTP2(t, mode.serverOptions) })
	}
}

func testThroughEncodeAndHTTP2(t *testing.T, serverOptions string) {
	loadSiteWith(t, serverOptions, `encode gzip
	sse /encode encode.> {
		stream ENCODE
		write_timeout 200ms
	}`)
	js := embeddedJS(t)

	var h2only http.Protocols
	h2only.SetUnencryptedHTTP2(true)
	h2c := &http.Client{Transport: &http.Transport{Protocols: &h2only}}
	cases := []struct {
		name   string
		client *http.Client
		proto  int
	}{
		{"HTTP/1.1 gzip", http.DefaultClient, 1},
		{"HTTP/2 cleartext gzip", h2c, 2},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// Both transports ask for gzip themselves and decompress as they read.
			s := openStreamWith(t, tc.client, baseURL+"/encode", nil)
			if s.resp.ProtoMajor != tc.proto {
				t.Fatalf("protocol %s, want major %d", s.resp.Proto, tc.proto)
			}
			if !s.resp.Uncompressed {
				t.Fatalf("response was not gzip-encoded: encode must wrap the stream")
			}
			waitSubscribed(t, "ENCODE", 1)
			// Each event must arrive on its own: the encoder is flushed per event.
			for n := range 3 {
				data := fmt.Sprintf("case %d event %d", i, n)
				publish(t, js, "encode.a", "", data)
				s.expectData(data)
			}
			// Idle for longer than write_timeout: on HTTP/2 a write deadline left armed would reset the stream
			// even with no write in flight, so the handler must clear it after each flush.
			time.Sleep(3 * 200 * time.Millisecond)
			data := fmt.Sprintf("case %d after idle", i)
			publish(t, js, "encode.a", "", data)
			s.expectData(data)
			s.close()
			eventually(t, "stream released", func() bool { return feedSubscriptions(t, "ENCODE") == 0 })
		})
	}
}

// TestSlowClientIsCutOthersUnaffected: a client that stops reading is disconnected; a healthy one gets everything.
func TestSlowClientIsCutOthersUnaffected(t *testing.T) {
	for _, mode := range deadlineModes {
		t.Run(mode.name, func(t *testing.T) { testSlowClientIsCut(t, mode.serverOptions) })
	}
}

func testSlowClientIsCut(t *testing.T, serverOptions string) {
	loadSiteWith(t, serverOptions, `sse /slowclient slowclient.> {
		stream SLOWCLIENT
		buffer 4
		write_timeout 500ms
	}`)
	js := embeddedJS(t)

	slow, err := net.Dial("tcp", httpHost)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	fmt.Fprintf(slow, "GET /slowclient HTTP/1.1\r\nHost: %s\r\n\r\n", httpHost)
	line, err := bufio.NewReader(io.LimitReader(slow, 64)).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "HTTP/1.1 200") {
		t.Fatalf("slow client: %q %v", line, err)
	}
	healthy := openLive(t, "/slowclient", "SLOWCLIENT", 2)

	const events, size = 100, 256 << 10
	payload := strings.Repeat("x", size)
	for i := range events {
		publish(t, js, "slowclient.a", "", fmt.Sprintf("%d %s", i, payload))
		ev := healthy.next() // the healthy client keeps up while the slow one stalls
		if !strings.HasPrefix(ev.Data, fmt.Sprintf("%d ", i)) {
			t.Fatalf("healthy client: event %d has %.10q", i, ev.Data)
		}
	}
	// The server dropped the slow client: only the healthy client is still subscribed. (Reading the slow socket
	// to its end is no proof: the kernel's zero-window probing can stall the rest of its data for minutes.)
	eventually(t, "slow client dropped", func() bool { return feedSubscriptions(t, "SLOWCLIENT") == 1 })
}

// TestHeartbeatAfterSilence: the route's heartbeat reaches its sessions (that heartbeats go out only when idle
// is tested in package session).
func TestHeartbeatAfterSilence(t *testing.T) {
	loadSite(t, `sse /heartbeat heartbeat.> {
		stream HEARTBEAT
		heartbeat 300ms
	}`)
	js := embeddedJS(t)
	s := openLive(t, "/heartbeat", "HEARTBEAT", 1)
	publish(t, js, "heartbeat.a", "", "1")
	s.expectData("1")
	eventually(t, "a heartbeat after 300 ms of silence", func() bool {
		for {
			select {
			case line := <-s.raw:
				if line == ": " {
					return true
				}
			default:
				return false
			}
		}
	})
}
