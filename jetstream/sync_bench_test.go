package jetstream

import (
	"context"
	"testing"
	"time"
)

// BenchmarkPublishSync measures one acknowledged publish to a file stream of the embedded server under each
// sync setting: "always" fsyncs before every acknowledgement, an interval syncs in the background.
//
//	go test ./jetstream -run xxx -bench PublishSync -benchtime 3000x
//
// The store is under the test's temporary directory: point TMPDIR at the disk you want to measure.
func BenchmarkPublishSync(b *testing.B) {
	settings := []struct {
		name string
		cfg  EmbeddedConfig
	}{
		{"always", EmbeddedConfig{SyncAlways: true}},
		{"interval=1s", EmbeddedConfig{SyncInterval: time.Second}},
		{"interval=2m(nats-default)", EmbeddedConfig{}},
	}
	payload := make([]byte, 256)
	for _, s := range settings {
		b.Run(s.name, func(b *testing.B) {
			s.cfg.StoreDir = b.TempDir()
			e, err := StartEmbedded(s.cfg, nil)
			if err != nil {
				b.Fatal(err)
			}
			defer e.Shutdown()
			c, err := Connect(ConnConfig{Embedded: e}, nil)
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			defer cancel()
			if _, err := c.waitConnected(ctx); err != nil {
				b.Fatal(err)
			}
			if _, err := c.EnsureStream(ctx, StreamConfig{Name: "BENCH", Subjects: []string{"bench.>"}}); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(payload)))
			b.ResetTimer()
			for range b.N {
				if _, _, err := c.Publish(ctx, "bench.x", "", "", payload); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
