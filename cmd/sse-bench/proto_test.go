package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// Every protocol against the bare server: a short idle hold and a short fanout, with the same correctness
// checks as h1 (runTool fails on anything lost, duplicated or out of order), the protocol each response came
// back over (a client refuses any other, so a fallback shows as clients that never connected) and the number
// of connections the streams shared.
func TestProtocolsAgainstBare(t *testing.T) {
	if testing.Short() {
		t.Skip("starts servers and processes")
	}
	natsURL := startNATS(t)
	tests := []struct {
		proto   string
		streams int
		dials   int64 // connections for 20 clients
	}{
		{protoH1TLS, 1, 20},
		{protoH2C, 1, 20},
		{protoH2C, 10, 2},
		{protoH2, 1, 20},
		{protoH2, 10, 2},
		{protoH3, 1, 20},
		{protoH3, 10, 2},
	}
	for _, tc := range tests {
		name := fmt.Sprintf("%s-%d", tc.proto, tc.streams)
		args := func(scenario string, extra ...string) []string {
			return append([]string{scenario, "-target", "bare", "-proto", tc.proto, "-h2-streams", fmt.Sprint(tc.streams),
				"-nats", natsURL, "-subject", "bench.proto." + name, "-c", "20", "-timeout", "60s",
				"-settle", "100ms", "-drain", "10s"}, extra...)
		}
		t.Run(name+"/idle", func(t *testing.T) {
			r := runTool(t, args("idle", "-duration", "200ms")...).Results["bare"]
			if r.Connected != 20 || r.Idle == nil || r.Dials != tc.dials || r.Idle.Disconnects != 0 {
				t.Fatalf("connected %d, dials %d (want %d), idle %+v", r.Connected, r.Dials, tc.dials, r.Idle)
			}
			if !strings.HasPrefix(r.Proto, tc.proto) {
				t.Fatalf("proto %q", r.Proto)
			}
		})
		t.Run(name+"/fanout", func(t *testing.T) {
			r := runTool(t, args("fanout", "-rate", "100", "-duration", "500ms")...).Results["bare"]
			f := r.Fanout
			if f.Published != 50 || f.Deliveries != 50*20 || f.LatencyMS.N != 50*20 || f.Disconnects != 0 || r.Dials != tc.dials {
				t.Fatalf("dials %d, fanout %+v", r.Dials, f)
			}
		})
	}
}

// A client never falls back to another protocol: h2c spoken to a TLS server, or h3 to nothing on UDP, ends
// with clients that never connected (exit 3, a broken promise) rather than a figure for the wrong protocol.
func TestProtocolMismatchFails(t *testing.T) {
	if testing.Short() {
		t.Skip("starts servers and processes")
	}
	natsURL := startNATS(t)
	o := &options{natsURL: natsURL, subject: "bench.mismatch", bareQueue: 256, bareWriteTimeout: 10 * time.Second, proto: protoH2}
	tlsServer, err := spawnBare(o, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	defer tlsServer.stop()
	for _, tc := range []struct{ proto, url string }{
		{protoH2C, "http://" + tlsServer.addr + "/"},
		{protoH1, "http://" + tlsServer.addr + "/"},
		{protoH3, "https://" + tlsServer.addr + "/"}, // the same port number on UDP: nobody there
	} {
		t.Run(tc.proto, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := realMain([]string{"idle", "-target", "caddy", "-proto", tc.proto, "-url", tc.url, "-nats", natsURL,
				"-subject", "bench.mismatch", "-c", "3", "-duration", "100ms", "-connect-wait", "3s", "-dial-timeout", "1s",
				"-timeout", "30s"}, &stdout, &stderr)
			if code != 3 || !strings.Contains(stdout.String(), "never connected") {
				t.Fatalf("exit %d, want 3 with clients that never connected:\n%s\n%s", code, stdout.String(), stderr.String())
			}
		})
	}
}

