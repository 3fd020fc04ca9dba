package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// sse-bench table FILE...: renders the JSON lines of scenario runs (one run
// per file, -target both) as a Markdown table of bare vs caddy-sse figures,
// their ratio, and the issue-3 targets each figure is held to. A run is named
// by its file's base name; runs named sweep* are fanout runs at several rates
// and get a section of their own.

// The targets (issue 3). Ratios are caddy-sse / bare from the same run.
const (
	targetIdleKiB       = 4.0  // RSS per connection at most this many KiB above bare
	targetFanoutRatio   = 1.1  // CPU per delivery and p99 latency
	targetStormRatio    = 1.25 // time until all caught up
	targetSlowP99Growth = 1.2  // healthy p99 during the stall over before
	targetSweepP99MS    = 100  // sweep: the highest rate with zero loss and p99 below this
	cutPollSlackS       = 0.25 // slow: polling resolution (100 ms) plus scheduling, on top of write_timeout
)

func tableMain(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("sse-bench table", flag.ContinueOnError)
	fs.SetOutput(stderr)
	writeTimeout := fs.Float64("write-timeout", 0, "the server's write_timeout in seconds (default: the bare server's, from the run's params)")
	fs.Usage = func() {
		_, _ = fmt.Fprintf(stderr, "usage: sse-bench table [-write-timeout S] FILE...\n\nRenders scenario JSON lines (one run per file, named by the file) as Markdown.\n")
		fs.PrintDefaults()
	}
	runs, code := parseRunFiles(fs, args, stderr)
	if code != 0 {
		return code
	}
	t := &mdTable{writeTimeout: *writeTimeout}
	t.render(runs)
	_, _ = io.WriteString(stdout, t.b.String())
	return 0
}

// parseRunFiles parses a table command's flags and reads the runs in the files named; a non-zero code is the
// command's exit status.
func parseRunFiles(fs *flag.FlagSet, args []string, stderr io.Writer) ([]namedRun, int) {
	if err := fs.Parse(args); err != nil {
		return nil, 2
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return nil, 2
	}
	var runs []namedRun
	for _, path := range fs.Args() {
		rs, err := readRuns(path)
		if err != nil {
			_, _ = fmt.Fprintf(stderr, "%s: %v\n", fs.Name(), err)
			return nil, 1
		}
		runs = append(runs, rs...)
	}
	return runs, 0
}

type namedRun struct {
	name string
	out  output
}

func readRuns(path string) ([]namedRun, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }()
	name := strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
	var runs []namedRun
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 1<<20), 64<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		var o output
		if err := json.Unmarshal([]byte(line), &o); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		n := name
		if len(runs) > 0 {
			n = fmt.Sprintf("%s#%d", name, len(runs)+1)
		}
		runs = append(runs, namedRun{name: n, out: o})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(runs) == 0 {
		return nil, fmt.Errorf("%s: no JSON line (did the run fail before printing one?)", path)
	}
	return runs, nil
}

type mdTable struct {
	b            strings.Builder
	writeTimeout float64
}

func (t *mdTable) render(runs []namedRun) {
	var sweep []namedRun
	t.b.WriteString("| run | figure | bare | caddy-sse | caddy/bare | target | verdict |\n")
	t.b.WriteString("|---|---|--:|--:|--:|---|---|\n")
	for _, r := range runs {
		if strings.HasPrefix(r.name, "sweep") && r.out.Scenario == "fanout" {
			sweep = append(sweep, r)
			continue
		}
		t.run(r)
	}
	if len(sweep) > 0 {
		t.sweep(sweep)
	}
}

// row writes one line; label is shown only on a run's first line.
func (t *mdTable) row(label, figure, bare, ours, ratio, target, verdict string) {
	fmt.Fprintf(&t.b, "| %s | %s | %s | %s | %s | %s | %s |\n", label, figure, bare, ours, ratio, target, verdict)
}

