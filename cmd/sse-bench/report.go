package main

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"
)

// output is the one JSON line a scenario run prints.
type output struct {
	Scenario   string                   `json:"scenario"`
	Target     string                   `json:"target"`
	OK         bool                     `json:"ok"`
	Error      string                   `json:"error,omitempty"`
	Violations []string                 `json:"violations"`
	Params     map[string]any           `json:"params"`
	Results    map[string]*targetResult `json:"results"`
	Ratios     map[string]float64       `json:"ratios,omitempty"` // caddy value / bare value
}

type targetResult struct {
	URL             string        `json:"url"`
	PID             int           `json:"pid,omitempty"`
	Workers         int           `json:"workers"`
	Clients         int           `json:"clients"`
	Connected       int           `json:"connected"`
	ConnectFailures int64         `json:"connect_failures"`
	Proto           string        `json:"proto"`
	Dials           int64         `json:"dials"` // connections dialed, failed ones left out
	ConnectMS       dist          `json:"connect_ms"`
	Publish         publishStats  `json:"publish"`
	Server          serverUsage   `json:"server"`
	ToolCPUS        float64       `json:"tool_cpu_s"`
	Idle            *idleResult   `json:"idle,omitempty"`
	Fanout          *fanoutResult `json:"fanout,omitempty"`
	Storm           *stormResult  `json:"storm,omitempty"`
	Slow            *slowResult   `json:"slow,omitempty"`
	Errors          []string      `json:"errors,omitempty"`
}

type publishStats struct {
	Published int64 `json:"published"`
	Acked     int64 `json:"acked"`
	Errors    int64 `json:"errors"`
	Lost      int64 `json:"lost"`
}

type serverUsage struct {
	Sampled     bool  `json:"sampled"`
	RSSKiBStart int64 `json:"rss_kib_start"`
	RSSKiBEnd   int64 `json:"rss_kib_end"`
	RSSKiBMax   int64 `json:"rss_kib_max"`
}

// dist summarises a histogram, in the unit named by the field holding it.
type dist struct {
	P50  float64 `json:"p50"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p999"`
	Max  float64 `json:"max"`
	Mean float64 `json:"mean"`
	N    uint64  `json:"n"`
}

func distIn(h histSnap, unit time.Duration) dist {
	f := func(v float64) float64 { return round3(v / float64(unit)) }
	return dist{
		P50: f(float64(h.quantile(0.50))), P99: f(float64(h.quantile(0.99))),
		P999: f(float64(h.quantile(0.999))), Max: f(float64(h.Max)), Mean: f(h.mean()), N: h.N,
	}
}

func msDist(h histSnap) dist { return distIn(h, time.Millisecond) }
func sDist(h histSnap) dist  { return distIn(h, time.Second) }

func round3(v float64) float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0
	}
	return math.Round(v*1000) / 1000
}

func seconds(d time.Duration) float64 { return round3(d.Seconds()) }

func perUnit(total time.Duration, n int64) float64 {
	if n <= 0 {
		return 0
	}
	return round3(float64(total.Microseconds()) / float64(n))
}

func pct(cpu, wall time.Duration) float64 {
	if wall <= 0 {
		return 0
	}
	return round3(100 * cpu.Seconds() / wall.Seconds())
}

type idleResult struct {
	HoldS            float64 `json:"hold_s"`
	RSSKiBBefore     int64   `json:"rss_kib_before"`
	RSSKiBAfter      int64   `json:"rss_kib_after"`
	RSSKiBPerConn    float64 `json:"rss_kib_per_conn"`
	ServerCPUPctHold float64 `json:"server_cpu_pct_hold"`
	ToolCPUPctHold   float64 `json:"tool_cpu_pct_hold"`
	Disconnects      int64   `json:"disconnects"`
}