// storm and slow need each client's own TCP socket: every other protocol is refused before anything starts,
// as are streams per connection without a multiplexed protocol and a URL of the wrong scheme.
func TestProtocolUsage(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"storm", "-proto", "h2"}, "storm runs over -proto h1 only"},
		{[]string{"slow", "-proto", "h3"}, "slow runs over -proto h1 only"},
		{[]string{"storm", "-proto", "h1tls"}, "storm runs over -proto h1 only"},
		{[]string{"slow", "-proto", "h2c"}, "slow runs over -proto h1 only"},
		{[]string{"idle", "-proto", "h4"}, "-proto must be one of"},
		{[]string{"idle", "-proto", "h1tls", "-h2-streams", "10"}, "-h2-streams 10 needs"},
		{[]string{"idle", "-proto", "h2", "-h2-streams", "0"}, "-h2-streams must be at least 1"},
		{[]string{"idle", "-proto", "h2", "-url", "http://127.0.0.1:1/"}, "needs https://"},
		{[]string{"idle", "-proto", "h2c", "-url", "https://127.0.0.1:1/"}, "needs http://"},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			target := "bare"
			if slices.Contains(tc.args, "-url") {
				target = "caddy"
			}
			args := append([]string{"-target", target}, tc.args...)
			if code := realMain(args, &stdout, &stderr); code != 2 || !strings.Contains(stderr.String(), tc.want) {
				t.Fatalf("exit %d, want 2 with %q; stderr:\n%s", code, tc.want, stderr.String())
			}
		})
	}
	// Idle and fanout are accepted over every protocol.
	for _, proto := range protocols {
		for _, sc := range []string{"idle", "fanout"} {
			if err := validateProto(proto, sc, 1); err != nil {
				t.Errorf("%s over %s: %v", sc, proto, err)
			}
		}
	}
}

// prototable puts each protocol on a row and repeated runs of a cell in a range.
func TestProtoTable(t *testing.T) {
	dir := t.TempDir()
	write := func(name, scenario string, proto string, streams int, bare, ours *targetResult) string {
		o := &output{Scenario: scenario, Target: "both", Results: map[string]*targetResult{"bare": bare, "caddy": ours},
			Params: map[string]any{"c": 2000, "rate": 50, "proto": proto, "h2_streams": streams}}
		o.finish()
		line, _ := json.Marshal(o)
		path := filepath.Join(dir, name+".json")
		if err := os.WriteFile(path, append(line, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	idle := func(kib float64) *targetResult {
		return &targetResult{Clients: 1, Connected: 1, Idle: &idleResult{RSSKiBPerConn: kib}}
	}
	fanout := func(cpu, p99 float64) *targetResult {
		return &targetResult{Clients: 1, Connected: 1, Fanout: &fanoutResult{ServerCPUUsPerDelivery: cpu, LatencyMS: dist{P99: p99}}}
	}
	files := []string{
		write("a", "idle", "h2", 100, idle(17), idle(27)),
		write("b", "idle", "h2", 100, idle(16), idle(28)),
		write("c", "fanout", "h2", 100, fanout(12, 50), fanout(13.2, 80)),
		write("d", "idle", "", 0, idle(30), idle(39)),
	}
	var out, errb strings.Builder
	if code := realMain(append([]string{"prototable"}, files...), &out, &errb); code != 0 {
		t.Fatalf("prototable: %d %s", code, errb.String())
	}
	for _, want := range []string{
		"| h2, 100 per connection | 16.0–17.0 / 27.0–28.0 (1.59–1.75×) | 12.0 / 13.2 (1.10×) | 50 / 80 (1.60×) | 0 / 0 / 0 |",
		"| h1 | 30.0 / 39.0 (1.30×) | – | – | 0 / 0 / 0 |",
		"| protocol | idle 2,000: KiB RSS per stream | fanout 2,000 × 50/s: CPU µs per delivery | fanout 2,000 × 50/s: p99 ms |",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}
}