func (t *mdTable) run(r namedRun) {
	o := r.out
	bare, ours := o.Results["bare"], o.Results["caddy"]
	label := fmt.Sprintf("**%s** %s", r.name, describeParams(o))
	first := true
	row := func(figure, b, c, ratio, target, verdict string) {
		l := ""
		if first {
			l, first = label, false
		}
		t.row(l, figure, b, c, ratio, target, verdict)
	}
	if bare == nil || ours == nil {
		row("(run incomplete)", "", "", "", "", "error: "+orDash(o.Error))
		return
	}
	bf, cf := flatten(bare), flatten(ours)
	get := func(key string) (float64, float64) { return bf[key], cf[key] }
	num := func(key string) (string, string) { b, c := get(key); return fnum(b), fnum(c) }
	ratio := func(key string) string {
		if v, ok := o.Ratios[key]; ok {
			return fnum(v)
		}
		return "–"
	}
	pair := func(keys ...string) (string, string) {
		var bs, cs []string
		for _, k := range keys {
			b, c := num(k)
			bs, cs = append(bs, b), append(cs, c)
		}
		return strings.Join(bs, " / "), strings.Join(cs, " / ")
	}
	counts := func(keys ...string) (string, string) { return lossTriple(bf, cf, keys...) }
	ratios := func(keys ...string) string {
		var rs []string
		for _, k := range keys {
			rs = append(rs, ratio(k))
		}
		return strings.Join(rs, " / ")
	}
	conn := func() {
		b, c := pair("connect_ms.p50", "connect_ms.p99")
		nb, nc := counts("connected")
		row("connected, connect p50 / p99 ms", nb+", "+b, nc+", "+c, "–, "+ratios("connect_ms.p50", "connect_ms.p99"), "", "")
	}

	switch o.Scenario {
	case "idle":
		b, c := get("idle.rss_kib_per_conn")
		row("server RSS KiB per connection", fnum(b), fnum(c), ratio("idle.rss_kib_per_conn"),
			fmt.Sprintf("≤ bare + %g KiB", targetIdleKiB), verdict(c-b <= targetIdleKiB, fmt.Sprintf("%+.1f KiB", c-b)))
		bs, cs := pair("idle.rss_kib_before", "idle.rss_kib_after")
		row("server RSS KiB before / after", bs, cs, "", "", "")
		conn()
		bs, cs = pair("idle.server_cpu_pct_hold")
		nb, nc := counts("idle.disconnects")
		row("server CPU % while holding, disconnects", bs+", "+nb, cs+", "+nc, "", "", "")
	case "fanout":
		bs, cs := lossTriple(bf, cf, "fanout.missing", "fanout.duplicates", "fanout.out_of_order")
		_, c := get("fanout.missing")
		_, cd := get("fanout.duplicates")
		_, co := get("fanout.out_of_order")
		row("missing / duplicate / out of order", bs, cs, "", "0", verdict(c+cd+co == 0, ""))
		b, c := get("fanout.server_cpu_us_per_delivery")
		rc := o.Ratios["fanout.server_cpu_us_per_delivery"]
		row("server CPU µs per delivery", fnum(b), fnum(c), ratio("fanout.server_cpu_us_per_delivery"),
			fmt.Sprintf("≤ %g× bare", targetFanoutRatio), verdict(c > 0 && rc <= targetFanoutRatio, ""))
		rp := o.Ratios["fanout.latency_ms.p99"]
		bs, cs = pair("fanout.latency_ms.p50", "fanout.latency_ms.p99", "fanout.latency_ms.p999", "fanout.latency_ms.max")
		row("latency p50 / p99 / p99.9 / max ms", bs, cs,
			ratios("fanout.latency_ms.p50", "fanout.latency_ms.p99", "fanout.latency_ms.p999", "fanout.latency_ms.max"),
			fmt.Sprintf("p99 ≤ %g× bare", targetFanoutRatio), verdict(rp > 0 && rp <= targetFanoutRatio, ""))
		bs, cs = counts("fanout.deliveries")
		b, c = get("fanout.deliveries_per_s")
		row("deliveries, per s", bs+", "+fnum(b), cs+", "+fnum(c), "–, "+ratio("fanout.deliveries_per_s"), "", "")
		bs, cs = pair("fanout.server_cpu_pct", "fanout.tool_cpu_pct")
		row("server / tool CPU % (of one core)", bs, cs, "", "", "")
		bs, cs = counts("fanout.disconnects", "fanout.reconnects")
		row("disconnects, reconnects", bs, cs, "", "", "")
		conn()
	case "storm":
		bs, cs := lossTriple(bf, cf, "storm.lost", "storm.duplicates", "storm.out_of_order")
		_, l := get("storm.lost")
		_, d := get("storm.duplicates")
		_, nc := get("storm.not_caught_up")
		row("lost / duplicate / out of order", bs, cs, "", "0", verdict(l+d == 0 && nc == 0, ""))
		_, cb := get("storm.consumers_before")
		_, cm := get("storm.consumers_max")
		_, ca := get("storm.consumers_after")
		bs, cs = counts("storm.consumers_before", "storm.consumers_max", "storm.consumers_after")
		row("JetStream consumers before / max during / after", bs, cs, "", "0 created",
			verdict(cm >= 0 && cm <= cb && ca <= cb, fmt.Sprintf("%+.0f", cm-cb)))
		b, c := get("storm.all_caught_up_s")
		r := o.Ratios["storm.all_caught_up_s"]
		row("time until all caught up s", fnum(b), fnum(c), ratio("storm.all_caught_up_s"),
			fmt.Sprintf("≤ %g× bare", targetStormRatio), verdict(c > 0 && r <= targetStormRatio, ""))
		bs, cs = pair("storm.catch_up_ms.p50", "storm.catch_up_ms.p99")
		row("catch-up p50 / p99 ms", bs, cs, ratios("storm.catch_up_ms.p50", "storm.catch_up_ms.p99"), "", "")
		bs, cs = pair("storm.reconnect_ms.p50", "storm.reconnect_ms.p99")
		row("reconnect p50 / p99 ms", bs, cs, "– / "+ratio("storm.reconnect_ms.p99"), "", "")
		bs, cs = pair("storm.server_cpu_s", "storm.tool_cpu_s")
		row("server / tool CPU s (reconnect to end)", bs, cs, ratio("storm.server_cpu_s")+" / –", "", "")
		bs, cs = counts("storm.multi_attempt", "storm.resets")
		row("clients needing >1 attempt, resets", bs, cs, "", "", "")
	case "slow":
		wt := t.writeTimeout
		if wt == 0 {
			if v, ok := o.Params["bare_write_timeout_s"].(float64); ok {
				wt = v
			}
		}
		bs, cs := counts("slow.stalled", "slow.cut")
		_, nc := get("slow.not_cut")
		row("stalled, cut", bs, cs, "", "all cut", verdict(nc == 0, ""))
		bs, cs = pair("slow.full_s.p50", "slow.full_s.max")
		row("stall → server send queue full s, p50 / max", bs, cs, "", "", "")
		bs, cs = pair("slow.server_sendq_kib.p50", "slow.server_sendq_kib.max")
		row("server send queue when full KiB, p50 / max", bs, cs, "", "", "")
		// The cut is seen by polling, and on a saturated machine both the server's close and the tool's poll
		// can be late: a cut no later than the bare server's, which has the same deadline, counts too.
		b, c := get("slow.blocked_s.max")
		_, cn := get("slow.blocked_s.n")
		row("send queue full → cut s, max", fnum(b), fnum(c), ratio("slow.blocked_s.max"),
			fmt.Sprintf("≤ write_timeout %gs + %gs, or ≤ bare", wt, cutPollSlackS),
			verdict(cn > 0 && nc == 0 && (c <= wt+cutPollSlackS || (b > 0 && c <= b)), ""))
		bs, cs = pair("slow.cut_s.p50", "slow.cut_s.max")
		row("stall → cut s, p50 / max", bs, cs, ratios("slow.cut_s.p50", "slow.cut_s.max"), "", "")
		bs, cs = pair("slow.healthy_latency_before_ms.p99", "slow.healthy_latency_during_ms.p99")
		row("healthy p99 ms, before / during", bs, cs, "– / "+ratio("slow.healthy_latency_during_ms.p99"), "", "")
		b, c = get("slow.p99_during_over_before")
		row("healthy p99 during / before", fnum(b), fnum(c), "", fmt.Sprintf("≤ %g", targetSlowP99Growth),
			verdict(c > 0 && c <= targetSlowP99Growth, ""))
		bs, cs = counts("slow.healthy_missing", "slow.duplicates", "slow.out_of_order", "slow.healthy_disconnects")
		row("healthy missing / dup / ooo / disconnects", bs, cs, "", "0", verdict(cf["slow.healthy_missing"]+cf["slow.duplicates"]+cf["slow.out_of_order"] == 0, ""))
	default:
		row("unknown scenario "+o.Scenario, "", "", "", "", "")
	}
	if len(o.Violations) > 0 || o.Error != "" {
		row("violations / error", "", "", "", "", strings.Join(append(append([]string(nil), o.Violations...), o.Error), "; "))
	}
}

