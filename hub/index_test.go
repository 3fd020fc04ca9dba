package hub

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/caddy-sse/caddy-sse/subject"
)

// TestIndexAgreesWithMatch registers random patterns, removes some, and
// checks after each step that the trie finds exactly the subscriptions whose
// patterns match, once each, and that removal prunes every node.
func TestIndexAgreesWithMatch(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	tokens := []string{"a", "b", "c", "*", ">"}
	patterns := allPatterns(tokens, 4)
	subjects := allPatterns([]string{"a", "b", "c", "d"}, 5)

	x := newIndex()
	type reg struct {
		sub  *Subscription
		pats []string
	}
	var regs []reg
	for i := range 300 {
		r := reg{sub: &Subscription{setPos: i}}
		for range 1 + rng.IntN(3) { // overlapping patterns on purpose
			p := patterns[rng.IntN(len(patterns))]
			r.pats = append(r.pats, p)
			x.insert(r.sub, p)
		}
		regs = append(regs, r)
	}
	seq := uint64(0)
	check := func(step string) {
		t.Helper()
		for _, s := range subjects {
			seq++
			got := map[*Subscription]int{}
			for _, sub := range x.collect(nil, s, seq) {
				got[sub]++
			}
			for _, r := range regs {
				want := 0
				if matchAny(r.pats, s) {
					want = 1
				}
				if got[r.sub] != want {
					t.Fatalf("%s: subject %q, patterns %q: found %d times, want %d", step, s, r.pats, got[r.sub], want)
				}
			}
		}
	}
	check("all registered")
	rng.Shuffle(len(regs), func(i, j int) { regs[i], regs[j] = regs[j], regs[i] })
	for len(regs) > 0 {
		n := min(len(regs), 50)
		for _, r := range regs[:n] {
			x.remove(r.sub)
		}
		regs = regs[n:]
		check(fmt.Sprintf("%d left", len(regs)))
	}
	if r := x.root; len(r.literal) != 0 || r.starChild != nil || len(r.rest) != 0 || len(r.exact) != 0 {
		t.Fatalf("index not pruned to an empty root: %+v", r)
	}
}

func TestEventRing(t *testing.T) {
	r := newEventRing(3)
	ev := func(seq uint64) *Event { return &Event{Seq: seq} }
	seqs := func() []uint64 {
		var out []uint64
		for i := range r.len() {
			out = append(out, r.at(i).Seq)
		}
		return out
	}
	r.push(ev(1))
	r.push(ev(2))
	r.popFront()
	r.push(ev(3))
	r.push(ev(4)) // wraps around
	if !r.full() || fmt.Sprint(seqs()) != "[2 3 4]" {
		t.Fatalf("ring holds %v, full=%v", seqs(), r.full())
	}
	for _, tc := range []struct {
		seq  uint64
		want int
	}{{0, 0}, {1, 0}, {2, 1}, {3, 2}, {4, 3}, {9, 3}} {
		if got := r.search(tc.seq); got != tc.want {
			t.Errorf("search(%d) = %d, want %d", tc.seq, got, tc.want)
		}
	}
	got := r.drainTo(nil)
	if len(got) != 3 || got[0].Seq != 2 || got[2].Seq != 4 || r.len() != 0 {
		t.Fatalf("drainTo = %v, ring len %d", got, r.len())
	}
	for _, e := range r.buf {
		if e != nil {
			t.Fatal("drained ring still references an event")
		}
	}
}

// allPatterns lists the valid patterns of 1 to n tokens from tokens.
func allPatterns(tokens []string, n int) []string {
	var out []string
	level := []string{""}
	for range n {
		var next []string
		for _, prefix := range level {
			for _, tok := range tokens {
				p := tok
				if prefix != "" {
					p = prefix + "." + tok
				}
				if subject.ValidPattern(p) {
					out = append(out, p)
					next = append(next, p)
				}
			}
		}
		level = next
	}
	return out
}

// FuzzIndexAgreesWithMatch: the index finds a pattern for exactly the subjects subject.Match says it matches.
func FuzzIndexAgreesWithMatch(f *testing.F) {
	f.Add("a.*.c", "a.b.c")
	f.Add("a.>", "a.b.c")
	f.Add("*", "")
	f.Add(">", ".")
	f.Fuzz(func(t *testing.T, pattern, subj string) {
		if !subject.ValidPattern(pattern) {
			return
		}
		x := newIndex()
		x.insert(&Subscription{}, pattern)
		found := len(x.collect(nil, subj, 1)) == 1
		if want := subject.Match(pattern, subj); found != want {
			t.Fatalf("index finds %q for subject %q: %v, Match says %v", pattern, subj, found, want)
		}
	})
}