type fanoutResult struct {
	Rate                   float64 `json:"rate"`
	DurationS              float64 `json:"duration_s"`
	Published              int64   `json:"published"`
	Deliveries             int64   `json:"deliveries"`
	ExpectedDeliveries     int64   `json:"expected_deliveries"`
	WindowS                float64 `json:"window_s"`
	DrainS                 float64 `json:"drain_s"`
	DeliveriesPerS         float64 `json:"deliveries_per_s"`
	LatencyMS              dist    `json:"latency_ms"`
	ServerCPUS             float64 `json:"server_cpu_s"`
	ServerCPUUsPerDelivery float64 `json:"server_cpu_us_per_delivery"`
	ServerCPUPct           float64 `json:"server_cpu_pct"`
	ToolCPUS               float64 `json:"tool_cpu_s"`
	ToolCPUPct             float64 `json:"tool_cpu_pct"`
	Missing                int64   `json:"missing"`
	Duplicates             int64   `json:"duplicates"`
	OutOfOrder             int64   `json:"out_of_order"`
	Resets                 int64   `json:"resets"`
	Disconnects            int64   `json:"disconnects"`
	Reconnects             int64   `json:"reconnects"`
	Foreign                int64   `json:"foreign"`
}

type stormResult struct {
	Warmup       int     `json:"warmup"`
	Missed       int     `json:"missed"`
	LiveRate     float64 `json:"live_rate"`
	Published    int64   `json:"published"`
	DropS        float64 `json:"drop_s"`
	CatchUpMS    dist    `json:"catch_up_ms"`
	AllCaughtUpS float64 `json:"all_caught_up_s"`
	NotCaughtUp  int     `json:"not_caught_up"`
	Lost         int64   `json:"lost"`
	// Holes are the lost events below a client's highest one received (skipped); the rest of lost are
	// events a client had not reached yet when the run ended (only when not every client caught up).
	Holes           int64    `json:"holes"`
	HoleSamples     []string `json:"hole_samples,omitempty"`
	Duplicates      int64    `json:"duplicates"`
	OutOfOrder      int64    `json:"out_of_order"`
	Resets          int64    `json:"resets"`
	MultiAttempt    int      `json:"multi_attempt"`
	Disconnects     int64    `json:"disconnects"` // streams the server ended unasked during the storm (then resumed)
	Attempts        int64    `json:"attempts"`
	ReconnectMS     dist     `json:"reconnect_ms"`
	ConsumersBefore int      `json:"consumers_before"`
	ConsumersMax    int      `json:"consumers_max"`
	ConsumersAfter  int      `json:"consumers_after"`
	// ConsumersCreated counts JetStream's consumer-created advisories for the stream from the reconnect to the
	// end: every consumer, however short-lived (the max above is a 100 ms poll).
	ConsumersCreated int64   `json:"consumers_created"`
	ServerCPUS       float64 `json:"server_cpu_s"`
	ToolCPUS         float64 `json:"tool_cpu_s"`
	// Turned-away answers (a connect-rate cap): during the storm round, during the initial connect, clients
	// turned away at least once in the round, turn-aways per client (a count), answers that had no retry
	// field, did not end at once or carried events, how long an answer took to end, the retry it asked for,
	// and the time from the reconnect to each client's admitted stream.
	TurnAways        int64 `json:"turn_aways"`
	TurnAwaysConnect int64 `json:"turn_aways_connect"`
	TurnedClients    int   `json:"turned_clients"`
	TurnedPerClient  dist  `json:"turned_per_client"`
	TurnAwayBad      int64 `json:"turn_away_bad"`
	TurnAwayEndMS    dist  `json:"turn_away_end_ms"`
	TurnAwayRetryMS  dist  `json:"turn_away_retry_ms"`
	AdmittedMS       dist  `json:"admitted_ms"`
	// ServerMetrics: how the server's own counters moved over the storm (-metrics): replays.memory,
	// replays.jetstream, turned_away.<reason>, resets.<reason>, connects, slow_client_disconnects.
	ServerMetrics map[string]float64 `json:"server_metrics,omitempty"`
}

type slowResult struct {
	SlowPercent         float64 `json:"slow_percent"`
	Stalled             int     `json:"stalled"`
	Cut                 int     `json:"cut"`
	NotCut              int     `json:"not_cut"`
	CutS                dist    `json:"cut_s"`
	FullS               dist    `json:"full_s"`    // stall to the server's send queue full (last growth seen)
	BlockedS            dist    `json:"blocked_s"` // send queue full to cut: what the write deadline governs
	SendQKiB            dist    `json:"server_sendq_kib"`
	Healthy             int     `json:"healthy"`
	LatencyBeforeMS     dist    `json:"healthy_latency_before_ms"`
	LatencyDuringMS     dist    `json:"healthy_latency_during_ms"`
	P99DuringOverBefore float64 `json:"p99_during_over_before"`
	HealthyMissing      int64   `json:"healthy_missing"`
	Duplicates          int64   `json:"duplicates"`
	OutOfOrder          int64   `json:"out_of_order"`
	HealthyDisconnects  int64   `json:"healthy_disconnects"`
	Resets              int64   `json:"resets"`
	Published           int64   `json:"published"`
	DuringS             float64 `json:"during_s"`
	EventBytes          int     `json:"event_bytes"`
	KiBBeforeCutP50     float64 `json:"kib_before_cut_p50"`
}

