package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
)

// What the node under test says about a storm: its Prometheus counters (Caddy's admin /metrics) and the
// JetStream consumers created for the stream while it lasted.

// scrapedMetrics are the module's counters the storm compares before and after, by a short name:
// replays.<source> (memory, jetstream), turned_away.<reason>, resets.<reason>, connects,
// slow_client_disconnects.
type scrapedMetrics map[string]float64

// metricFamilies maps a counter to the label whose value names it; "" sums every series.
var metricFamilies = map[string]string{
	"caddy_sse_replays_total":     "source",
	"caddy_sse_turned_away_total": "reason",
	"caddy_sse_resets_total":      "reason",
	"caddy_sse_connects_total":    "",
	// Streams the server ended because their queue overflowed (buffer).
	"caddy_sse_slow_client_disconnects_total": "",
}

// checkLoopbackHTTP refuses a metrics URL that is not plain http on a loopback address.
func checkLoopbackHTTP(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("metrics URL %q: %w", raw, err)
	}
	if u.Scheme != "http" {
		return fmt.Errorf("metrics URL %q: only http", raw)
	}
	if _, err := loopbackIP(u.Hostname()); err != nil {
		return fmt.Errorf("metrics URL %q: %w", raw, err)
	}
	return nil
}

func scrapeMetrics(ctx context.Context, rawURL string) (scrapedMetrics, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("metrics %s: HTTP status %d", rawURL, resp.StatusCode)
	}
	return parseMetrics(resp.Body)
}

// parseMetrics reads the Prometheus text format, keeping only metricFamilies.
func parseMetrics(r io.Reader) (scrapedMetrics, error) {
	out := scrapedMetrics{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		name, rest, labels := line, "", ""
		if i := strings.IndexAny(line, "{ "); i >= 0 {
			name, rest = line[:i], line[i:]
		}
		label, ok := metricFamilies[name]
		if !ok {
			continue
		}
		if strings.HasPrefix(rest, "{") {
			j := strings.LastIndexByte(rest, '}')
			if j < 0 {
				continue
			}
			labels, rest = rest[1:j], rest[j+1:]
		}
		fields := strings.Fields(rest)
		if len(fields) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			continue
		}
		key := strings.TrimPrefix(strings.TrimSuffix(name, "_total"), "caddy_sse_")
		if label != "" {
			key += "." + labelValue(labels, label)
		}
		out[key] += v
	}
	return out, sc.Err()
}

// labelValue finds name="value" in a label list (values here never hold quotes or commas).
func labelValue(labels, name string) string {
	for _, kv := range strings.Split(labels, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
		if ok && k == name {
			return strings.Trim(v, `"`)
		}
	}
	return ""
}

// delta is after − before for every counter that moved.
func (after scrapedMetrics) delta(before scrapedMetrics) map[string]float64 {
	out := map[string]float64{}
	for k, v := range after {
		if d := v - before[k]; d != 0 {
			out[k] = d
		}
	}
	return out
}

// consumerCreations counts JetStream's consumer-created advisories for one stream: every consumer created,
// however short-lived (a poll of the consumer count misses one that lives less than the poll interval).
type consumerCreations struct {
	sub *nats.Subscription
	n   atomic.Int64
}

func watchConsumerCreations(nc *nats.Conn, stream string) (*consumerCreations, error) {
	w := &consumerCreations{}
	sub, err := nc.Subscribe("$JS.EVENT.ADVISORY.CONSUMER.CREATED."+stream+".>", func(*nats.Msg) { w.n.Add(1) })
	if err != nil {
		return nil, err
	}
	_ = sub.SetPendingLimits(-1, -1)
	w.sub = sub
	if err := nc.Flush(); err != nil {
		_ = sub.Unsubscribe()
		return nil, err
	}
	return w, nil
}

// result stops counting; a flush first lets advisories already sent arrive.
func (w *consumerCreations) result(nc *nats.Conn) int64 {
	_ = nc.FlushTimeout(2 * time.Second)
	_ = w.sub.Unsubscribe()
	return w.n.Load()
}
