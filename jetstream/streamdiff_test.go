package jetstream

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	natsjs "github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

func TestStreamDifferences(t *testing.T) {
	created := StreamConfig{Name: "S"}.withDefaults().natsConfig() // what caddy-sse creates with no options
	tests := []struct {
		name    string
		have    natsjs.StreamConfig
		asked   StreamConfig
		managed bool
		want    []string
	}{
		{"defaults match what was created", created, StreamConfig{}, true, nil},
		{"every option differs", created,
			StreamConfig{Replicas: 3, MaxAge: time.Hour, MaxBytes: 1 << 20, Memory: true}, true,
			[]string{"replicas 1, configured 3", "max age 24h0m0s, configured 1h0m0s",
				"max bytes unlimited, configured 1048576", "storage File, configured Memory"}},
		{"managed stream is compared against defaults too",
			natsjs.StreamConfig{Replicas: 3, MaxAge: 0, MaxBytes: 5, Storage: natsjs.MemoryStorage}, StreamConfig{}, true,
			[]string{"replicas 3, configured 1", "max age unlimited, configured 24h0m0s",
				"max bytes 5, configured unlimited", "storage Memory, configured File"}},
		{"foreign stream: options not set are not compared",
			natsjs.StreamConfig{Replicas: 3, MaxAge: 0, MaxBytes: 5, Storage: natsjs.MemoryStorage}, StreamConfig{}, false, nil},
		{"foreign stream: options set are compared",
			natsjs.StreamConfig{Replicas: 3, MaxAge: time.Hour, Storage: natsjs.FileStorage},
			StreamConfig{Replicas: 3, MaxAge: 2 * time.Hour, Memory: true}, false,
			[]string{"max age 1h0m0s, configured 2h0m0s", "storage File, configured Memory"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := streamDifferences(tt.have, tt.asked, tt.managed)
			if !slices.Equal(got, tt.want) {
				t.Fatalf("differences\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

// An existing stream is used as it is, and a warning names each option in which it differs, once while the
// differences stay the same.
func TestEnsureStreamWarnsAboutDifferentOptions(t *testing.T) {
	e := startServer(t, EmbeddedConfig{})
	core, logs := observer.New(zapcore.WarnLevel)
	c, err := Connect(ConnConfig{Embedded: e}, zap.New(core))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)

	first := ensure(t, c, StreamConfig{Name: "OPTS", Subjects: []string{"opts.>"}, MaxAge: time.Hour})
	if n := logs.Len(); n != 0 {
		t.Fatalf("creating the stream warned: %v", logs.All())
	}
	again := ensure(t, c, StreamConfig{Name: "OPTS", Subjects: []string{"opts.>"}, MaxAge: 2 * time.Hour, Memory: true})
	if again.Epoch != first.Epoch {
		t.Fatal("the stream was recreated")
	}
	ensure(t, c, StreamConfig{Name: "OPTS", Subjects: []string{"opts.>"}, MaxAge: 2 * time.Hour, Memory: true}) // the tail checks again
	got := jsStream(t, c, "OPTS").CachedInfo().Config
	if got.MaxAge != time.Hour || got.Storage != natsjs.FileStorage {
		t.Fatalf("the existing stream was changed: %+v", got)
	}
	warned := logs.FilterMessageSnippet("differs from the configured stream options").All()
	if len(warned) != 1 {
		t.Fatalf("want one warning for two checks with the same differences, got %v", logs.All())
	}
	diffs := fmt.Sprint(warned[0].ContextMap()["differences"])
	for _, want := range []string{"max age 1h0m0s, configured 2h0m0s", "storage File, configured Memory"} {
		if !strings.Contains(diffs, want) {
			t.Errorf("warning %q does not name %q", diffs, want)
		}
	}
}
