package jetstream

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestConnectConfigErrors(t *testing.T) {
	dir := t.TempDir()
	junk := filepath.Join(dir, "junk")
	if err := os.WriteFile(junk, []byte("not a credential"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		cfg  ConnConfig
	}{
		{"no server at all", ConnConfig{}},
		{"missing creds file", ConnConfig{URLs: []string{"nats://127.0.0.1:1"}, CredsFile: filepath.Join(dir, "nope.creds")}},
		{"creds file without credentials", ConnConfig{URLs: []string{"nats://127.0.0.1:1"}, CredsFile: junk}},
		{"missing nkey file", ConnConfig{URLs: []string{"nats://127.0.0.1:1"}, NKeyFile: filepath.Join(dir, "nope.nk")}},
		{"nkey file without a seed", ConnConfig{URLs: []string{"nats://127.0.0.1:1"}, NKeyFile: junk}},
		{"creds and nkey together", ConnConfig{URLs: []string{"nats://127.0.0.1:1"}, CredsFile: junk, NKeyFile: junk}},
		{"unparsable URL", ConnConfig{URLs: []string{"nats://[::1"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Connect(tt.cfg, nil)
			if err == nil {
				c.Close()
				t.Fatal("want an error")
			}
		})
	}
}

// Connect must not wait for a server that is down, and reads must fail fast
// rather than queue behind the reconnect.
func TestConnectWhileServerDown(t *testing.T) {
	e := startServer(t, EmbeddedConfig{Listen: "127.0.0.1:0"})
	url := e.ClientURL()
	e.Shutdown()

	began := time.Now()
	c := connect(t, ConnConfig{URLs: []string{url}})
	if d := time.Since(began); d > 30*time.Second {
		t.Fatalf("Connect blocked for %v with the server down", d)
	}
	if _, err := c.StreamState(ctxFor(t), "ANY"); err == nil {
		t.Fatal("StreamState succeeded without a server")
	}
	err := c.Replay(ctxFor(t), ReplayRequest{Stream: "ANY", Upto: 10}, func([]Message) error { return nil })
	if err == nil {
		t.Fatal("Replay succeeded without a server")
	}
}

func TestCloseEndsTail(t *testing.T) {
	_, c := inProcess(t)
	sink := &recSink{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.Tail(ctxFor(t), TailConfig{Stream: testStream("CL", "cl.>")}, sink)
	}()
	waitFor(t, "the tail to begin", func() bool { return len(sink.resets()) == 1 })
	c.Close()
	select {
	case <-done:
	case <-time.After(waitLong):
		t.Fatal("Tail kept running after Close")
	}
}
