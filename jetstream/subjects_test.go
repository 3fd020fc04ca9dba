package jetstream

import (
	"slices"
	"testing"
)

func TestCovers(t *testing.T) {
	tests := []struct {
		a, b string
		want bool
	}{
		{"a.b", "a.b", true},
		{"a.b", "a.c", false},
		{"a.*", "a.b", true},
		{"a.*", "a.*", true},
		{"a.b", "a.*", false},
		{"a.*", "a.b.c", false},
		{"a.>", "a.b", true},
		{"a.>", "a.b.c", true},
		{"a.>", "a.*", true},
		{"a.>", "a.>", true},
		{"a.>", "a", false},
		{"a.*", "a.>", false},
		{"a.*.>", "a.>", false},
		{">", "anything.at.all", true},
		{"*.b", "a.b", true},
		{"*.b", "a.c", false},
		{"a.b.c", "a.b", false},
	}
	for _, tt := range tests {
		if got := covers(tt.a, tt.b); got != tt.want {
			t.Errorf("covers(%q, %q) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
	}
}

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
