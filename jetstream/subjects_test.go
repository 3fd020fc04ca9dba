package jetstream

import (
	"slices"
	"testing"
)

func TestMinimalFilters(t *testing.T) {
	tests := []struct {
		in, want []string
	}{
		{nil, []string{}},
		{[]string{"a.b"}, []string{"a.b"}},
		{[]string{"a.b", "a.b"}, []string{"a.b"}},
		{[]string{"a.b", "a.*"}, []string{"a.*"}},
		{[]string{"a.>", "a.b", "a.*", "c"}, []string{"a.>", "c"}},
		{[]string{"a.*.c", "a.b.*"}, []string{"a.*.c", "a.b.*"}}, // overlap, neither covers the other
	}
	for _, tt := range tests {
		if got := minimalFilters(tt.in); !slices.Equal(got, tt.want) {
			t.Errorf("minimalFilters(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestMissingSubjects(t *testing.T) {
	got := missingSubjects([]string{"ev.>", "other.x"}, []string{"ev.a", "other.x", "other.y", "new.>"})
	if want := []string{"other.y", "new.>"}; !slices.Equal(got, want) {
		t.Fatalf("missingSubjects = %q, want %q", got, want)
	}
}