// ratioKeys are the figures compared as ours/bare, by JSON path.
var ratioKeys = map[string][]string{
	"idle":   {"idle.rss_kib_per_conn", "connect_ms.p50", "connect_ms.p99", "idle.server_cpu_pct_hold"},
	"fanout": {"fanout.latency_ms.p50", "fanout.latency_ms.p99", "fanout.latency_ms.p999", "fanout.latency_ms.max", "fanout.server_cpu_us_per_delivery", "fanout.deliveries_per_s"},
	"storm":  {"storm.all_caught_up_s", "storm.catch_up_ms.p50", "storm.catch_up_ms.p99", "storm.reconnect_ms.p99", "storm.server_cpu_s"},
	"slow":   {"slow.cut_s.p50", "slow.cut_s.max", "slow.blocked_s.max", "slow.healthy_latency_during_ms.p99", "slow.p99_during_over_before"},
}

// finish derives ok, violations and ratios.
func (o *output) finish() {
	names := make([]string, 0, len(o.Results))
	for name := range o.Results {
		names = append(names, name)
	}
	sort.Strings(names)
	o.Violations = []string{}
	for _, name := range names {
		for _, v := range o.Results[name].violations() {
			o.Violations = append(o.Violations, name+": "+v)
		}
	}
	bare, ours := o.Results["bare"], o.Results["caddy"]
	if bare != nil && ours != nil {
		b, c := flatten(bare), flatten(ours)
		o.Ratios = map[string]float64{}
		for _, k := range ratioKeys[o.Scenario] {
			if bv, cv := b[k], c[k]; bv != 0 && cv != 0 {
				o.Ratios[k] = round3(c[k] / bv)
			}
		}
	}
	o.OK = o.Error == "" && len(o.Violations) == 0
}

// violations lists broken promises: anything lost, duplicated or reordered,
// clients that never connected or caught up. Stalled clients left uncut are
// reported (not_cut) but not counted here: how much a stalled socket absorbs
// before the server's writes even block is up to the kernel (see README).
func (r *targetResult) violations() []string {
	var v []string
	add := func(cond bool, format string, args ...any) {
		if cond {
			v = append(v, fmt.Sprintf(format, args...))
		}
	}
	add(r.Connected < r.Clients, "%d of %d clients never connected", r.Clients-r.Connected, r.Clients)
	add(r.Publish.Lost > 0, "%d publishes failed", r.Publish.Lost)
	if f := r.Fanout; f != nil {
		add(f.Missing > 0, "%d events missing", f.Missing)
		add(f.Duplicates > 0, "%d duplicates", f.Duplicates)
		add(f.OutOfOrder > 0, "%d out of order", f.OutOfOrder)
	}
	if s := r.Storm; s != nil {
		add(s.Lost > 0, "%d events lost", s.Lost)
		add(s.Duplicates > 0, "%d duplicates", s.Duplicates)
		add(s.OutOfOrder > 0, "%d out of order", s.OutOfOrder)
		add(s.NotCaughtUp > 0, "%d clients never caught up", s.NotCaughtUp)
		add(s.TurnAwayBad > 0, "%d turned-away answers without a retry field, not ended at once or carrying events", s.TurnAwayBad)
	}
	if s := r.Slow; s != nil {
		add(s.HealthyMissing > 0, "%d events missing at healthy clients", s.HealthyMissing)
		add(s.Duplicates > 0, "%d duplicates", s.Duplicates)
		add(s.OutOfOrder > 0, "%d out of order", s.OutOfOrder)
	}
	return v
}

// flatten maps every numeric leaf of r's JSON form to its dotted path.
func flatten(r *targetResult) map[string]float64 {
	raw, _ := json.Marshal(r)
	var m map[string]any
	_ = json.Unmarshal(raw, &m)
	out := map[string]float64{}
	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				walk(strings.TrimPrefix(prefix+"."+k, "."), e)
			}
		case float64:
			out[prefix] = x
		}
	}
	walk("", m)
	return out
}
