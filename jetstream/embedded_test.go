package jetstream

import (
	"net"
	"strings"
	"testing"
)

func TestEmbeddedStartAndShutdown(t *testing.T) {
	tests := []struct {
		name   string
		listen string
	}{
		{"in-process only", ""},
		{"loopback listener on a free port", "127.0.0.1:0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := startServer(t, EmbeddedConfig{Listen: tt.listen})
			url := e.ClientURL()
			var cfg ConnConfig
			if tt.listen == "" {
				if url != "" {
					t.Fatalf("ClientURL() = %q, want empty without a listener", url)
				}
				cfg.Embedded = e
			} else {
				if !strings.HasPrefix(url, "nats://127.0.0.1:") || strings.HasSuffix(url, ":0") || strings.HasSuffix(url, ":4222") {
					t.Fatalf("ClientURL() = %q, want a loopback URL with the picked port", url)
				}
				cfg.URLs = []string{url}
			}
			c := connect(t, cfg)
			waitConnected(t, c)
			ensure(t, c, testStream("EMB", "emb.>"))
			if seq := publish(t, c, "emb.x", "", "hello"); seq != 1 {
				t.Fatalf("first publish got seq %d", seq)
			}
			e.Shutdown()
			e.Shutdown() // idempotent
			if tt.listen != "" {
				if conn, err := net.Dial("tcp", strings.TrimPrefix(url, "nats://")); err == nil {
					conn.Close()
					t.Fatalf("%s still accepts connections after Shutdown", url)
				}
			}
		})
	}
}

func TestEmbeddedTwoServersInOneProcess(t *testing.T) {
	a := startServer(t, EmbeddedConfig{Listen: "127.0.0.1:0"})
	b := startServer(t, EmbeddedConfig{Listen: "127.0.0.1:0"})
	if a.ClientURL() == b.ClientURL() {
		t.Fatalf("both servers report %s", a.ClientURL())
	}
	for i, e := range []*Embedded{a, b} {
		c := connect(t, ConnConfig{URLs: []string{e.ClientURL()}})
		waitConnected(t, c)
		ensure(t, c, testStream("TWO", "two.>"))
		for range i + 1 {
			publish(t, c, "two.x", "", "x")
		}
		st, err := c.StreamState(ctxFor(t), "TWO")
		if err != nil {
			t.Fatal(err)
		}
		if st.LastSeq != uint64(i+1) {
			t.Fatalf("server %d: LastSeq %d, want %d (servers share state?)", i, st.LastSeq, i+1)
		}
	}
}

func TestEmbeddedStoreDirIsExclusive(t *testing.T) {
	dir := t.TempDir()
	e := startServer(t, EmbeddedConfig{StoreDir: dir})
	if _, err := StartEmbedded(EmbeddedConfig{StoreDir: dir}, testLogger(t)); err == nil {
		t.Fatal("a second server on the same store directory was started")
	}
	e.Shutdown()
	again := startServer(t, EmbeddedConfig{StoreDir: dir})
	again.Shutdown()
}

func TestEmbeddedConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  EmbeddedConfig
	}{
		{"no store dir", EmbeddedConfig{}},
		{"listen without port", EmbeddedConfig{StoreDir: t.TempDir(), Listen: "127.0.0.1"}},
		{"bad port", EmbeddedConfig{StoreDir: t.TempDir(), Listen: "127.0.0.1:http"}},
		{"port out of range", EmbeddedConfig{StoreDir: t.TempDir(), Listen: "127.0.0.1:70000"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := StartEmbedded(tt.cfg, nil)
			if err == nil {
				e.Shutdown()
				t.Fatal("want an error")
			}
		})
	}
}

func TestEmbeddedPortTakenFailsFast(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	_, err = StartEmbedded(EmbeddedConfig{Listen: taken.Addr().String(), StoreDir: t.TempDir()}, testLogger(t))
	if err == nil || !strings.Contains(err.Error(), "cannot listen on "+taken.Addr().String()) {
		t.Fatalf("error %v, want a clear listen failure", err)
	}
}
