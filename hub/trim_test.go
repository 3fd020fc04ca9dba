package hub

import (
	"slices"
	"testing"
)

func TestTrim(t *testing.T) {
	for _, tc := range []struct {
		name     string
		trims    []uint64 // applied in order to a hub holding 1..10
		wantFrom uint64   // first event left in the history; 11 = none
		covers   uint64   // lowest cursor Since still answers for
	}{
		{"nothing gone (stream starts at 1)", []uint64{1}, 1, 0},
		{"empty stream reports 0", []uint64{0}, 1, 0},
		{"oldest message deleted", []uint64{2}, 2, 1},
		{"purge keeping three", []uint64{8}, 8, 7},
		{"purge of everything", []uint64{11}, 11, 10},
		{"first sequence beyond the position", []uint64{15}, 11, 14},
		{"an older first sequence does not undo a trim", []uint64{6, 3}, 6, 5},
		{"successive trims", []uint64{3, 5, 9}, 9, 8},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newTestHub(t, Config{})
			sub, _ := mustSubscribe(t, h, 0, "a")
			publishRange(h, 1, 10, "a")
			for _, seq := range tc.trims {
				h.Trim(seq)
			}
			if epoch, last := h.Position(); epoch != "ep" || last != 10 {
				t.Fatalf("Trim moved the position to %s %d", epoch, last)
			}
			if isDone(sub) {
				t.Fatalf("Trim ended a subscription: %v", sub.Err())
			}
			wantLen := int(11 - tc.wantFrom)
			if st := h.Stats(); st.RingLen != wantLen || (wantLen == 0) != (st.RingBytes == 0) {
				t.Fatalf("history holds %d events (%d bytes), want %d", st.RingLen, st.RingBytes, wantLen)
			}
			if tc.covers > 0 && tc.covers-1 < 10 {
				if _, covered, _ := h.Since(nil, []string{"a"}, tc.covers-1, 10, 0); covered {
					t.Errorf("Since(%d) is covered: a trimmed range would be served from memory", tc.covers-1)
				}
			}
			if tc.covers <= 10 {
				events, covered, _ := h.Since(nil, []string{"a"}, tc.covers, 10, 0)
				if want := seqRange(tc.wantFrom, 10); !covered || !slices.Equal(seqsOf(events), want) {
					t.Errorf("Since(%d) = %v, covered %v; want %v, covered", tc.covers, seqsOf(events), covered, want)
				}
			}
			// Last cannot claim the whole stream once its head is gone.
			if _, covered := h.Last(nil, []string{"a"}, 20, 10); covered != (tc.covers == 0) {
				t.Errorf("Last(20) covered = %v, want %v", covered, tc.covers == 0)
			}
			next := max(11, tc.covers+1)
			h.Publish(next, "a", "", nil)
			if got, want := seqsOf(sub.Drain(nil)), append(seqRange(1, 10), next); !slices.Equal(got, want) {
				t.Errorf("subscription got %v, want %v (queued events are kept)", got, want)
			}
			if events, covered, _ := h.Since(nil, []string{"a"}, next-1, next, 0); !covered || !slices.Equal(seqsOf(events), []uint64{next}) {
				t.Errorf("live event after the trim: Since(%d) = %v, covered %v", next-1, seqsOf(events), covered)
			}
		})
	}
}

func TestTrimBeforeBegin(t *testing.T) {
	h := New(Config{})
	h.Trim(5)
	h.Begin("ep", 2)
	publishRange(h, 3, 4, "a")
	if events, covered, _ := h.Since(nil, []string{"a"}, 2, 4, 0); !covered || !slices.Equal(seqsOf(events), []uint64{3, 4}) {
		t.Fatalf("a Trim before Begin left a mark: Since(2) = %v, covered %v", seqsOf(events), covered)
	}
}
