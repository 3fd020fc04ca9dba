package jetstream

import (
	"errors"
	"testing"

	"github.com/nats-io/nats.go"
)

// With credentials set, the embedded server refuses clients without them, takes the right ones, and the
// in-process connection (which presents the server's own credentials) keeps working.
func TestEmbeddedAuth(t *testing.T) {
	tests := []struct {
		name  string
		cfg   EmbeddedConfig
		right []nats.Option
		wrong []nats.Option
	}{
		{"token", EmbeddedConfig{Token: "s3cret"},
			[]nats.Option{nats.Token("s3cret")}, []nats.Option{nats.Token("guess")}},
		{"user and password", EmbeddedConfig{User: "app", Password: "pw"},
			[]nats.Option{nats.UserInfo("app", "pw")}, []nats.Option{nats.UserInfo("app", "guess")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.Listen = "127.0.0.1:0"
			e := startServer(t, tt.cfg)

			for name, opts := range map[string][]nats.Option{"no credentials": nil, "wrong credentials": tt.wrong} {
				nc, err := nats.Connect(e.ClientURL(), opts...)
				if err == nil {
					nc.Close()
					t.Fatalf("%s: connected", name)
				}
				if !errors.Is(err, nats.ErrAuthorization) {
					t.Fatalf("%s: error %v, want an authorization violation", name, err)
				}
			}

			own := connect(t, ConnConfig{Embedded: e})
			waitConnected(t, own)
			ensure(t, own, testStream("AUTH", "auth.>"))

			external := connect(t, authConnConfig(e.ClientURL(), tt.cfg))
			waitConnected(t, external)
			if seq := publish(t, external, "auth.x", "", "with credentials"); seq != 1 {
				t.Fatalf("external publish got seq %d", seq)
			}
			if seq := publish(t, own, "auth.x", "", "in-process"); seq != 2 {
				t.Fatalf("in-process publish got seq %d", seq)
			}
		})
	}
}

func authConnConfig(url string, cfg EmbeddedConfig) ConnConfig {
	return ConnConfig{URLs: []string{url}, Token: cfg.Token, User: cfg.User, Password: cfg.Password}
}

func TestEmbeddedAuthTokenAndUserRefused(t *testing.T) {
	_, err := StartEmbedded(EmbeddedConfig{StoreDir: t.TempDir(), Token: "t", User: "u", Password: "p"}, nil)
	if err == nil {
		t.Fatal("a token and a user were both accepted")
	}
}

func TestEmbeddedConfigRedacted(t *testing.T) {
	got := EmbeddedConfig{Token: "t", User: "u", Password: "p", StoreDir: "/d"}.Redacted()
	if got.Token != "REDACTED" || got.Password != "REDACTED" || got.User != "u" || got.StoreDir != "/d" {
		t.Fatalf("Redacted() = %+v", got)
	}
}
