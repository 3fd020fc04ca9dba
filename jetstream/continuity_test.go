package jetstream

import (
	"testing"
	"time"
)

func TestHistoryLost(t *testing.T) {
	now := time.Date(2026, 1, 2, 12, 0, 0, 0, time.UTC)
	created := now.Add(-48 * time.Hour)
	recent := now.Add(-time.Minute)
	kv := func(mod func(*StreamState)) StreamState {
		st := StreamState{Created: created, FirstSeq: 50, LastSeq: 60, Msgs: 1, Bytes: 100,
			MaxMsgsPerSubject: 1, MaxMsgs: -1, MaxBytes: -1}
		if mod != nil {
			mod(&st)
		}
		return st
	}
	plain := func(mod func(*StreamState)) StreamState {
		st := kv(mod)
		st.MaxMsgsPerSubject = -1
		return st
	}
	tests := []struct {
		name     string
		st       StreamState
		after    uint64
		lastRead time.Time
		want     bool
	}{
		{"head not past the reader: interior gap", plain(func(s *StreamState) { s.FirstSeq = 10 }), 20, recent, false},
		{"head just at the next sequence", plain(nil), 49, recent, false},
		{"head at 1, nothing read", plain(func(s *StreamState) { s.FirstSeq = 1 }), 0, time.Time{}, false},
		{"empty stream after the reader's end", plain(func(s *StreamState) { s.FirstSeq = 61; s.Msgs = 0 }), 60, recent, false},
		{"head moved past, no per-subject limit", plain(nil), 20, recent, true},
		{"head moved past, per-subject limit refuses new", kv(func(s *StreamState) { s.DiscardNew, s.DiscardNewPerSubject = true, true }), 20, recent, true},
		{"KV supersession, no other limit", kv(nil), 20, recent, false},
		{"KV supersession, nothing read yet", kv(nil), 0, time.Time{}, false},
		{"KV, MaxAge ruled out by the last read", kv(func(s *StreamState) { s.MaxAge = time.Hour }), 20, recent, false},
		{"KV, MaxAge could have expired them", kv(func(s *StreamState) { s.MaxAge = time.Hour }), 20, now.Add(-2 * time.Hour), true},
		{"KV, MaxAge within clock skew", kv(func(s *StreamState) { s.MaxAge = time.Hour }), 20, now.Add(-time.Hour + clockSkew/2), true},
		{"KV, MaxAge ruled out by creation time", kv(func(s *StreamState) { s.MaxAge = time.Hour; s.Created = recent }), 0, time.Time{}, false},
		{"KV, MaxAge and nothing read on an old stream", kv(func(s *StreamState) { s.MaxAge = time.Hour }), 0, time.Time{}, true},
		{"KV, far from MaxMsgs", kv(func(s *StreamState) { s.MaxMsgs = 1000; s.Msgs = 500 }), 20, recent, false},
		{"KV, at MaxMsgs", kv(func(s *StreamState) { s.MaxMsgs = 1000; s.Msgs = 1000 }), 20, recent, true},
		{"KV, near MaxMsgs", kv(func(s *StreamState) { s.MaxMsgs = 1000; s.Msgs = 950 }), 20, recent, true},
		{"KV, at MaxMsgs with DiscardNew", kv(func(s *StreamState) { s.MaxMsgs = 1000; s.Msgs = 1000; s.DiscardNew = true }), 20, recent, false},
		{"KV, far from MaxBytes", kv(func(s *StreamState) { s.MaxBytes = 1 << 20; s.Msgs = 10; s.Bytes = 1000 }), 20, recent, false},
		{"KV, near MaxBytes", kv(func(s *StreamState) { s.MaxBytes = 1 << 20; s.Msgs = 10; s.Bytes = 1<<20 - 100 }), 20, recent, true},
		{"KV, within two large messages of MaxBytes", kv(func(s *StreamState) { s.MaxBytes = 1000; s.Msgs = 2; s.Bytes = 700 }), 20, recent, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := historyLost(tt.st, tt.after, tt.lastRead, now); got != tt.want {
				t.Errorf("historyLost(%+v, after %d, last read %v) = %v, want %v", tt.st, tt.after, tt.lastRead, got, tt.want)
			}
		})
	}
}

func TestHeadMovesAreHarmless(t *testing.T) {
	now := time.Date(2026, 1, 2, 12, 0, 0, 0, time.UTC)
	recent := now.Add(-time.Minute)
	base := StreamState{Created: now.Add(-48 * time.Hour), MaxMsgsPerSubject: 1, MaxMsgs: -1, MaxBytes: -1}
	with := func(mod func(*StreamState)) StreamState { st := base; mod(&st); return st }
	tests := []struct {
		name     string
		st       StreamState
		lastRead time.Time
		want     bool
	}{
		{"KV style without other limits", base, recent, true},
		{"KV style, MaxAge ruled out", with(func(s *StreamState) { s.MaxAge = time.Hour }), recent, true},
		{"KV style, MaxAge not ruled out", with(func(s *StreamState) { s.MaxAge = time.Hour }), now.Add(-2 * time.Hour), false},
		{"KV style with MaxMsgs: depends on the count", with(func(s *StreamState) { s.MaxMsgs = 1000 }), recent, false},
		{"KV style with MaxBytes: depends on the size", with(func(s *StreamState) { s.MaxBytes = 1 << 20 }), recent, false},
		{"KV style with MaxMsgs, DiscardNew", with(func(s *StreamState) { s.MaxMsgs = 1000; s.DiscardNew = true }), recent, true},
		{"no per-subject limit", with(func(s *StreamState) { s.MaxMsgsPerSubject = -1 }), recent, false},
		{"per-subject limit refusing new messages", with(func(s *StreamState) { s.DiscardNew, s.DiscardNewPerSubject = true, true }), recent, false},
		{"no state read yet", StreamState{}, recent, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := headMovesAreHarmless(tt.st, tt.lastRead, now)
			if got != tt.want {
				t.Fatalf("headMovesAreHarmless = %v, want %v", got, tt.want)
			}
			// Whenever it says so, historyLost agrees for any head and counts.
			if got {
				for _, counts := range []StreamState{{FirstSeq: 100, Msgs: 1 << 40, Bytes: 1 << 50}, {FirstSeq: 1 << 30}} {
					st := tt.st
					st.FirstSeq, st.Msgs, st.Bytes = counts.FirstSeq, counts.Msgs, counts.Bytes
					if historyLost(st, 5, tt.lastRead, now) {
						t.Errorf("historyLost disagrees for %+v", st)
					}
				}
			}
		})
	}
}
