package caddysse

import (
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

func TestGlobalSyncAndAuth(t *testing.T) {
	cases := []struct {
		name, input string
		want        App
	}{
		{"sync always", "sse {\nsync always\n}", App{Sync: "always"}},
		{"sync interval", "sse {\nsync 1s\n}", App{Sync: "1s"}},
		{"token", "sse {\nauth_token {env.SSE_T}\n}", App{AuthToken: "{env.SSE_T}"}},
		{"user", "sse {\nauth_user app pw\n}", App{AuthUser: "app", AuthPassword: "pw"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var a App
			if err := a.UnmarshalCaddyfile(caddyfile.NewTestDispenser(tc.input)); err != nil {
				t.Fatal(err)
			}
			if a.Sync != tc.want.Sync || a.AuthToken != tc.want.AuthToken || a.AuthUser != tc.want.AuthUser || a.AuthPassword != tc.want.AuthPassword {
				t.Fatalf("got %+v, want %+v", a, tc.want)
			}
		})
	}
}

// Each bad value is an error naming the option and the value.
func TestGlobalSyncAndAuthErrors(t *testing.T) {
	cases := []struct{ input, want string }{
		{"sse {\nsync sometimes\n}", `sync "sometimes": want always or a positive duration`},
		{"sse {\nsync 0s\n}", `sync "0s"`},
		{"sse {\nsync\n}", "sync wants one value"},
		{"sse {\nauth_token\n}", "auth_token wants one value"},
		{"sse {\nauth_user app\n}", "auth_user wants <user> <password>, got 1 values"},
		{"sse {\nauth_token t\nauth_user u p\n}", "use auth_token or auth_user, not both"},
	}
	for _, tc := range cases {
		t.Run(tc.input, func(t *testing.T) {
			var a App
			err := a.UnmarshalCaddyfile(caddyfile.NewTestDispenser(tc.input))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

// Provision (settle) expands placeholders in the credentials and applies the sync default; Validate checks what JSON
// configs can get wrong.
func TestAppSyncAndAuthProvision(t *testing.T) {
	t.Setenv("SSE_TEST_TOKEN", "from-env")
	cases := []struct {
		name string
		app  App
		want string // error, or "" for none
		cfg  func(*testing.T, App)
	}{
		{"defaults: sync always, no auth", App{}, "", func(t *testing.T, a App) {
			c := a.embeddedConfig()
			if !c.SyncAlways || c.SyncInterval != 0 || c.Token != "" || c.User != "" {
				t.Fatalf("embedded config %+v", c.Redacted())
			}
		}},
		{"interval", App{Sync: "250ms"}, "", func(t *testing.T, a App) {
			if c := a.embeddedConfig(); c.SyncAlways || c.SyncInterval != 250*time.Millisecond {
				t.Fatalf("embedded config %+v", c)
			}
		}},
		{"token from the environment", App{AuthToken: "{env.SSE_TEST_TOKEN}"}, "", func(t *testing.T, a App) {
			if c := a.embeddedConfig(); c.Token != "from-env" {
				t.Fatalf("token %q", c.Token)
			}
		}},
		{"unset variable", App{AuthToken: "{env.SSE_TEST_UNSET}"}, `auth_token "{env.SSE_TEST_UNSET}" is empty once expanded`, nil},
		{"bad sync", App{Sync: "never"}, `sync "never"`, nil},
		{"token and user", App{AuthToken: "t", AuthUser: "u", AuthPassword: "p"}, "use auth_token or auth_user, not both", nil},
		{"user without password", App{AuthUser: "u"}, `auth_user "u" needs a password`, nil},
		{"password without user", App{AuthPassword: "p"}, "auth_password needs auth_user", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := tc.app
			a.StoreDir = t.TempDir()
			err := a.settle()
			if err == nil {
				err = a.Validate()
			}
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
			if tc.cfg != nil {
				tc.cfg(t, a)
			}
		})
	}
}
