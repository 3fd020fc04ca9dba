package hub

import (
	"fmt"
	"slices"
	"testing"
)

// replayHub holds seqs 1..10 published on a/b alternately (odd a, even b)
// in a history of 6, so it keeps 5..10 and floor is 4.
func replayHub(t *testing.T) *Hub {
	h := newTestHub(t, Config{RingSize: 6})
	for seq := uint64(1); seq <= 10; seq++ {
		subject := "b"
		if seq%2 == 1 {
			subject = "a"
		}
		h.Publish(seq, subject, "", nil)
	}
	return h
}

func TestSince(t *testing.T) {
	for _, tc := range []struct {
		patterns          []string
		after, upto       uint64
		limit             int
		want              []uint64
		covered, overLimt bool
	}{
		{[]string{"a"}, 4, 10, 0, []uint64{5, 7, 9}, true, false},
		{[]string{"a", "b"}, 4, 10, 0, []uint64{5, 6, 7, 8, 9, 10}, true, false},
		{[]string{">", "a"}, 6, 8, 0, []uint64{7, 8}, true, false},
		{[]string{"b"}, 9, 10, 0, []uint64{10}, true, false},
		{[]string{"c"}, 4, 10, 0, []uint64{}, true, false},
		{[]string{"a"}, 3, 10, 0, []uint64{}, false, false}, // seq 4 evicted
		{[]string{"a"}, 0, 10, 0, []uint64{}, false, false}, // long evicted
		{[]string{"a"}, 4, 11, 0, []uint64{}, false, false}, // beyond last
		{[]string{"a"}, 10, 10, 0, []uint64{}, true, false}, // empty range
		{[]string{"a"}, 12, 10, 0, []uint64{}, true, false}, // inverted range
		{[]string{"a"}, 4, 10, 3, []uint64{5, 7, 9}, true, false},
		{[]string{"a"}, 4, 10, 2, []uint64{}, true, true},
		{[]string{"a", "b"}, 4, 8, 4, []uint64{5, 6, 7, 8}, true, false},
		{[]string{"a", "b"}, 4, 9, 4, []uint64{}, true, true},
	} {
		t.Run(fmt.Sprintf("%v_%d-%d_limit%d", tc.patterns, tc.after, tc.upto, tc.limit), func(t *testing.T) {
			h := replayHub(t)
			sentinel := &Event{Seq: 99}
			events, covered, over := h.Since([]*Event{sentinel}, tc.patterns, tc.after, tc.upto, tc.limit)
			if events[0] != sentinel {
				t.Fatal("dst overwritten")
			}
			if got := seqsOf(events[1:]); !slices.Equal(got, tc.want) || covered != tc.covered || over != tc.overLimt {
				t.Fatalf("Since = %v, covered %v, overLimit %v; want %v, %v, %v", got, covered, over, tc.want, tc.covered, tc.overLimt)
			}
		})
	}
}

func TestSinceBeforeBegin(t *testing.T) {
	h := New(Config{})
	if _, covered, _ := h.Since(nil, []string{">"}, 0, 1, 0); covered {
		t.Fatal("a hub that has not begun claims to cover a replay")
	}
	if _, covered := h.Last(nil, []string{">"}, 1, 0); covered {
		t.Fatal("a hub that has not begun claims to cover Last")
	}
}

