package caddysse

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

func TestUnmarshalCaddyfile(t *testing.T) {
	cases := []struct {
		name  string
		input string
		want  Handler
	}{
		{"subjects on the line", `sse a.> b.{query.x}`, Handler{Subjects: []string{"a.>", "b.{query.x}"}}},
		{"every option", `sse {
			subject orders.{http.auth.user.id}.> news.>
			topic_param topic
			stream ORDERS
			stream_replicas 3
			stream_max_age 2h
			stream_max_bytes 1GiB
			stream_storage memory
			nats_url nats://a:4222 nats://b:4222
			nats_user alice secret
			retry 2s
			heartbeat 10s
			write_timeout 5s
			buffer 64
			replay_limit 500
			first_event last 20
			last_event_id_param cursor
			event_header Type
			reset_event resync
			max_connections 1000
			close_delay 3s
			publish
		}`, Handler{
			Subjects: []string{"orders.{http.auth.user.id}.>", "news.>"}, TopicParam: "topic", Stream: "ORDERS",
			StreamReplicas: 3, StreamMaxAge: caddy.Duration(2 * time.Hour), StreamMaxBytes: 1 << 30, StreamStorage: "memory",
			NATS:  &NATSConfig{URLs: []string{"nats://a:4222", "nats://b:4222"}, User: "alice", Password: "secret"},
			Retry: caddy.Duration(2 * time.Second), Heartbeat: caddy.Duration(10 * time.Second),
			WriteTimeout: caddy.Duration(5 * time.Second), Buffer: 64, ReplayLimit: 500,
			FirstEvent: "last", FirstEventCount: 20, LastEventIDParam: "cursor", EventHeader: "Type",
			ResetEvent: "resync", MaxConnections: 1000, CloseDelay: caddy.Duration(3 * time.Second), Publish: true,
		}},
		{"creds", `sse a {
			nats_url tls://n:4222
			nats_creds /etc/nats/user.creds
		}`, Handler{Subjects: []string{"a"}, NATS: &NATSConfig{URLs: []string{"tls://n:4222"}, CredsFile: "/etc/nats/user.creds"}}},
		{"first_event oldest", `sse a {
			first_event oldest
		}`, Handler{Subjects: []string{"a"}, FirstEvent: "oldest"}},
		{"http1_takeover off", `sse a {
			http1_takeover off
		}`, Handler{Subjects: []string{"a"}, Connections: Connections{HTTP1Takeover: new(false)}}},
		{"http1_takeover on", `sse a {
			http1_takeover on
		}`, Handler{Subjects: []string{"a"}, Connections: Connections{HTTP1Takeover: new(true)}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var h Handler
			if err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(tc.input)); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(h, tc.want) {
				t.Fatalf("got  %+v\nwant %+v", h, tc.want)
			}
		})
	}
}

