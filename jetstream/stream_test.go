package jetstream

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/caddy-sse/caddy-sse/eventid"
	natsjs "github.com/nats-io/nats.go/jetstream"
)

func TestEnsureStreamCreatesWithDefaults(t *testing.T) {
	tests := []struct {
		name        string
		cfg         StreamConfig
		wantStorage natsjs.StorageType
	}{
		{"file", StreamConfig{Name: "FILE", Subjects: []string{"f.>"}, MaxBytes: 1 << 20}, natsjs.FileStorage},
		{"memory", StreamConfig{Name: "MEM", Subjects: []string{"m.>"}, MaxBytes: 1 << 20, Memory: true}, natsjs.MemoryStorage},
	}
	_, c := inProcess(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := time.Now()
			st := ensure(t, c, tt.cfg)
			if st.Epoch == "" || st.Created.Before(before.Add(-time.Minute)) || st.LastSeq != 0 {
				t.Fatalf("state of a new stream: %+v", st)
			}
			if st.Epoch != eventid.Epoch(st.Created) {
				t.Fatalf("epoch %q does not match creation time %v", st.Epoch, st.Created)
			}
			got := jsStream(t, c, tt.cfg.Name).CachedInfo().Config
			if got.Metadata[managedKey] != managedValue {
				t.Errorf("metadata %v lacks the caddy-sse mark", got.Metadata)
			}
			if !got.AllowDirect || got.Storage != tt.wantStorage || got.MaxAge != DefaultMaxAge ||
				got.MaxMsgs != -1 || got.MaxBytes != 1<<20 || got.Replicas != 1 || got.Discard != natsjs.DiscardOld {
				t.Errorf("config not as asked: %+v", got)
			}
			again := ensure(t, c, tt.cfg)
			if again.Epoch != st.Epoch {
				t.Fatalf("second EnsureStream changed the epoch: %q → %q", st.Epoch, again.Epoch)
			}
		})
	}
}

func TestEnsureStreamAddsMissingSubjects(t *testing.T) {
	_, c := inProcess(t)
	first := ensure(t, c, testStream("ADD", "add.a.>", "add.b"))
	publish(t, c, "add.b", "", "1")

	tests := []struct {
		name     string
		subjects []string
		want     []string
	}{
		{"covered subject is not added", []string{"add.a.x", "add.b"}, []string{"add.a.>", "add.b"}},
		{"missing subjects are appended", []string{"add.a.>", "add.c", "add.d.*"}, []string{"add.a.>", "add.b", "add.c", "add.d.*"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := ensure(t, c, testStream("ADD", tt.subjects...))
			if st.Epoch != first.Epoch || st.LastSeq != 1 {
				t.Fatalf("update changed the incarnation or lost data: %+v, first %+v", st, first)
			}
			got := jsStream(t, c, "ADD").CachedInfo().Config.Subjects
			if !slices.Equal(got, tt.want) {
				t.Fatalf("subjects %q, want %q", got, tt.want)
			}
		})
	}
	publish(t, c, "add.c", "", "captured now")
}

func TestEnsureStreamLeavesForeignStreamAlone(t *testing.T) {
	_, c := inProcess(t)
	foreign := natsjs.StreamConfig{Name: "FOREIGN", Subjects: []string{"app.orders"}, MaxAge: time.Hour}
	if _, err := c.js.CreateStream(ctxFor(t), foreign); err != nil {
		t.Fatal(err)
	}
	st := ensure(t, c, StreamConfig{Name: "FOREIGN", Subjects: []string{"app.orders", "app.users"}, MaxAge: 48 * time.Hour})
	if st.Epoch == "" {
		t.Fatalf("no state for a foreign stream: %+v", st)
	}
	got := jsStream(t, c, "FOREIGN").CachedInfo().Config
	if !slices.Equal(got.Subjects, foreign.Subjects) || got.MaxAge != time.Hour || got.Metadata[managedKey] != "" || got.AllowDirect {
		t.Fatalf("foreign stream was changed: %+v", got)
	}
}

func TestEnsureStreamErrors(t *testing.T) {
	_, c := inProcess(t)
	if _, err := c.EnsureStream(ctxFor(t), StreamConfig{Name: "NOSUBJ"}); !errors.Is(err, ErrNoStream) {
		t.Errorf("missing stream without subjects: %v, want ErrNoStream", err)
	}
	if _, err := c.EnsureStream(ctxFor(t), StreamConfig{Subjects: []string{"x"}}); err == nil {
		t.Error("empty name accepted")
	}
	// A managed stream whose new subject belongs to another stream: the
	// update fails and EnsureStream says so.
	ensure(t, c, testStream("OWNER", "owned.>"))
	ensure(t, c, testStream("GREEDY", "greedy.>"))
	if _, err := c.EnsureStream(ctxFor(t), testStream("GREEDY", "greedy.>", "owned.x")); err == nil {
		t.Error("overlapping subject update reported no error")
	}
	if _, err := c.StreamState(ctxFor(t), "NONE"); !errors.Is(err, ErrNoStream) {
		t.Errorf("StreamState of a missing stream: %v, want ErrNoStream", err)
	}
}

func TestStreamStateCarriesLimits(t *testing.T) {
	_, c := inProcess(t)
	tests := []struct {
		name string
		cfg  natsjs.StreamConfig
		want StreamState
	}{
		{"KV style, discard old",
			natsjs.StreamConfig{Name: "LIMKV", Subjects: []string{"limkv.>"}, MaxAge: time.Hour, MaxMsgs: 500, MaxBytes: 1 << 20, MaxMsgsPerSubject: 1},
			StreamState{MaxAge: time.Hour, MaxMsgs: 500, MaxBytes: 1 << 20, MaxMsgsPerSubject: 1}},
		{"discard new per subject",
			natsjs.StreamConfig{Name: "LIMNEW", Subjects: []string{"limnew.>"}, MaxMsgsPerSubject: 2, Discard: natsjs.DiscardNew, DiscardNewPerSubject: true},
			StreamState{MaxMsgs: -1, MaxBytes: -1, MaxMsgsPerSubject: 2, DiscardNew: true, DiscardNewPerSubject: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := c.js.CreateStream(ctxFor(t), tt.cfg); err != nil {
				t.Fatal(err)
			}
			publish(t, c, tt.cfg.Subjects[0][:len(tt.cfg.Subjects[0])-1]+"a", "", "12345")
			st, err := c.StreamState(ctxFor(t), tt.cfg.Name)
			if err != nil {
				t.Fatal(err)
			}
			if st.Msgs != 1 || st.Bytes == 0 || st.FirstSeq != 1 || st.LastSeq != 1 || time.Since(st.LastTime) > time.Minute {
				t.Errorf("counts: %+v", st)
			}
			got := st
			got.Epoch, got.Created, got.FirstSeq, got.LastSeq, got.LastTime, got.Msgs, got.Bytes = "", time.Time{}, 0, 0, time.Time{}, 0, 0
			if got != tt.want {
				t.Errorf("limits %+v, want %+v", got, tt.want)
			}
		})
	}
}
