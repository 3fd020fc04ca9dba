package caddysse

import (
	"strings"
	"testing"
	"time"
)

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