// Every bad input gets an error that names the option.
func TestUnmarshalCaddyfileErrors(t *testing.T) {
	cases := []struct{ input, want string }{
		{`sse`, "at least one subject"},
		{"sse a {\nbogus 1\n}", `unknown option "bogus"`},
		{"sse a {\n stream X\n stream Y\n}", `option "stream" given twice`},
		{"sse a {\n subject b\n}", `option "subject" given twice`},
		{"sse {\nsubject\n}", "wrong argument count"},
		{"sse a {\nstream\n}", "stream wants one value"},
		{"sse a {\nstream X Y\n}", "stream wants one value"},
		{"sse a {\nretry soon\n}", `retry "soon": want a positive duration`},
		{"sse a {\nheartbeat -1s\n}", `heartbeat "-1s"`},
		{"sse a {\nbuffer 0\n}", `buffer "0": want a whole number of at least 1`},
		{"sse a {\nreplay_limit many\n}", `replay_limit "many"`},
		{"sse a {\nmax_connections -1\n}", `max_connections "-1"`},
		{"sse a {\nfirst_event newest\n}", "first_event wants new, oldest or last <n>"},
		{"sse a {\nfirst_event last\n}", "first_event wants new, oldest or last <n>"},
		{"sse a {\nfirst_event last 0\n}", `first_event last "0"`},
		{"sse a {\nnats_user alice\n}", "nats_user wants <user> <password>"},
		{"sse a {\nnats_url\n}", "wrong argument count"},
		{"sse a {\npublish yes\n}", `publish takes no value, got "yes"`},
		{"sse a {\nstream_replicas 0\n}", `stream_replicas "0": want a whole number of at least 1`},
		{"sse a {\nstream_replicas three\n}", `stream_replicas "three"`},
		{"sse a {\nstream_max_age forever\n}", `stream_max_age "forever": want a positive duration`},
		{"sse a {\nstream_max_age 0s\n}", `stream_max_age "0s"`},
		{"sse a {\nstream_max_bytes lots\n}", `stream_max_bytes "lots": want a size such as 512MiB`},
		{"sse a {\nstream_max_bytes 0\n}", `stream_max_bytes "0"`},
		{"sse a {\nstream_storage disk\n}", `stream_storage "disk": want file or memory`},
		{"sse a {\nstream_storage\n}", "stream_storage wants one value"},
		{"sse a {\nhttp1_takeover yes\n}", `http1_takeover "yes": want on or off`},
		{"sse a {\nhttp1_takeover\n}", "http1_takeover wants one value"},
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

func TestGlobalOption(t *testing.T) {
	var a App
	err := a.UnmarshalCaddyfile(caddyfile.NewTestDispenser(`sse {
		listen off
		store_dir /var/lib/sse
		max_store 2GiB
		max_memory 64MB
		sync 1s
		auth_user app {env.SSE_PASSWORD}
	}`))
	if err != nil {
		t.Fatal(err)
	}
	want := App{Listen: "off", StoreDir: "/var/lib/sse", MaxStore: 2 << 30, MaxMemory: 64_000_000,
		Sync: "1s", AuthUser: "app", AuthPassword: "{env.SSE_PASSWORD}"}
	if a.Listen != want.Listen || a.StoreDir != want.StoreDir || a.MaxStore != want.MaxStore || a.MaxMemory != want.MaxMemory ||
		a.Sync != want.Sync || a.AuthToken != want.AuthToken || a.AuthUser != want.AuthUser || a.AuthPassword != want.AuthPassword {
		t.Fatalf("got %+v, want %+v", a, want)
	}
	for input, msg := range map[string]string{
		"sse {\nport 1\n}":                      `unknown global option "port"`,
		"sse {\nmax_store lots\n}":              `max_store "lots"`,
		`sse x`:                                 "takes a block",
		"sse {\nlisten off\nlisten off\n}":      `"listen" given twice`,
		"sse {\nsync sometimes\n}":              `sync "sometimes": want always or a positive duration`,
		"sse {\nsync 0s\n}":                     `sync "0s"`,
		"sse {\nsync\n}":                        "sync wants one value",
		"sse {\nauth_token\n}":                  "auth_token wants one value",
		"sse {\nauth_user app\n}":               "auth_user wants <user> <password>, got 1 values",
		"sse {\nauth_token t\nauth_user u p\n}": "use auth_token or auth_user, not both",
	} {
		var a App
		if err := a.UnmarshalCaddyfile(caddyfile.NewTestDispenser(input)); err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("%q: error %v, want %q", input, err, msg)
		}
	}
}

// TestValidate covers what only the assembled config can tell.
func TestValidate(t *testing.T) {
	base := func() Handler { h := Handler{Subjects: []string{"a"}}; h.applyDefaults(); return h }
	cases := []struct {
		name string
		edit func(*Handler)
		want string
	}{
		{"ok", func(*Handler) {}, ""},
		{"no subjects", func(h *Handler) { h.Subjects = nil }, "at least one subject"},
		{"first_event last without n", func(h *Handler) { h.FirstEvent = "last" }, "first_event last needs a count"},
		{"bad first_event", func(h *Handler) { h.FirstEvent = "all" }, `first_event "all"`},
		{"reset_event newline", func(h *Handler) { h.ResetEvent = "a\nb" }, "reset_event"},
		{"two credentials", func(h *Handler) {
			h.NATS = &NATSConfig{URLs: []string{"nats://x"}, Token: "t", User: "u"}
		}, "only one of"},
		{"url without scheme", func(h *Handler) { h.NATS = &NATSConfig{URLs: []string{"host:4222"}} }, "nats_url"},
		{"credentials without url", func(h *Handler) { h.NATS = &NATSConfig{Token: "t"} }, "need nats_url"},
		{"five stream replicas", func(h *Handler) { h.StreamReplicas = 5 }, ""},
		{"six stream replicas", func(h *Handler) { h.StreamReplicas = 6 }, "stream_replicas 6: want 1 to 5"},
		{"negative stream replicas", func(h *Handler) { h.StreamReplicas = -1 }, "stream_replicas -1"},
		{"negative stream max age", func(h *Handler) { h.StreamMaxAge = caddy.Duration(-time.Second) }, "stream_max_age -1s"},
		{"negative stream max bytes", func(h *Handler) { h.StreamMaxBytes = -5 }, "stream_max_bytes -5"},
		{"unknown stream storage", func(h *Handler) { h.StreamStorage = "ssd" }, `stream_storage "ssd": want file or memory`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := base()
			tc.edit(&h)
			err := h.Validate()
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}

// TestAdaptGolden: Caddyfile.example and testdata/*.caddyfile adapt to the JSON files in testdata.
// Run with SSE_UPDATE_GOLDEN=1 to rewrite the .json files after a deliberate change.
func TestAdaptGolden(t *testing.T) {
	inputs, _ := filepath.Glob("testdata/*.caddyfile")
	for _, in := range append(inputs, "Caddyfile.example") {
		t.Run(filepath.Base(in), func(t *testing.T) {
			src, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			adapted, warnings, err := caddyconfig.GetAdapter("caddyfile").Adapt(src, nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(warnings) > 0 {
				t.Fatalf("warnings: %v", warnings)
			}
			var pretty bytes.Buffer
			if err := json.Indent(&pretty, adapted, "", "\t"); err != nil {
				t.Fatal(err)
			}
			got := pretty.Bytes()
			golden := filepath.Join("testdata", strings.TrimSuffix(filepath.Base(in), ".caddyfile")+".json")
			if os.Getenv("SSE_UPDATE_GOLDEN") != "" {
				if err := os.WriteFile(golden, append(got, '\n'), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if strings.TrimSpace(string(got)) != strings.TrimSpace(string(want)) {
				t.Fatalf("adapted JSON differs from %s:\n%s", golden, got)
			}
		})
	}
}
