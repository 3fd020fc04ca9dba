package subject

import (
	"slices"
	"strings"
	"testing"
)

func TestValidSubjectAndPattern(t *testing.T) {
	for _, tc := range []struct {
		in               string
		subject, pattern bool
	}{
		{"a", true, true},
		{"orders.eu.42", true, true},
		{"a-b_c.D9.ü", true, true},
		{"a*.b>", true, true}, // wildcards only as whole tokens
		{"*", false, true},
		{">", false, true},
		{"a.*.c", false, true},
		{"a.>", false, true},
		{"*.*.>", false, true},
		{"a.>.c", false, false},
		{">.a", false, false},
		{"", false, false},
		{".", false, false},
		{"a.", false, false},
		{".a", false, false},
		{"a..b", false, false},
		{"a b", false, false},
		{"a\tb", false, false},
		{"a\nb", false, false},
		{"a\x00", false, false},
		{"a\x7f", false, false},
	} {
		if got := Valid(tc.in); got != tc.subject {
			t.Errorf("Valid(%q) = %v, want %v", tc.in, got, tc.subject)
		}
		if got := ValidPattern(tc.in); got != tc.pattern {
			t.Errorf("ValidPattern(%q) = %v, want %v", tc.in, got, tc.pattern)
		}
	}
}

var matchCases = []struct {
	pattern, subject string
	want             bool
}{
	{"a", "a", true},
	{"a", "b", false},
	{"a", "a.b", false},
	{"a.b", "a", false},
	{"a.b", "a.b", true},
	{"ab", "a", false},
	{"a", "ab", false},
	{"*", "a", true},
	{"*", "a.b", false},
	{"a.*", "a.b", true},
	{"a.*", "a", false},
	{"a.*", "a.b.c", false},
	{"*.b", "a.b", true},
	{"*.b", "a.c", false},
	{"*.*", "a.b", true},
	{">", "a", true},
	{">", "a.b.c", true},
	{"a.>", "a", false},
	{"a.>", "a.b", true},
	{"a.>", "a.b.c", true},
	{"a.>", "b.c", false},
	{"*.>", "a", false},
	{"*.>", "a.b", true},
	{"a.*.>", "a.b.c.d", true},
	{"a.*.c", "a.b.c", true},
	{"a.*.c", "a.b.d", false},
	{"a*", "ab", false},      // literal token "a*"
	{"a*", "a*", true},       // ... which matches itself
	{"a.b", "a.*", false},    // subject tokens are literal
	{"a.>.c", "a.>.c", true}, // a non-final '>' is a literal
	{"a.>.c", "a.b.c", false},
}

func TestMatch(t *testing.T) {
	for _, tc := range matchCases {
		if got := Match(tc.pattern, tc.subject); got != tc.want {
			t.Errorf("Match(%q, %q) = %v, want %v", tc.pattern, tc.subject, got, tc.want)
		}
		if got := refMatch(tc.pattern, tc.subject); got != tc.want {
			t.Errorf("refMatch(%q, %q) = %v, want %v", tc.pattern, tc.subject, got, tc.want)
		}
	}
	if n := testing.AllocsPerRun(100, func() { matchSink = Match("a.*.c.>", "a.b.c.d.e") }); n != 0 {
		t.Errorf("Match allocates %v times", n)
	}
}

// refMatch is the obvious definition of Match: split and compare.
func refMatch(pattern, subject string) bool {
	p, s := strings.Split(pattern, "."), strings.Split(subject, ".")
	for i, pt := range p {
		if pt == ">" && i == len(p)-1 {
			return len(s) > i
		}
		if i >= len(s) || (pt != "*" && pt != s[i]) {
			return false
		}
	}
	return len(p) == len(s)
}

func FuzzMatch(f *testing.F) {
	for _, tc := range matchCases {
		f.Add(tc.pattern, tc.subject)
	}
	f.Add("", "")
	f.Add("a..b", "a..b")
	f.Add("*", "")
	f.Add(">", ".")
	f.Fuzz(func(t *testing.T, pattern, subject string) {
		want := refMatch(pattern, subject)
		if got := Match(pattern, subject); got != want {
			t.Fatalf("Match(%q, %q) = %v, reference says %v", pattern, subject, got, want)
		}
		if !ValidPattern(pattern) {
			return
		}
		if Valid(subject) && want && !Covers(pattern, subject) {
			t.Fatalf("Covers(%q, %q) = false but it matches", pattern, subject)
		}
	})
}

