package caddysse

import (
	"errors"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics. The per-stream figures are read from the hubs when Prometheus scrapes (nothing is counted per event
// or per delivery on the hot path); the per-connection counters are touched once per connection.
var metrics = struct {
	once       sync.Once
	replays    *prometheus.CounterVec
	resets     *prometheus.CounterVec
	turnedAway prometheus.Counter
	// quicIdleEnds: streams of HTTP/3 clients that vanished, ended by QUIC's idle timeout.
	quicIdleEnds *prometheus.CounterVec
	feeds        prometheus.Collector
}{}

func registerMetrics(registry *prometheus.Registry) error {
	const ns, sub = "caddy", "sse"
	metrics.once.Do(func() {
		metrics.replays = prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "replays_total",
			Help: "Reconnects that replayed missed events, by where the events came from (memory or jetstream).",
		}, []string{"stream", "source"})
		metrics.resets = prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "resets_total",
			Help: "Reset events sent because a client's Last-Event-ID could not be honoured, by reason.",
		}, []string{"stream", "reason"})
		metrics.turnedAway = prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "turned_away_total",
			Help: "Clients asked to come back later because max_connections was reached.",
		})
		metrics.quicIdleEnds = prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "quic_idle_timeouts_total",
			Help: "HTTP/3 streams that ended because the client went silent for QUIC's idle timeout (a vanished client).",
		}, []string{"stream"})
		metrics.feeds = feedCollector{}
	})
	if registry == nil {
		return nil
	}
	for _, c := range []prometheus.Collector{metrics.replays, metrics.resets, metrics.turnedAway, metrics.quicIdleEnds, metrics.feeds} {
		// Every config registers the same collectors; a registry that has them already is fine.
		if err := registry.Register(c); err != nil && !errors.As(err, &prometheus.AlreadyRegisteredError{}) {
			return err
		}
	}
	return nil
}

var (
	feedSubscriptionsDesc = prometheus.NewDesc("caddy_sse_subscriptions",
		"Open event streams on this node.", []string{"stream"}, nil)
	feedPublishedDesc = prometheus.NewDesc("caddy_sse_events_total",
		"Events this node read from JetStream and fanned out.", []string{"stream"}, nil)
	feedDeliveredDesc = prometheus.NewDesc("caddy_sse_deliveries_total",
		"Live events queued to clients, summed over clients (replays not included).", []string{"stream"}, nil)
	feedOverflowsDesc = prometheus.NewDesc("caddy_sse_slow_client_disconnects_total",
		"Clients disconnected because their queue (buffer) overflowed.", []string{"stream"}, nil)
	feedRingDesc = prometheus.NewDesc("caddy_sse_memory_events",
		"Recent events kept in memory for replays.", []string{"stream"}, nil)
)

// feedCollector reports every running feed's hub counters.
type feedCollector struct{}

func (feedCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{feedSubscriptionsDesc, feedPublishedDesc, feedDeliveredDesc, feedOverflowsDesc, feedRingDesc} {
		ch <- d
	}
}

func (feedCollector) Collect(ch chan<- prometheus.Metric) {
	// Routes with different event headers tail the same stream separately; their figures add up per stream.
	type sums struct{ subs, published, delivered, overflows, ring float64 }
	byStream := map[string]*sums{}
	feedPool.Range(func(_, v any) bool {
		f := v.(*feed)
		st := f.hub.Stats()
		s := byStream[f.tail.Stream.Name]
		if s == nil {
			s = new(sums)
			byStream[f.tail.Stream.Name] = s
		}
		s.subs += float64(st.Subscriptions)
		s.published += float64(st.Published)
		s.delivered += float64(st.Delivered)
		s.overflows += float64(st.Overflows)
		s.ring += float64(st.RingLen)
		return true
	})
	for stream, s := range byStream {
		ch <- prometheus.MustNewConstMetric(feedSubscriptionsDesc, prometheus.GaugeValue, s.subs, stream)
		ch <- prometheus.MustNewConstMetric(feedPublishedDesc, prometheus.CounterValue, s.published, stream)
		ch <- prometheus.MustNewConstMetric(feedDeliveredDesc, prometheus.CounterValue, s.delivered, stream)
		ch <- prometheus.MustNewConstMetric(feedOverflowsDesc, prometheus.CounterValue, s.overflows, stream)
		ch <- prometheus.MustNewConstMetric(feedRingDesc, prometheus.GaugeValue, s.ring, stream)
	}
}
