package caddysse

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/caddy-sse/caddy-sse/hub"
	"github.com/caddy-sse/caddy-sse/jetstream"
)

func TestMetrics(t *testing.T) {
	loadSite(t, `sse /metrics metrics.> {
		stream METRICS
	}`)
	js := embeddedJS(t)
	s := openLive(t, "/metrics", "METRICS", 1)
	publish(t, js, "metrics.a", "", "1")
	first := s.expectData("1")[0]
	publish(t, js, "metrics.a", "", "2")
	s.expectData("2")
	r := openStream(t, baseURL+"/metrics", map[string]string{"Last-Event-ID": first.ID}) // replayed from memory
	r.expectData("2")
	bad := openStream(t, baseURL+"/metrics", map[string]string{"Last-Event-ID": "nonsense"})
	if ev := bad.next(); ev.Type != "reset" {
		t.Fatalf("got %+v, want a reset", ev)
	}

	resp, err := http.Get(adminURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`caddy_sse_replays_total{source="memory",stream="METRICS"} 1`,
		`caddy_sse_resets_total{reason="malformed-id",stream="METRICS"} 1`,
		`caddy_sse_subscriptions{stream="METRICS"} 3`,
		`caddy_sse_events_total{stream="METRICS"} 2`,
		`caddy_sse_deliveries_total{stream="METRICS"} 2`, // live deliveries; replays are counted by replays_total
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if t.Failed() {
		for _, line := range strings.Split(string(body), "\n") {
			if strings.HasPrefix(line, "caddy_sse") {
				t.Log(line)
			}
		}
	}
}

// TestFeedCountersOutliveTheirFeed: a config change that destroys a feed must not make its stream's counters
// go down.
func TestFeedCountersOutliveTheirFeed(t *testing.T) {
	r := feedRegistry{live: map[*feed]struct{}{}, retired: map[string]*streamFigures{}}
	newFeed := func() *feed {
		f := &feed{hub: hub.New(hub.Config{}), tail: jetstream.TailConfig{Stream: jetstream.StreamConfig{Name: "S"}}}
		f.hub.Begin("e", 0)
		r.add(f)
		return f
	}
	old := newFeed()
	sub, _, _ := old.hub.Subscribe([]string{"a"}, 8)
	for seq := uint64(1); seq <= 3; seq++ {
		old.hub.Publish(seq, "a", "", nil)
	}
	sub.Close()
	if s := r.figures()["S"]; s.published != 3 || s.delivered != 3 || !s.live {
		t.Fatalf("live feed: %+v, want 3 published and delivered", *s)
	}
	successor := newFeed()
	old.hub.Close()
	r.retire(old)
	successor.hub.Publish(4, "a", "", nil)
	if s := r.figures()["S"]; s.published != 4 || s.delivered != 3 {
		t.Fatalf("after the feed was replaced: %+v, want 4 published and 3 delivered", *s)
	}
	successor.hub.Close()
	r.retire(successor)
	if s := r.figures()["S"]; s.published != 4 || s.live {
		t.Fatalf("no feed left: %+v, want the totals kept and no gauges", *s)
	}
}