func TestCovers(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want bool
	}{
		{"a.b", "a.b", true},
		{"a.b", "a.c", false},
		{"a.*", "a.b", true},
		{"a.b", "a.*", false},
		{"a.*", "a.*", true},
		{"*.*", "a.*", true},
		{"a.*", "*.*", false},
		{">", "a", true},
		{">", "*.>", true},
		{">", ">", true},
		{"*.>", ">", false},
		{"a.>", "a.b.c", true},
		{"a.>", "a.*.>", true},
		{"a.*.>", "a.>", false},
		{"a.>", "a", false},
		{"a.*", "a.>", false},
		{"*", ">", false},
		{"a.*.c", "a.b.c", true},
		{"a.*.c", "a.b.*", false},
		{"a.b", "a.b.c", false},
		{"a.b.c", "a.b", false},
	} {
		if got := Covers(tc.a, tc.b); got != tc.want {
			t.Errorf("Covers(%q, %q) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
}

// TestCoversExhaustive checks Covers against its definition on every small
// pattern: a covers b when every subject b matches, a matches too.
func TestCoversExhaustive(t *testing.T) {
	patterns := allPatterns([]string{"a", "b", "*", ">"}, 3)
	subjects := allPatterns([]string{"a", "b", "c"}, 4) // "c" is in no pattern
	for _, a := range patterns {
		for _, b := range patterns {
			want := true
			for _, s := range subjects {
				if Match(b, s) && !Match(a, s) {
					want = false
					break
				}
			}
			if got := Covers(a, b); got != want {
				t.Errorf("Covers(%q, %q) = %v, want %v", a, b, got, want)
			}
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
				if ValidPattern(p) {
					out = append(out, p)
					next = append(next, p)
				}
			}
		}
		level = next
	}
	return out
}

func TestMinimal(t *testing.T) {
	for _, tc := range []struct {
		in, want []string
	}{
		{nil, []string{}},
		{[]string{"a.b"}, []string{"a.b"}},
		{[]string{"a.b", "a.b"}, []string{"a.b"}},
		{[]string{"a.b", "a.*"}, []string{"a.*"}},
		{[]string{"a.>", "a.b.c", "a.*"}, []string{"a.>"}},
		{[]string{"a.*.c", "a.b.*"}, []string{"a.*.c", "a.b.*"}}, // overlap, neither covers the other
		{[]string{"x", "a.>", "x", "b"}, []string{"x", "a.>", "b"}},
	} {
		if got := Minimal(tc.in); !slices.Equal(got, tc.want) {
			t.Errorf("Minimal(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestMissing(t *testing.T) {
	for _, tc := range []struct {
		have, want, missing []string
	}{
		{[]string{"a.>"}, []string{"a.b", "b.c"}, []string{"b.c"}},
		{nil, []string{"a"}, []string{"a"}},
		{[]string{"a.*"}, []string{"a.b.c"}, []string{"a.b.c"}},
		{[]string{"a.*", "b.>"}, []string{"a.x", "b.y.z"}, nil},
	} {
		if got := Missing(tc.have, tc.want); !slices.Equal(got, tc.missing) {
			t.Errorf("Missing(%q, %q) = %q, want %q", tc.have, tc.want, got, tc.missing)
		}
	}
}

var matchSink bool

func BenchmarkMatch(b *testing.B) {
	for _, bc := range []struct{ name, pattern, subject string }{
		{"literal-equal", "orders.eu.created", "orders.eu.created"},
		{"literal-mismatch-first", "orders.eu.created", "users.eu.created"},
		{"star", "orders.*.created", "orders.eu.created"},
		{"tail", "orders.>", "orders.eu.created.v2"},
		{"long-star", "a.*.c.*.e.*.g", "a.b.c.d.e.f.g"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				matchSink = Match(bc.pattern, bc.subject)
			}
		})
	}
}
