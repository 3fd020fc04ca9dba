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
	turnedAway *prometheus.CounterVec
	feeds      prometheus.Collector
	// quicIdleEnds: streams of HTTP/3 clients that vanished, ended by QUIC's idle timeout.
	quicIdleEnds *prometheus.CounterVec

	// connection management, touched once per connection
	connections  *prometheus.GaugeVec
	connects     *prometheus.CounterVec
	replaced     *prometheus.CounterVec
	lifetimeEnds *prometheus.CounterVec
	duration     *prometheus.HistogramVec
	takenOver    *prometheus.GaugeVec
}{}

const metricsNamespace, metricsSubsystem = "caddy", "sse"

func counterVec(name, help string, labels []string) *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: metricsNamespace, Subsystem: metricsSubsystem, Name: name, Help: help}, labels)
}

func gaugeVec(name, help string, labels []string) *prometheus.GaugeVec {
	return prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: metricsNamespace, Subsystem: metricsSubsystem, Name: name, Help: help}, labels)
}

func registerMetrics(registry *prometheus.Registry) error {
	metrics.once.Do(func() {
		metrics.replays = counterVec("replays_total",
			"Reconnects that replayed missed events, by where the events came from (memory or jetstream).", []string{"stream", "source"})
		metrics.resets = counterVec("resets_total",
			"Reset events sent because a client's Last-Event-ID could not be honoured, by reason.", []string{"stream", "reason"})
		metrics.turnedAway = counterVec("turned_away_total",
			"Clients asked to come back later, by the cap that turned them away.", []string{"reason"})
		metrics.quicIdleEnds = counterVec("quic_idle_timeouts_total",
			"HTTP/3 streams that ended because the client went silent for QUIC's idle timeout (a vanished client).", []string{"stream"})
		metrics.feeds = feedCollector{}
		metrics.connections = gaugeVec("connections",
			"Open event streams on this node, by stream and route (the route's subjects).", []string{"stream", "route"})
		metrics.connects = counterVec("connects_total",
			"Event streams opened (admitted), by stream and route; its rate is connects per second.", []string{"stream", "route"})
		metrics.replaced = counterVec("replaced_total",
			"Streams ended because a newer connection with the same client key opened (max_per_key).", []string{"stream"})
		metrics.lifetimeEnds = counterVec("lifetime_ends_total",
			"Streams ended because they reached max_lifetime.", []string{"stream"})
		metrics.takenOver = gaugeVec("taken_over_connections",
			"Open event streams taken over from the HTTP server and held by the writer pool (http1_takeover).", []string{"stream"})
		metrics.duration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: metricsNamespace, Subsystem: metricsSubsystem, Name: "connection_duration_seconds",
			Help:    "How long event streams stayed open.",
			Buckets: []float64{1, 10, 60, 300, 900, 1800, 3600, 4 * 3600, 24 * 3600},
		}, []string{"stream"})
	})
	if registry == nil {
		return nil
	}
	for _, c := range []prometheus.Collector{metrics.replays, metrics.resets, metrics.turnedAway, metrics.quicIdleEnds, metrics.feeds,
		metrics.connections, metrics.connects, metrics.replaced, metrics.lifetimeEnds, metrics.duration, metrics.takenOver} {
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

// feedCollector reports the hub counters of every feed of this process.
type feedCollector struct{}

func (feedCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{feedSubscriptionsDesc, feedPublishedDesc, feedDeliveredDesc, feedOverflowsDesc, feedRingDesc} {
		ch <- d
	}
}

func (feedCollector) Collect(ch chan<- prometheus.Metric) {
	for stream, s := range feeds.figures() {
		ch <- prometheus.MustNewConstMetric(feedPublishedDesc, prometheus.CounterValue, float64(s.published), stream)
		ch <- prometheus.MustNewConstMetric(feedDeliveredDesc, prometheus.CounterValue, float64(s.delivered), stream)
		ch <- prometheus.MustNewConstMetric(feedOverflowsDesc, prometheus.CounterValue, float64(s.overflows), stream)
		if s.live {
			ch <- prometheus.MustNewConstMetric(feedSubscriptionsDesc, prometheus.GaugeValue, float64(s.subs), stream)
			ch <- prometheus.MustNewConstMetric(feedRingDesc, prometheus.GaugeValue, float64(s.ring), stream)
		}
	}
}

// feeds knows every feed of the process for the metrics. A config change destroys feeds, and their hubs'
// counters with them: what a destroyed feed counted is kept in retired, so the counters Prometheus reads never
// go down (it would take that for a restart of the process).
var feeds = feedRegistry{live: map[*feed]struct{}{}, retired: map[string]*streamFigures{}}

type feedRegistry struct {
	mu      sync.Mutex
	live    map[*feed]struct{}
	retired map[string]*streamFigures // by stream name
}

// streamFigures adds up the feeds of one stream: routes with different event headers tail it separately.
type streamFigures struct {
	published, delivered, overflows uint64 // counters
	subs, ring                      int    // gauges, from live feeds
	live                            bool   // a live feed reads the stream
}

func (r *feedRegistry) add(f *feed) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.live[f] = struct{}{}
}

// retire moves a destroyed feed's final counters into the per-process totals.
func (r *feedRegistry) retire(f *feed) {
	st := f.hub.Stats()
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.live[f]; !ok {
		return
	}
	delete(r.live, f)
	s := r.retired[f.tail.Stream.Name]
	if s == nil {
		s = new(streamFigures)
		r.retired[f.tail.Stream.Name] = s
	}
	s.published += st.Published
	s.delivered += st.Delivered
	s.overflows += st.Overflows
}

// figures sums live and retired feeds by stream.
func (r *feedRegistry) figures() map[string]*streamFigures {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]*streamFigures, len(r.retired)+len(r.live))
	get := func(stream string) *streamFigures {
		s := out[stream]
		if s == nil {
			s = new(streamFigures)
			out[stream] = s
		}
		return s
	}
	for stream, old := range r.retired {
		*get(stream) = *old
	}
	for f := range r.live {
		st := f.hub.Stats()
		s := get(f.tail.Stream.Name)
		s.published += st.Published
		s.delivered += st.Delivered
		s.overflows += st.Overflows
		s.subs += st.Subscriptions
		s.ring += st.RingLen
		s.live = true
	}
	return out
}