// sweep: fanout runs at several rates; the highest rate each server sustains
// with nothing lost and p99 below targetSweepP99MS.
func (t *mdTable) sweep(runs []namedRun) {
	sort.SliceStable(runs, func(i, j int) bool {
		return runs[i].out.Params["rate"].(float64) < runs[j].out.Params["rate"].(float64)
	})
	c := 0
	if v, ok := runs[0].out.Params["c"].(float64); ok {
		c = int(v)
	}
	label := fmt.Sprintf("**sweep** %d clients, %gs per rate", c, runs[0].out.Params["duration_s"])
	best := map[string]float64{}
	first := true
	for _, r := range runs {
		rate := r.out.Params["rate"].(float64)
		cells := map[string]string{}
		for _, name := range []string{"bare", "caddy"} {
			res := r.out.Results[name]
			if res == nil || res.Fanout == nil {
				cells[name] = "–"
				continue
			}
			f := res.Fanout
			lossless := f.Missing == 0 && f.Duplicates == 0 && f.OutOfOrder == 0 && f.Disconnects == 0 &&
				f.Deliveries == f.ExpectedDeliveries && res.Connected == res.Clients
			ok := lossless && f.LatencyMS.P99 < targetSweepP99MS
			if ok {
				best[name] = max(best[name], rate)
			}
			cells[name] = fmt.Sprintf("p99 %s ms, %s/s%s", fnum(f.LatencyMS.P99), fnum(f.DeliveriesPerS), lossNote(f))
		}
		l := ""
		if first {
			l, first = label, false
		}
		t.row(l, fmt.Sprintf("%g events/s", rate), cells["bare"], cells["caddy"], fnumOr(r.out.Ratios["fanout.latency_ms.p99"]), "", "")
	}
	t.row("", fmt.Sprintf("highest rate with 0 lost and p99 < %d ms", targetSweepP99MS),
		rateOr(best["bare"]), rateOr(best["caddy"]), "", "record", "")
}