func TestLast(t *testing.T) {
	for _, tc := range []struct {
		patterns []string
		n        int
		upto     uint64
		want     []uint64
		covered  bool
	}{
		{[]string{"a"}, 2, 10, []uint64{7, 9}, true},
		{[]string{"a", "b"}, 3, 10, []uint64{8, 9, 10}, true},
		{[]string{"b"}, 2, 9, []uint64{6, 8}, true},
		{[]string{"a"}, 3, 10, []uint64{5, 7, 9}, true},
		{[]string{"a"}, 4, 10, []uint64{}, false}, // the 4th may have been evicted
		{[]string{"c"}, 1, 10, []uint64{}, false},
		{[]string{"a"}, 1, 11, []uint64{}, false}, // beyond last
		{[]string{"a"}, 0, 10, []uint64{}, true},
	} {
		t.Run(fmt.Sprintf("%v_%d_upto%d", tc.patterns, tc.n, tc.upto), func(t *testing.T) {
			h := replayHub(t)
			sentinel := &Event{Seq: 99}
			events, covered := h.Last([]*Event{sentinel}, tc.patterns, tc.n, tc.upto)
			if events[0] != sentinel {
				t.Fatal("dst overwritten")
			}
			if got := seqsOf(events[1:]); !slices.Equal(got, tc.want) || covered != tc.covered {
				t.Fatalf("Last = %v, covered %v; want %v, %v", got, covered, tc.want, tc.covered)
			}
		})
	}
}

// TestLastWholeStream: with nothing evicted since the stream's start, fewer
// than n matches is a complete answer.
func TestLastWholeStream(t *testing.T) {
	h := newTestHub(t, Config{})
	publishRange(h, 1, 3, "a")
	events, covered := h.Last(nil, []string{"a"}, 10, 3)
	if !covered || !slices.Equal(seqsOf(events), []uint64{1, 2, 3}) {
		t.Fatalf("Last = %v, covered %v", seqsOf(events), covered)
	}
	h.Begin("ep", 50) // the stream had events the history never saw
	publishRange(h, 51, 52, "a")
	if events, covered := h.Last(nil, []string{"a"}, 10, 52); covered {
		t.Fatalf("Last after Begin(50) = %v covered, want not covered", seqsOf(events))
	}
}

// TestReplaySpansChunks compares Since and Last with a brute-force scan on a
// history several scan chunks long.
func TestReplaySpansChunks(t *testing.T) {
	const ringSize, published = 5*scanChunk + 17, 7 * scanChunk
	h := newTestHub(t, Config{RingSize: ringSize})
	subjects := make([]string, published+1)
	for seq := 1; seq <= published; seq++ {
		subjects[seq] = fmt.Sprintf("s.%d", seq*7%13)
		h.Publish(uint64(seq), subjects[seq], "", nil)
	}
	floor := uint64(published - ringSize)
	patterns := []string{"s.3", "s.1*", "s.12"} // "s.1*" is a literal: matches nothing
	matching := func(from, to uint64) []uint64 {
		out := []uint64{}
		for s := from; s <= to; s++ {
			if matchAny(patterns, subjects[s]) {
				out = append(out, s)
			}
		}
		return out
	}
	for _, after := range []uint64{floor, floor + 1, floor + scanChunk - 1, floor + scanChunk, published - 3} {
		for _, upto := range []uint64{after + 1, after + scanChunk, published} {
			if upto > published {
				continue
			}
			want := matching(after+1, upto)
			got, covered, over := h.Since(nil, patterns, after, upto, 0)
			if !covered || over || !slices.Equal(seqsOf(got), want) {
				t.Fatalf("Since(%d, %d) = %v, %v, %v; want %v", after, upto, seqsOf(got), covered, over, want)
			}
			if len(want) > 1 {
				if _, covered, over := h.Since(nil, patterns, after, upto, len(want)-1); !covered || !over {
					t.Fatalf("Since(%d, %d, limit %d): overLimit not reported", after, upto, len(want)-1)
				}
			}
		}
	}
	// 2 subjects in 13 match, so len(all)/2 matches span about 3 chunks.
	all := matching(floor+1, published)
	for _, n := range []int{1, 40, len(all) / 2, len(all)} {
		got, covered := h.Last(nil, patterns, n, published)
		if !covered || !slices.Equal(seqsOf(got), all[len(all)-n:]) {
			t.Fatalf("Last(%d) = %v, %v; want %v", n, seqsOf(got), covered, all[len(all)-n:])
		}
	}
	if got, covered := h.Last(nil, patterns, len(all)+1, published); covered {
		t.Fatalf("Last beyond the history = %v, covered", seqsOf(got))
	}
}
