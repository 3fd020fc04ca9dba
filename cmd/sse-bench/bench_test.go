package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddy-sse/caddy-sse/internal/sseclient"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The tool re-executes itself for worker processes and the bare server; under
// `go test` that binary is the test binary, which must then act as the tool.
func TestMain(m *testing.M) {
	if os.Getenv("SSE_BENCH_CHILD") == "1" {
		os.Exit(realMain(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// startNATS runs an embedded JetStream server on a loopback port with a
// memory stream capturing bench.>.
func startNATS(t *testing.T) string {
	t.Helper()
	s, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(),
		JetStreamMaxMemory: 256 << 20, JetStreamMaxStore: 256 << 20, NoSigs: true, NoLog: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	t.Cleanup(s.Shutdown)
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	nc, err := nats.Connect(s.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{
		Name: "BENCH", Subjects: []string{"bench.>"}, Storage: jetstream.MemoryStorage,
	}); err != nil {
		t.Fatal(err)
	}
	return s.ClientURL()
}

// runTool runs the tool in this process and decodes its one JSON line.
func runTool(t *testing.T, args ...string) output {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := realMain(args, &stdout, &stderr)
	lines := strings.Split(strings.TrimRight(stdout.String(), "\n"), "\n")
	if len(lines) != 1 {
		t.Fatalf("want exactly one stdout line, got %d:\n%s\nstderr:\n%s", len(lines), stdout.String(), stderr.String())
	}
	var out output
	if err := json.Unmarshal([]byte(lines[0]), &out); err != nil {
		t.Fatalf("stdout is not JSON: %v\n%s", err, lines[0])
	}
	if code != 0 || !out.OK {
		t.Fatalf("exit %d, ok=%v, error=%q, violations=%v\n%s\nstderr:\n%s", code, out.OK, out.Error, out.Violations, lines[0], stderr.String())
	}
	t.Logf("%s", lines[0])
	return out
}

func TestScenariosAgainstBare(t *testing.T) {
	if testing.Short() {
		t.Skip("starts servers and processes")
	}
	natsURL := startNATS(t)
	common := func(scenario string, extra ...string) []string {
		return append([]string{scenario, "-target", "bare", "-nats", natsURL, "-subject", "bench." + scenario,
			"-c", "50", "-timeout", "60s", "-settle", "100ms", "-drain", "10s"}, extra...)
	}

	t.Run("idle", func(t *testing.T) {
		out := runTool(t, common("idle", "-duration", "200ms")...)
		r := out.Results["bare"]
		if r.Connected != 50 || r.Idle == nil || r.ConnectMS.N != 50 {
			t.Fatalf("connected %d, idle %+v, connect samples %d", r.Connected, r.Idle, r.ConnectMS.N)
		}
		if !r.Server.Sampled || r.Idle.RSSKiBAfter == 0 {
			t.Fatalf("server not sampled: %+v", r.Server)
		}
	})

	t.Run("fanout", func(t *testing.T) {
		out := runTool(t, common("fanout", "-rate", "100", "-duration", "500ms")...)
		f := out.Results["bare"].Fanout
		if f.Published != 50 || f.Deliveries != 50*50 || f.Missing+f.Duplicates+f.OutOfOrder != 0 {
			t.Fatalf("fanout %+v", f)
		}
		if f.LatencyMS.N != 2500 || f.LatencyMS.P50 <= 0 {
			t.Fatalf("latency %+v", f.LatencyMS)
		}
	})

	t.Run("fanout-workers", func(t *testing.T) {
		// 50 clients at 30 per process: two worker processes.
		out := runTool(t, common("fanout", "-rate", "40", "-duration", "500ms", "-per-proc", "30")...)
		r := out.Results["bare"]
		if r.Workers != 2 || r.Fanout.Deliveries != 20*50 || r.Fanout.Missing != 0 {
			t.Fatalf("workers %d, fanout %+v", r.Workers, r.Fanout)
		}
	})

	t.Run("both", func(t *testing.T) {
		// A second bare server stands in for the server under test, so the
		// both-target path and the ours/bare ratios are exercised.
		o := &options{natsURL: natsURL, subject: "bench.both", bareQueue: 256, bareWriteTimeout: 10 * time.Second}
		other, err := spawnBare(o, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		defer other.stop()
		args := append(common("fanout", "-rate", "20", "-duration", "500ms", "-c", "20"),
			"-target", "both", "-url", "http://"+other.addr+"/events?x=1", "-pid", fmt.Sprint(other.pid), "-subject", "bench.both")
		out := runTool(t, args...)
		if out.Results["caddy"].Fanout.Deliveries != 10*20 || out.Results["bare"].Fanout.Deliveries != 10*20 {
			t.Fatalf("deliveries: caddy %d bare %d", out.Results["caddy"].Fanout.Deliveries, out.Results["bare"].Fanout.Deliveries)
		}
		if out.Ratios["fanout.latency_ms.p50"] <= 0 {
			t.Fatalf("ratios %v", out.Ratios)
		}
	})

	t.Run("storm", func(t *testing.T) {
		out := runTool(t, common("storm", "-missed", "200", "-rate", "40", "-duration", "500ms")...)
		s := out.Results["bare"].Storm
		if s.Lost != 0 || s.Duplicates != 0 || s.OutOfOrder != 0 || s.NotCaughtUp != 0 || s.CatchUpMS.N != 50 {
			t.Fatalf("storm %+v", s)
		}
		if s.Published != int64(s.Warmup+s.Missed+20) {
			t.Fatalf("published %d", s.Published)
		}
	})

	t.Run("storm-rate-limited", func(t *testing.T) {
		// The bare server admits 10 new streams per second (a burst of 10) and turns the others away with
		// a retry of 2-6 s: clients wait what they were told, come back with their Last-Event-ID and lose
		// nothing.
		out := runTool(t, common("storm", "-c", "30", "-missed", "100", "-rate", "20", "-duration", "500ms",
			"-bare-max-connect-rate", "10", "-bare-retry", "1s")...)
		s := out.Results["bare"].Storm
		if s.Lost != 0 || s.Duplicates != 0 || s.OutOfOrder != 0 || s.NotCaughtUp != 0 || s.CatchUpMS.N != 30 {
			t.Fatalf("storm %+v", s)
		}
		if s.TurnAways < 1 || s.TurnedClients < 1 || s.TurnAwayBad != 0 || s.TurnAwaysConnect < 1 {
			t.Fatalf("turn-aways: %+v", s)
		}
		// Each turned-away client waited at least the 2 s it was told before its stream was admitted.
		if r := s.TurnAwayRetryMS; r.P50 < 2000 || r.Max > 6100 || s.AllCaughtUpS < 2 || s.AdmittedMS.Max < 2000 {
			t.Fatalf("retry %+v, all caught up %gs, admitted %+v", r, s.AllCaughtUpS, s.AdmittedMS)
		}
		if s.TurnedPerClient.N != 30 || int64(s.TurnedPerClient.Mean*30+0.5) != s.TurnAways {
			t.Fatalf("per client %+v, total %d", s.TurnedPerClient, s.TurnAways)
		}
	})

	t.Run("slow", func(t *testing.T) {
		// 4 KiB events fill the stalled sockets (small MSS and receive
		// buffer; the server's send buffer autotunes to somewhere between
		// 70 KiB and a few MiB) within seconds.
		args := common("slow", "-c", "10", "-slow-percent", "20", "-rate", "100", "-payload", "4096",
			"-duration", "500ms", "-cut-wait", "30s", "-bare-queue", "16", "-bare-write-timeout", "500ms")
		s := runTool(t, args...).Results["bare"].Slow
		if s.Stalled != 2 || s.Cut != 2 || s.Healthy != 8 || s.HealthyMissing != 0 || s.HealthyDisconnects != 0 {
			t.Fatalf("slow %+v", s)
		}
		if s.LatencyDuringMS.N == 0 || s.CutS.N != 2 {
			t.Fatalf("slow %+v", s)
		}
		// With sock_diag (Linux), each cut is split into filling and blocked time.
		if s.FullS.N == 2 && (s.BlockedS.Max > 0.5+cutPollSlackS || s.SendQKiB.P50 <= 0) {
			t.Fatalf("slow %+v", s)
		}
	})
}

func TestRefusesNonLoopback(t *testing.T) {
	for _, args := range [][]string{
		{"fanout", "-url", "http://10.1.2.3:8080/"},
		{"fanout", "-url", "http://example.com/"},
		{"fanout", "-target", "bare", "-nats", "nats://192.168.1.1:4222"},
		{"idle", "-url", "https://127.0.0.1/"},
	} {
		var stdout, stderr bytes.Buffer
		if code := realMain(args, &stdout, &stderr); code != 2 {
			t.Errorf("%v: exit %d, want 2 (usage)", args, code)
		}
	}
	if code := realMain([]string{"bare", "-listen", "0.0.0.0:0"}, io.Discard, io.Discard); code != 2 {
		t.Errorf("bare on 0.0.0.0: exit %d, want 2", code)
	}
}

type recorded struct{ id, typ, data string }

type recorder struct{ events []recorded }

func (r *recorder) OnEvent(id, typ, data []byte) {
	r.events = append(r.events, recorded{string(id), string(typ), string(data)})
}

func TestSeqTracker(t *testing.T) {
	tests := []struct {
		name               string
		in                 []int64
		expected           int64
		missing, dup, late int64
		contiguous         int64
	}{
		{"in order", []int64{1, 2, 3}, 3, 0, 0, 0, 3},
		{"tail missing", []int64{1, 2}, 4, 2, 0, 0, 2},
		{"gap", []int64{1, 4, 5}, 5, 2, 0, 0, 1},
		{"gap filled late", []int64{1, 3, 2, 4}, 4, 0, 0, 1, 4},
		{"middle of gap", []int64{1, 5, 3}, 5, 2, 0, 1, 1},
		{"duplicate", []int64{1, 2, 2, 1, 3}, 3, 0, 2, 0, 3},
		{"duplicate of late", []int64{2, 1, 1}, 2, 0, 1, 1, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var s seqTracker
			var dup, late int64
			for _, n := range tc.in {
				switch s.observe(n) {
				case seqDup:
					dup++
				case seqLate:
					late++
				}
			}
			if m := missing(s.max, s.gap, tc.expected); m != tc.missing || dup != tc.dup || late != tc.late || s.contiguous() != tc.contiguous {
				t.Fatalf("missing %d dup %d late %d contiguous %d", m, dup, late, s.contiguous())
			}
		})
	}
}

func TestHistogram(t *testing.T) {
	var h histogram
	for v := int64(1); v <= 100000; v++ {
		h.record(v * 1000)
	}
	s := h.snapshot()
	for _, q := range []float64{0.5, 0.99, 0.999} {
		want := q * 1e8
		if got := float64(s.quantile(q)); got < want*0.96 || got > want*1.04 {
			t.Errorf("q%.3f = %.0f, want about %.0f", q, got, want)
		}
	}
	if s.Max != 1e8 || s.N != 100000 {
		t.Errorf("max %d n %d", s.Max, s.N)
	}
	if m := s.merge(s); m.N != 200000 || m.quantile(0.5) != s.quantile(0.5) {
		t.Errorf("merge: n %d", m.N)
	}
	for i := 0; i < histBuckets; i++ {
		lo, hi := histBounds(i)
		if histIndex(lo) != i || histIndex(hi) != i {
			t.Fatalf("bucket %d bounds [%d,%d] map to %d,%d", i, lo, hi, histIndex(lo), histIndex(hi))
		}
	}
}

func TestBareFrame(t *testing.T) {
	got := string(appendBareFrame(nil, "e", 7, []byte("a\r\nb\rc\nd")))
	if want := "id: e-7\ndata: a\ndata: b\ndata: c\ndata: d\n\n"; got != want {
		t.Fatalf("%q, want %q", got, want)
	}
	rec := &recorder{}
	sseclient.NewParser(rec).Feed([]byte(got))
	if len(rec.events) != 1 || rec.events[0].data != "a\nb\nc\nd" || rec.events[0].id != "e-7" {
		t.Fatalf("parsed %q", rec.events)
	}
}

func TestProcAddr(t *testing.T) {
	k, ok := parseProcAddr([]byte("0200007F:1F90"))
	want := keyOf(&netTCPAddr127002)
	if !ok || k != want {
		t.Fatalf("got %v ok=%v, want %v", k, ok, want)
	}
	k6, ok := parseProcAddr([]byte("0000000000000000FFFF00000200007F:1F90"))
	if !ok || k6 != want {
		t.Fatalf("v4-mapped: got %v, want %v", k6, want)
	}
}

var netTCPAddr127002 = net.TCPAddr{IP: net.IPv4(127, 0, 0, 2), Port: 8080}

func TestTable(t *testing.T) {
	dir := t.TempDir()
	res := func(p99, cpu float64) *targetResult {
		return &targetResult{Clients: 10, Connected: 10, Fanout: &fanoutResult{
			Deliveries: 100, ExpectedDeliveries: 100, LatencyMS: dist{P99: p99}, ServerCPUUsPerDelivery: cpu}}
	}
	for name, rate := range map[string]float64{"fanout": 10, "sweep-20": 20, "sweep-40": 40} {
		o := &output{Scenario: "fanout", Target: "both", Params: map[string]any{"c": 10, "rate": rate, "duration_s": 1},
			Results: map[string]*targetResult{"bare": res(10, 10), "caddy": res(10+rate, 10.5)}}
		o.finish()
		line, _ := json.Marshal(o)
		if err := os.WriteFile(filepath.Join(dir, name+".json"), append(line, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var out, errb strings.Builder
	files := []string{filepath.Join(dir, "fanout.json"), filepath.Join(dir, "sweep-40.json"), filepath.Join(dir, "sweep-20.json")}
	if code := realMain(append([]string{"table"}, files...), &out, &errb); code != 0 {
		t.Fatalf("table: %d %s", code, errb.String())
	}
	md := out.String()
	for _, want := range []string{
		"| **fanout** 10 clients × 10 events/s × 1s | missing / duplicate / out of order | 0 / 0 / 0 | 0 / 0 / 0 |  | 0 | met |",
		"| server CPU µs per delivery | 10.0 | 10.5 | 1.05 | ≤ 1.1× bare | met |",
		"p99 ≤ 1.1× bare | **missed** |",
		"| 20 events/s | p99 10.0 ms",
		"| highest rate with 0 lost and p99 < 100 ms | **40/s** | **40/s** |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("table lacks %q:\n%s", want, md)
		}
	}
	if strings.Index(md, "20 events/s") > strings.Index(md, "40 events/s") {
		t.Errorf("sweep not sorted by rate:\n%s", md)
	}
}

func TestTurnedAwayResponse(t *testing.T) {
	chunk := "retry: 3712\n: over capacity, retry later\n\n"
	raw := "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nRetry-After: 4\r\nTransfer-Encoding: chunked\r\n\r\n" +
		fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", len(chunk), chunk)
	b, err := sseclient.ReadResponse(bufio.NewReader(strings.NewReader(raw)), "Retry-After")
	if err != nil || retryAfter(&b) != 4 {
		t.Fatalf("Retry-After %d, err %v", retryAfter(&b), err)
	}
	h := &recorder{}
	p := sseclient.NewParser(h)
	p.Reset()
	for {
		piece, err := b.Next()
		p.Feed(piece)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if p.StreamRetry() != 3712 || len(h.events) != 0 {
		t.Fatalf("stream retry %d, events %d", p.StreamRetry(), len(h.events))
	}
	p.Reset()
	if p.StreamRetry() != -1 || p.Retry() != 3712 {
		t.Fatalf("after reset: stream retry %d, retry %d", p.StreamRetry(), p.Retry())
	}

	plain := "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n"
	if b, err := sseclient.ReadResponse(bufio.NewReader(strings.NewReader(plain)), "Retry-After"); err != nil || retryAfter(&b) != -1 {
		t.Fatalf("no Retry-After: %d, %v", retryAfter(&b), err)
	}
}

func TestParseMetrics(t *testing.T) {
	text := `# HELP caddy_sse_replays_total Reconnects that replayed missed events.
# TYPE caddy_sse_replays_total counter
caddy_sse_replays_total{source="memory",stream="BENCH"} 9000
caddy_sse_replays_total{source="jetstream",stream="BENCH"} 12
caddy_sse_turned_away_total{reason="max_connect_rate"} 8123
caddy_sse_connects_total{route="bench.>",stream="BENCH"} 100
caddy_sse_connects_total{route="other.>",stream="BENCH"} 5
caddy_sse_connections{route="bench.>",stream="BENCH"} 105
go_goroutines 42
`
	m, err := parseMetrics(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	want := scrapedMetrics{"replays.memory": 9000, "replays.jetstream": 12, "turned_away.max_connect_rate": 8123, "connects": 105}
	if fmt.Sprint(m) != fmt.Sprint(want) {
		t.Fatalf("got %v, want %v", m, want)
	}
	d := m.delta(scrapedMetrics{"replays.memory": 1000, "connects": 105})
	if fmt.Sprint(d) != fmt.Sprint(map[string]float64{"replays.memory": 8000, "replays.jetstream": 12, "turned_away.max_connect_rate": 8123}) {
		t.Fatalf("delta %v", d)
	}
}
