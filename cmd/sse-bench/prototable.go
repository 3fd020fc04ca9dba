package main

import (
	"cmp"
	"flag"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
)

// sse-bench prototable FILE...: the idle and fanout runs of bench/protocols.sh (-target both, any -proto) as one
// Markdown table, a row per protocol and streams per connection, a column group per scenario size. Several
// runs of the same cell (repeats) show as ranges.

func protoTableMain(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("sse-bench prototable", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		_, _ = fmt.Fprintf(stderr, "usage: sse-bench prototable FILE...\n\nRenders idle and fanout JSON lines of -target both runs, a row per protocol.\n")
	}
	runs, code := parseRunFiles(fs, args, stderr)
	if code != 0 {
		return code
	}
	_, _ = io.WriteString(stdout, renderProtoTable(runs))
	return 0
}

// protoCell gathers one figure's values over repeated runs.
type protoCell struct{ bare, ours, ratio []float64 }

func (c *protoCell) add(b, o float64) {
	c.bare, c.ours = append(c.bare, b), append(c.ours, o)
	if b != 0 {
		c.ratio = append(c.ratio, o/b)
	}
}

func valueSpan(vs []float64, format string) string {
	if len(vs) == 0 {
		return "–"
	}
	lo, hi := slices.Min(vs), slices.Max(vs)
	a, b := fmt.Sprintf(format, lo), fmt.Sprintf(format, hi)
	if a == b {
		return a
	}
	return a + "–" + b
}

func (c *protoCell) String(format string) string {
	if c == nil {
		return "–"
	}
	return fmt.Sprintf("%s / %s (%s×)", valueSpan(c.bare, format), valueSpan(c.ours, format), valueSpan(c.ratio, "%.2f"))
}

func paramNum(o output, key string) float64 {
	v, _ := o.Params[key].(float64)
	return v
}

func renderProtoTable(runs []namedRun) string {
	type key struct{ row, col string }
	cells := map[key]*protoCell{}
	notes := map[string][]string{}
	var rows []string
	type column struct {
		name        string
		sc          string
		clients, hz float64
		figure      string
	}
	var cols []column
	cell := func(row, col string) *protoCell {
		k := key{row, col}
		if cells[k] == nil {
			cells[k] = &protoCell{}
		}
		return cells[k]
	}
	for _, r := range runs {
		o := r.out
		bare, ours := o.Results["bare"], o.Results["caddy"]
		if bare == nil || ours == nil || (o.Scenario != "idle" && o.Scenario != "fanout") {
			continue
		}
		proto, _ := o.Params["proto"].(string)
		row := protoLabel(cmp.Or(proto, protoH1), max(int(paramNum(o, "h2_streams")), 1))
		if !slices.Contains(rows, row) {
			rows = append(rows, row)
		}
		c, hz := paramNum(o, "c"), paramNum(o, "rate")
		add := func(col column, b, v float64) {
			if !slices.ContainsFunc(cols, func(x column) bool { return x.name == col.name }) {
				cols = append(cols, col)
			}
			cell(row, col.name).add(b, v)
		}
		if o.Scenario == "idle" {
			name := fmt.Sprintf("idle %s: KiB RSS per stream", addThousands(fmt.Sprint(c)))
			add(column{name: name, sc: "idle", clients: c, figure: "kib"}, bare.Idle.RSSKiBPerConn, ours.Idle.RSSKiBPerConn)
		} else {
			size := fmt.Sprintf("fanout %s × %g/s", addThousands(fmt.Sprint(c)), hz)
			add(column{name: size + ": CPU µs per delivery", sc: "fanout", clients: c, hz: hz, figure: "cpu"},
				bare.Fanout.ServerCPUUsPerDelivery, ours.Fanout.ServerCPUUsPerDelivery)
			add(column{name: size + ": p99 ms", sc: "fanout", clients: c, hz: hz, figure: "p99"},
				bare.Fanout.LatencyMS.P99, ours.Fanout.LatencyMS.P99)
		}
		if len(o.Violations) > 0 || o.Error != "" {
			notes[row] = append(notes[row], fmt.Sprintf("%s: %s", r.name, strings.Join(append(o.Violations, o.Error), "; ")))
		}
	}
	sort.SliceStable(cols, func(i, j int) bool {
		a, b := cols[i], cols[j]
		if a.sc != b.sc {
			return a.sc == "idle"
		}
		if a.clients != b.clients {
			return a.clients < b.clients
		}
		if a.hz != b.hz {
			return a.hz < b.hz
		}
		return a.figure < b.figure
	})
	var sb strings.Builder
	sb.WriteString("| protocol |")
	for _, c := range cols {
		sb.WriteString(" " + c.name + " |")
	}
	sb.WriteString(" lost / dup / out of order |\n|---|")
	for range cols {
		sb.WriteString("--:|")
	}
	sb.WriteString("---|\n")
	for _, row := range rows {
		sb.WriteString("| " + row + " |")
		for _, c := range cols {
			format := "%.1f"
			if c.figure == "p99" {
				format = "%.0f"
			}
			sb.WriteString(" " + cells[key{row, c.name}].String(format) + " |")
		}
		if n := notes[row]; len(n) > 0 {
			sb.WriteString(" " + strings.Join(n, "; ") + " |\n")
		} else {
			sb.WriteString(" 0 / 0 / 0 |\n")
		}
	}
	sb.WriteString("\nEach cell: bare / caddy-sse (caddy-sse ÷ bare), ranges over repeated runs; every run against the bare server on the same protocol in the same invocation.\n")
	return sb.String()
}
