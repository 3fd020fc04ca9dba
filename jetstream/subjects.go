package jetstream

import (
	"slices"
	"strings"
)

// covers reports whether pattern a matches every subject that pattern b
// matches, with NATS wildcards: '*' is one token, '>' one or more trailing
// tokens.
func covers(a, b string) bool {
	at := strings.Split(a, ".")
	bt := strings.Split(b, ".")
	for i, t := range at {
		if t == ">" {
			return i < len(bt) // '>' needs at least one token
		}
		if i >= len(bt) {
			return false
		}
		switch u := bt[i]; {
		case u == ">":
			return false // b reaches arbitrarily deep, a does not
		case t == "*":
			continue
		case u == "*" || t != u:
			return false
		}
	}
	return len(at) == len(bt)
}

// missingSubjects returns the subjects of want that no subject of have covers.
func missingSubjects(have, want []string) []string {
	var missing []string
	for _, w := range want {
		if !slices.ContainsFunc(have, func(h string) bool { return covers(h, w) }) {
			missing = append(missing, w)
		}
	}
	return missing
}

// minimalFilters drops duplicates and filters covered by another one. The
// server refuses a consumer whose filters contain one another, while
// partially overlapping filters are fine (it delivers each message once).
func minimalFilters(filters []string) []string {
	out := make([]string, 0, len(filters))
	for i, f := range filters {
		redundant := false
		for j, g := range filters {
			if i == j || !covers(g, f) {
				continue
			}
			// f is inside g: drop f, unless they are equal and f comes first
			// (then the later copy is the one dropped).
			if f != g || j < i {
				redundant = true
				break
			}
		}
		if !redundant {
			out = append(out, f)
		}
	}
	return out
}
