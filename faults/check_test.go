package faults

import (
	"fmt"
	"testing"
)

// run of 6 events on two subjects a (odd n) and b (even n), seq = n.
func testHistory(gone ...int64) history {
	var pub []published
	var back []stored
	isGone := map[int64]bool{}
	for _, g := range gone {
		isGone[g] = true
	}
	for n := int64(1); n <= 6; n++ {
		subj := "a"
		if n%2 == 0 {
			subj = "b"
		}
		pub = append(pub, published{Subject: subj, Seq: uint64(n), Inc: 1})
		if !isGone[n] {
			back = append(back, stored{Seq: uint64(n), Subject: subj, N: n})
		}
	}
	h := buildHistory(pub, back, nil, 1)
	h.epochInc[epochOf("e")] = 1
	return h
}

func ev(ns ...int64) []received {
	var out []received
	for _, n := range ns {
		out = append(out, received{N: n, Epoch: epochOf("e"), Seq: uint64(n)})
	}
	return out
}

func TestCheckClient(t *testing.T) {
	tests := []struct {
		name   string
		h      history
		topics []string
		events []received
		resets []resetSeen
		want   string // lost dup reordered unexpected false-resets excused
	}{
		{"all in order", testHistory(), nil, ev(1, 2, 3, 4, 5, 6), nil, "[] [] [] 0 map[] 0"},
		{"starts late", testHistory(), nil, ev(3, 4, 5, 6), nil, "[] [] [] 0 map[] 0"},
		{"one subject", testHistory(), []string{"b"}, ev(2, 4, 6), nil, "[] [] [] 0 map[] 0"},
		{"gap", testHistory(), nil, ev(1, 2, 4, 5, 6), nil, "[3] [] [] 0 map[] 0"},
		{"tail missing", testHistory(), nil, ev(1, 2, 3), nil, "[4 5 6] [] [] 0 map[] 0"},
		{"dup", testHistory(), nil, ev(1, 2, 3, 3, 4, 5, 6), nil, "[] [3] [] 0 map[] 0"},
		{"swap", testHistory(), nil, ev(1, 3, 2, 4, 5, 6), nil, "[] [] [2] 0 map[] 0"},
		{"foreign subject", testHistory(), []string{"a"}, ev(1, 2, 3, 5), nil, "[] [] [] 1 map[] 0"},
		{
			"true expiry reset", testHistory(3, 4), nil, ev(1, 2, 5, 6),
			[]resetSeen{{Epoch: epochOf("e"), Seq: 4, Reason: "history-expired", Before: 2}}, "[] [] [] 0 map[] 2",
		},
		{
			"false expiry reset", testHistory(), nil, ev(1, 2, 5, 6),
			[]resetSeen{{Epoch: epochOf("e"), Seq: 4, Reason: "history-expired", Before: 2}},
			"[3 4] [] [] 0 map[history-expired:1] 0",
		},
		{
			"reset replays what the client had", testHistory(), nil, ev(1, 2, 3, 3),
			[]resetSeen{{Epoch: epochOf("e"), Seq: 2, Reason: "too-many-events", Before: 3}},
			"[4 5 6] [3] [] 0 map[too-many-events:1] 0",
		},
		{
			"reset before the first event", testHistory(), nil, ev(3, 4, 5, 6),
			[]resetSeen{{Epoch: epochOf("e"), Seq: 2, Reason: "history-expired", Before: 0}}, "[] [] [] 0 map[] 0",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := checkClient(tc.h, tc.topics, tc.events, tc.resets, 1)
			got := fmt.Sprint(c.Lost, c.Duplicated, c.Reordered, c.Unexpected, c.FalseReset, c.Excused)
			if got != tc.want {
				t.Fatalf("got %s, want %s", got, tc.want)
			}
		})
	}
}

func TestHistoryAckedGone(t *testing.T) {
	h := testHistory(2)
	if h.ackedGone != 1 || len(h.events) != 6 {
		t.Fatalf("ackedGone %d, events %d", h.ackedGone, len(h.events))
	}
}
