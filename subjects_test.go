package caddysse

import (
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/caddy-sse/caddy-sse/subject"
	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

func TestParseSubjectTemplate(t *testing.T) {
	cases := []struct {
		raw, stream, err string
	}{
		{"orders.>", "orders.>", ""},
		{"orders.{http.auth.user.id}.>", "orders.*.>", ""},
		{"chat.room-{http.request.uri.query.room}", "chat.*", ""},
		{"a.*.c", "a.*.c", ""},
		{"", "", "not a valid NATS subject"},
		{"a..b", "", "not a valid NATS subject"},
		{"a.>.b", "", "not a valid NATS subject"},
		{"a.{x", "", "unclosed placeholder"},
		{"a.x}", "", "unbalanced '}'"},
		{"a.{}", "", "bad placeholder"},
		{"a b", "", "not a valid NATS subject"},
	}
	for _, tc := range cases {
		t.Run(tc.raw, func(t *testing.T) {
			tpl, err := parseSubjectTemplate(tc.raw)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := tpl.streamSubject(); got != tc.stream {
				t.Fatalf("stream subject %q, want %q", got, tc.stream)
			}
		})
	}
}

func TestResolveSubjectTemplate(t *testing.T) {
	cases := []struct {
		name, tpl string
		vars      map[string]any
		want      string
		status    int // 0: resolves
	}{
		{"literal", "a.b", nil, "a.b", 0},
		{"identity", "orders.{http.auth.user.id}.>", map[string]any{"http.auth.user.id": "u42"}, "orders.u42.>", 0},
		{"two in one token", "x.{http.request.uri.query.a}-{http.request.uri.query.b}",
			map[string]any{"http.request.uri.query.a": "1", "http.request.uri.query.b": "2"}, "x.1-2", 0},
		{"unicode value", "x.{http.request.uri.query.a}", map[string]any{"http.request.uri.query.a": "café"}, "x.café", 0},
		{"client empty", "x.{http.request.uri.query.a}", nil, "", http.StatusBadRequest},
		{"client dot", "x.{http.request.uri.query.a}", map[string]any{"http.request.uri.query.a": "a.b"}, "", http.StatusBadRequest},
		{"client star", "x.{http.request.header.T}", map[string]any{"http.request.header.T": "*"}, "", http.StatusBadRequest},
		{"client gt", "x.{http.request.uri.query.a}", map[string]any{"http.request.uri.query.a": ">"}, "", http.StatusBadRequest},
		{"client tab", "x.{http.request.uri.query.a}", map[string]any{"http.request.uri.query.a": "a\tb"}, "", http.StatusBadRequest},
		{"client newline", "x.{http.request.uri.query.a}", map[string]any{"http.request.uri.query.a": "a\nb"}, "", http.StatusBadRequest},
		{"identity missing", "orders.{http.auth.user.id}", nil, "", http.StatusForbidden},
		{"identity wildcard", "orders.{http.auth.user.id}", map[string]any{"http.auth.user.id": ">"}, "", http.StatusForbidden},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tpl, err := parseSubjectTemplate(tc.tpl)
			if err != nil {
				t.Fatal(err)
			}
			repl := caddy.NewReplacer()
			for k, v := range tc.vars {
				repl.Set(k, v)
			}
			got, err := tpl.resolve(repl)
			if tc.status == 0 {
				if err != nil || got != tc.want {
					t.Fatalf("got %q, %v; want %q", got, err, tc.want)
				}
				return
			}
			herr, ok := err.(caddyhttp.HandlerError)
			if !ok || herr.StatusCode != tc.status {
				t.Fatalf("got %q, %v; want status %d", got, err, tc.status)
			}
		})
	}
}

func TestExpandGlobalPlaceholders(t *testing.T) {
	t.Setenv("SSE_TEST_TENANT", "acme")
	tpl, _ := parseSubjectTemplate("t.{env.SSE_TEST_TENANT}.{http.auth.user.id}")
	got, err := tpl.expandGlobal(caddy.NewReplacer())
	if err != nil {
		t.Fatal(err)
	}
	if got.streamSubject() != "t.acme.*" {
		t.Fatalf("stream subject %q", got.streamSubject())
	}
	t.Setenv("SSE_TEST_TENANT", "a.b")
	if _, err := tpl.expandGlobal(caddy.NewReplacer()); err == nil {
		t.Fatal("an env value with '.' must be refused at provision")
	}
}

func TestMergeSubjects(t *testing.T) {
	cases := []struct {
		have, add, want []string
		changed         bool
	}{
		{nil, []string{"a.>"}, []string{"a.>"}, true},
		{[]string{"a.>"}, []string{"a.b"}, []string{"a.>"}, false},
		{[]string{"a.b", "a.*.c"}, []string{"a.>"}, []string{"a.>"}, true},
		{[]string{"a.b"}, []string{"c.d"}, []string{"a.b", "c.d"}, true},
	}
	for _, tc := range cases {
		got, changed := mergeSubjects(tc.have, tc.add)
		if !reflect.DeepEqual(got, tc.want) || changed != tc.changed {
			t.Errorf("merge(%v, %v) = %v %v, want %v %v", tc.have, tc.add, got, changed, tc.want, tc.changed)
		}
	}
}

// FuzzResolveSubjectTemplate: whatever a client sends, the result is one concrete subject in which the value is
// exactly one token, or a refusal.
func FuzzResolveSubjectTemplate(f *testing.F) {
	for _, seed := range []string{"ok", "", ".", "*", ">", "a.b", "a b", "é", "\x00", "a>b", "{x}"} {
		f.Add(seed)
	}
	tpl, err := parseSubjectTemplate("pre.{http.request.uri.query.v}.post")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, v string) {
		repl := caddy.NewReplacer()
		repl.Set("http.request.uri.query.v", v)
		got, err := tpl.resolve(repl)
		if err != nil {
			return
		}
		if !subject.Valid(got) || got != "pre."+v+".post" || strings.Count(got, ".") != 2 {
			t.Fatalf("value %q resolved to %q", v, got)
		}
	})
}
