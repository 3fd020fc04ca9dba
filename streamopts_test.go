package caddysse

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	natsjs "github.com/nats-io/nats.go/jetstream"
)

func TestStreamOptionsCaddyfile(t *testing.T) {
	var h Handler
	err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(`sse a.> {
		stream_replicas 3
		stream_max_age 2h
		stream_max_bytes 1GiB
		stream_storage memory
	}`))
	if err != nil {
		t.Fatal(err)
	}
	if h.StreamReplicas != 3 || h.StreamMaxAge != caddy.Duration(2*time.Hour) || h.StreamMaxBytes != 1<<30 || h.StreamStorage != "memory" {
		t.Fatalf("stream options not read: %+v", h)
	}
	cfg := h.streamConfig([]string{"a.>"})
	if cfg.Replicas != 3 || cfg.MaxAge != 2*time.Hour || cfg.MaxBytes != 1<<30 || !cfg.Memory {
		t.Fatalf("stream config: %+v", cfg)
	}
}

// Each bad value is an error naming the option and the value.
func TestStreamOptionsCaddyfileErrors(t *testing.T) {
	cases := []struct{ input, want string }{
		{"sse a {\nstream_replicas 0\n}", `stream_replicas "0": want a whole number of at least 1`},
		{"sse a {\nstream_replicas three\n}", `stream_replicas "three"`},
		{"sse a {\nstream_max_age forever\n}", `stream_max_age "forever": want a positive duration`},
		{"sse a {\nstream_max_age 0s\n}", `stream_max_age "0s"`},
		{"sse a {\nstream_max_bytes lots\n}", `stream_max_bytes "lots": want a size such as 512MiB`},
		{"sse a {\nstream_max_bytes 0\n}", `stream_max_bytes "0"`},
		{"sse a {\nstream_storage disk\n}", `stream_storage "disk": want file or memory`},
		{"sse a {\nstream_storage\n}", "stream_storage wants one value"},
		{"sse a {\nstream_replicas 1\nstream_replicas 1\n}", `option "stream_replicas" given twice`},
	}
	for _, tc := range cases {
		t.Run(tc.input, func(t *testing.T) {
			var h Handler
			err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(tc.input))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

// The same checks hold for JSON configs, which do not go through the Caddyfile.
func TestStreamOptionsValidate(t *testing.T) {
	cases := []struct {
		name string
		edit func(*Handler)
		want string
	}{
		{"defaults", func(*Handler) {}, ""},
		{"five replicas", func(h *Handler) { h.StreamReplicas = 5 }, ""},
		{"six replicas", func(h *Handler) { h.StreamReplicas = 6 }, "stream_replicas 6: want 1 to 5"},
		{"negative replicas", func(h *Handler) { h.StreamReplicas = -1 }, "stream_replicas -1"},
		{"negative max age", func(h *Handler) { h.StreamMaxAge = caddy.Duration(-time.Second) }, "stream_max_age -1s"},
		{"negative max bytes", func(h *Handler) { h.StreamMaxBytes = -5 }, "stream_max_bytes -5"},
		{"unknown storage", func(h *Handler) { h.StreamStorage = "ssd" }, `stream_storage "ssd": want file or memory`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := Handler{Subjects: []string{"a"}}
			h.applyDefaults()
			tc.edit(&h)
			err := h.Validate()
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}

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
