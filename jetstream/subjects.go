package jetstream

import (
	"slices"

	"github.com/caddy-sse/caddy-sse/hub"
)

// missingSubjects returns the subjects of want that no subject of have covers.
func missingSubjects(have, want []string) []string {
	var missing []string
	for _, w := range want {
		if !slices.ContainsFunc(have, func(h string) bool { return hub.Covers(h, w) }) {
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
			if i == j || !hub.Covers(g, f) {
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