func lossNote(f *fanoutResult) string {
	var parts []string
	if f.Missing+f.Duplicates+f.OutOfOrder > 0 {
		parts = append(parts, fmt.Sprintf("%d/%d/%d lost/dup/ooo", f.Missing, f.Duplicates, f.OutOfOrder))
	}
	if f.Disconnects > 0 {
		parts = append(parts, fmt.Sprintf("%d disconnects", f.Disconnects))
	}
	if len(parts) == 0 {
		return ", 0 lost"
	}
	return ", " + strings.Join(parts, ", ")
}

func rateOr(v float64) string {
	if v == 0 {
		return "none of these"
	}
	return fmt.Sprintf("**%g/s**", v)
}

func lossTriple(b, c map[string]float64, keys ...string) (string, string) {
	var bs, cs []string
	for _, k := range keys {
		bs, cs = append(bs, strconv.FormatFloat(b[k], 'f', 0, 64)), append(cs, strconv.FormatFloat(c[k], 'f', 0, 64))
	}
	return strings.Join(bs, " / "), strings.Join(cs, " / ")
}

func verdict(ok bool, detail string) string {
	s := "**missed**"
	if ok {
		s = "met"
	}
	if detail != "" {
		s += " (" + detail + ")"
	}
	return s
}

// describeParams says what a run did, from its parameters.
func describeParams(o output) string {
	p := o.Params
	f := func(k string) float64 { v, _ := p[k].(float64); return v }
	switch o.Scenario {
	case "idle":
		return fmt.Sprintf("%g connections held %gs", f("c"), f("duration_s"))
	case "fanout":
		return fmt.Sprintf("%g clients × %g events/s × %gs", f("c"), f("rate"), f("duration_s"))
	case "storm":
		return fmt.Sprintf("%g clients, %g events missed, live %g/s for %gs", f("c"), f("missed"), f("rate"), f("duration_s"))
	case "slow":
		return fmt.Sprintf("%g clients, %g%% stalled, %g events/s of %g B padding, %gs before", f("c"), f("slow_percent"), f("rate"), f("payload_pad"), f("duration_s"))
	}
	return o.Scenario
}

// fnum prints a figure with about three significant digits.
func fnum(v float64) string {
	a := v
	if a < 0 {
		a = -a
	}
	switch {
	case v == 0:
		return "0"
	case a >= 1000:
		return addThousands(strconv.FormatFloat(v, 'f', 0, 64))
	case a >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case a >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	case a >= 1:
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
	return strconv.FormatFloat(v, 'f', 3, 64)
}

func fnumOr(v float64) string {
	if v == 0 {
		return "–"
	}
	return fnum(v)
}

func orDash(s string) string {
	if s == "" {
		return "–"
	}
	return s
}

func addThousands(s string) string {
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var out []byte
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	if neg {
		return "-" + string(out)
	}
	return string(out)
}
