package caddysse

import (
	"fmt"
	"time"

	"github.com/caddy-sse/caddy-sse/jetstream"
)

const (
	storageFile   = "file"
	storageMemory = "memory"
	// maxStreamReplicas is JetStream's own limit.
	maxStreamReplicas = 5
)

// streamConfig is the stream this route needs: its subjects and the options for creating it. Zero options are
// left zero, so jetstream applies its defaults and knows what was not configured.
func (h *Handler) streamConfig(subjects []string) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:     h.Stream,
		Subjects: subjects,
		Replicas: h.StreamReplicas,
		MaxAge:   time.Duration(h.StreamMaxAge),
		MaxBytes: h.StreamMaxBytes,
		Memory:   h.StreamStorage == storageMemory,
	}
}

func (h *Handler) validateStreamOptions() error {
	if h.StreamReplicas < 0 || h.StreamReplicas > maxStreamReplicas {
		return fmt.Errorf("sse: stream_replicas %d: want 1 to %d", h.StreamReplicas, maxStreamReplicas)
	}
	if h.StreamMaxAge < 0 {
		return fmt.Errorf("sse: stream_max_age %s: want a positive duration", time.Duration(h.StreamMaxAge))
	}
	if h.StreamMaxBytes < 0 {
		return fmt.Errorf("sse: stream_max_bytes %d: want a positive size", h.StreamMaxBytes)
	}
	switch h.StreamStorage {
	case storageFile, storageMemory:
	default:
		return fmt.Errorf("sse: stream_storage %q: want file or memory", h.StreamStorage)
	}
	return nil
}

// checkEmbedded refuses stream options the embedded server cannot honour, which JetStream would otherwise refuse
// only when the tail tries to create the stream, in the log. It is a single server, and it reserves a stream's
// byte limit up front against its store.
func (h *Handler) checkEmbedded(a *App) error {
	if h.StreamReplicas > 1 {
		return fmt.Errorf("sse: stream_replicas %d: the embedded server is a single node; use 1, or nats_url with a NATS cluster", h.StreamReplicas)
	}
	limit, name := a.MaxStore, "max_store"
	if h.StreamStorage == storageMemory {
		limit, name = a.MaxMemory, "max_memory"
	}
	if h.StreamMaxBytes > limit {
		return fmt.Errorf("sse: stream_max_bytes %d is more than the embedded server's %s %d", h.StreamMaxBytes, name, limit)
	}
	return nil
}

// streamClaims holds, for one config, the stream options of the first route on each stream of each NATS
// server. Routes that share a stream share its tail and would race to create it, so their options must agree:
// a second route asking for something else fails the config load instead of one of them silently losing.
// Caddy provisions a config's handlers one at a time, so it needs no lock.
type streamClaims struct {
	byName map[string]streamOptions // conn key + stream name → options
}

// streamOptions are the options of a StreamConfig that routes on one stream must agree on.
type streamOptions struct {
	replicas int
	maxAge   time.Duration
	maxBytes int64
	memory   bool
}

// optionsOf is cfg's options with defaults applied, so a route that spells out a default agrees with one that
// leaves it out. Subjects are not options: routes add theirs up.
func optionsOf(cfg jetstream.StreamConfig) streamOptions {
	o := streamOptions{replicas: cfg.Replicas, maxAge: cfg.MaxAge, maxBytes: cfg.MaxBytes, memory: cfg.Memory}
	if o.replicas == 0 {
		o.replicas = jetstream.DefaultReplicas
	}
	if o.maxAge == 0 {
		o.maxAge = jetstream.DefaultMaxAge
	}
	return o
}

// claimStream records the stream options of a route, or fails when another route of this config asked for
// other options on the same stream.
func (a *App) claimStream(conn string, cfg jetstream.StreamConfig) error {
	opts := optionsOf(cfg)
	key := conn + "\x00" + cfg.Name
	if a.streams.byName == nil {
		a.streams.byName = map[string]streamOptions{}
	}
	first, ok := a.streams.byName[key]
	if !ok {
		a.streams.byName[key] = opts
		return nil
	}
	if first != opts {
		return fmt.Errorf("sse: stream %q: routes on this stream ask for different stream options (%s and %s); "+
			"give every route on one stream the same stream_replicas, stream_max_age, stream_max_bytes and stream_storage",
			cfg.Name, describeStreamOptions(first), describeStreamOptions(opts))
	}
	return nil
}

// describeStreamOptions spells out a route's stream options the way the Caddyfile does.
func describeStreamOptions(o streamOptions) string {
	size, storage := "none", storageFile
	if o.maxBytes > 0 {
		size = fmt.Sprint(o.maxBytes)
	}
	if o.memory {
		storage = storageMemory
	}
	return fmt.Sprintf("stream_replicas %d, stream_max_age %s, stream_max_bytes %s, stream_storage %s", o.replicas, o.maxAge, size, storage)
}
