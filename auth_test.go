package caddysse

import (
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"testing"

	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"
)

// With auth_token set (from the environment), the embedded server refuses local clients without it, takes
// publishes with it, and the module's own connection still serves streams.
func TestEmbeddedAuthToken(t *testing.T) {
	t.Parallel() // its own Caddy process, ports and directories
	dir := t.TempDir()
	httpPort, adminPort, natsPort := freePort(t), freePort(t), freePort(t)
	config := fmt.Sprintf(`{
	admin localhost:%d
	sse {
		listen 127.0.0.1:%d
		store_dir %s
		auth_token {env.SSE_TEST_NATS_TOKEN}
	}
}

http://localhost:%d {
	sse /events auth.> {
		stream AUTH
		first_event oldest
	}
}
`, adminPort, natsPort, filepath.Join(dir, "js"), httpPort)
	startCaddy(t, dir, config, "SSE_TEST_NATS_TOKEN=tok-123")
	url := fmt.Sprintf("http://localhost:%d/events", httpPort)
	waitServing(t, url)
	natsURL := fmt.Sprintf("nats://127.0.0.1:%d", natsPort)
	// The http app may serve before the sse app has started the embedded server.
	eventually(t, "the embedded server listening", func() bool {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", natsPort))
		if err == nil {
			c.Close()
		}
		return err == nil
	})

	for name, opts := range map[string][]nats.Option{"no token": nil, "wrong token": {nats.Token("guess")}} {
		nc, err := nats.Connect(natsURL, opts...)
		if err == nil {
			nc.Close()
			t.Fatalf("%s: connected to the embedded server", name)
		}
		if !errors.Is(err, nats.ErrAuthorization) {
			t.Fatalf("%s: %v, want an authorization violation", name, err)
		}
	}

	s := openStream(t, url, nil)
	s.waitOpen()
	publisher, err := nats.Connect(natsURL, nats.Token("tok-123"))
	if err != nil {
		t.Fatal(err)
	}
	defer publisher.Close()
	js, err := natsjs.New(publisher)
	if err != nil {
		t.Fatal(err)
	}
	publish(t, js, "auth.x", "", "with the token")
	s.expectData("with the token") // first_event oldest: however the publish and the subscription interleave
}
