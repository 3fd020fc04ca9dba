package caddysse

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	natsjs "github.com/nats-io/nats.go/jetstream"
)

// Routes of one config on one stream must agree on its options: they share its tail and would race to create it.
func TestClaimStream(t *testing.T) {
	route := func(edit func(*Handler)) *Handler {
		h := &Handler{Subjects: []string{"a"}, Stream: "S"}
		edit(h)
		h.applyDefaults()
		return h
	}
	cases := []struct {
		name        string
		first, then *Handler
		conn2       string
		want        string
	}{
		{"same options", route(func(*Handler) {}), route(func(*Handler) {}), "", ""},
		{"a default spelled out agrees with one left out",
			route(func(h *Handler) { h.StreamReplicas = 1; h.StreamMaxAge = caddy.Duration(24 * time.Hour) }),
			route(func(*Handler) {}), "", ""},
		{"other stream", route(func(*Handler) {}), route(func(h *Handler) { h.Stream = "T"; h.StreamReplicas = 3 }), "", ""},
		{"same stream on another NATS", route(func(*Handler) {}), route(func(h *Handler) { h.StreamReplicas = 3 }), "other", ""},
		{"different replicas", route(func(*Handler) {}), route(func(h *Handler) { h.StreamReplicas = 3 }), "",
			`stream "S": routes on this stream ask for different stream options (stream_replicas 1, stream_max_age 24h0m0s, ` +
				`stream_max_bytes none, stream_storage file and stream_replicas 3, stream_max_age 24h0m0s, stream_max_bytes none, stream_storage file)`},
		{"different storage", route(func(*Handler) {}), route(func(h *Handler) { h.StreamStorage = "memory" }), "", "stream_storage memory)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var a App
			if err := a.claimStream(embeddedKey, tc.first.streamConfig(nil)); err != nil {
				t.Fatal(err)
			}
			conn := embeddedKey
			if tc.conn2 != "" {
				conn = tc.conn2
			}
			err := a.claimStream(conn, tc.then.streamConfig([]string{"b"}))
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}

// A stream caddy-sse creates gets the route's stream options.
func TestStreamOptionsCreateStream(t *testing.T) {
	loadSite(t, `sse /events opts.> {
		stream OPTS
		stream_max_age 90m
		stream_max_bytes 8MiB
		stream_storage memory
	}`)
	js := embeddedJS(t)
	var cfg natsjs.StreamConfig
	eventually(t, "stream OPTS created", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		s, err := js.Stream(ctx, "OPTS")
		if err != nil {
			return false
		}
		cfg = s.CachedInfo().Config
		return true
	})
	if cfg.MaxAge != 90*time.Minute || cfg.MaxBytes != 8<<20 || cfg.Storage != natsjs.MemoryStorage || cfg.Replicas != 1 {
		t.Fatalf("stream created with %+v", cfg)
	}
}

// The embedded server is one node with a fixed store: what it cannot honour fails the config load.
func TestStreamOptionsOnEmbeddedServer(t *testing.T) {
	app := &App{MaxStore: 1 << 30, MaxMemory: 256 << 20}
	cases := []struct {
		name string
		h    Handler
		want string
	}{
		{"defaults", Handler{StreamStorage: "file"}, ""},
		{"max bytes within max_store", Handler{StreamStorage: "file", StreamMaxBytes: 1 << 30}, ""},
		{"max bytes over max_store", Handler{StreamStorage: "file", StreamMaxBytes: 2 << 30},
			"stream_max_bytes 2147483648 is more than the embedded server's max_store 1073741824"},
		{"memory stream over max_memory", Handler{StreamStorage: "memory", StreamMaxBytes: 512 << 20},
			"stream_max_bytes 536870912 is more than the embedded server's max_memory 268435456"},
		{"replicas", Handler{StreamStorage: "file", StreamReplicas: 3},
			"stream_replicas 3: the embedded server is a single node"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.h.checkEmbedded(app)
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}
