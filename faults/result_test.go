package faults

import "testing"

func TestDist(t *testing.T) {
	d := dist([]int64{5, 365, -1})
	if d.N != 2 || d.P50 != 5 || d.P95 != 365 || d.Max != 365 || d.NotLive != 1 {
		t.Fatalf("%+v", d)
	}
}
