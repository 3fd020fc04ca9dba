package main

import (
	"math"
	"math/bits"
	"sync/atomic"
)

// histogram is a lock-free log-linear histogram of non-negative durations in
// nanoseconds: exact below 64 ns, then 32 buckets per power of two (at most
// about 3% relative error), covering the whole int64 range.
type histogram struct {
	counts [histBuckets]atomic.Uint64
	n      atomic.Uint64
	sum    atomic.Int64
	max    atomic.Int64
}

const histBuckets = 64 + 57*32 // int64 values have at most 63 bits

func histIndex(v int64) int {
	if v < 64 {
		return int(max(v, 0))
	}
	s := bits.Len64(uint64(v)) - 6
	return s*32 + int(uint64(v)>>s)
}

// histBounds returns the smallest and largest value that fall in bucket i.
func histBounds(i int) (lo, hi int64) {
	if i < 64 {
		return int64(i), int64(i)
	}
	s := i/32 - 1
	m := int64(i%32 + 32)
	lo = m << s
	if s == 57 && m == 63 { // top bucket: avoid overflow
		return lo, math.MaxInt64
	}
	return lo, (m+1)<<s - 1
}

func (h *histogram) record(v int64) {
	v = max(v, 0)
	h.counts[histIndex(v)].Add(1)
	h.n.Add(1)
	h.sum.Add(v)
	for {
		m := h.max.Load()
		if v <= m || h.max.CompareAndSwap(m, v) {
			return
		}
	}
}

// histSnap is a histogram copy that travels as JSON between processes.
type histSnap struct {
	N       uint64     `json:"n"`
	Sum     int64      `json:"sum"`
	Max     int64      `json:"max"`
	Buckets [][2]int64 `json:"b,omitempty"` // [index, count], ascending index
}

func (h *histogram) snapshot() histSnap {
	var s histSnap
	for i := range h.counts {
		if c := h.counts[i].Load(); c > 0 {
			s.Buckets = append(s.Buckets, [2]int64{int64(i), int64(c)})
			s.N += c
		}
	}
	s.Sum = h.sum.Load()
	s.Max = h.max.Load()
	return s
}

func (s histSnap) merge(o histSnap) histSnap {
	var out histSnap
	out.N, out.Sum, out.Max = s.N+o.N, s.Sum+o.Sum, max(s.Max, o.Max)
	i, j := 0, 0
	for i < len(s.Buckets) || j < len(o.Buckets) {
		switch {
		case j == len(o.Buckets) || (i < len(s.Buckets) && s.Buckets[i][0] < o.Buckets[j][0]):
			out.Buckets = append(out.Buckets, s.Buckets[i])
			i++
		case i == len(s.Buckets) || o.Buckets[j][0] < s.Buckets[i][0]:
			out.Buckets = append(out.Buckets, o.Buckets[j])
			j++
		default:
			out.Buckets = append(out.Buckets, [2]int64{s.Buckets[i][0], s.Buckets[i][1] + o.Buckets[j][1]})
			i++
			j++
		}
	}
	return out
}

// quantile returns the value at quantile q (0..1): the middle of the bucket
// holding that rank, never above the exact maximum.
func (s histSnap) quantile(q float64) int64 {
	if s.N == 0 {
		return 0
	}
	rank := int64(math.Ceil(q * float64(s.N)))
	rank = min(max(rank, 1), int64(s.N))
	var seen int64
	for _, b := range s.Buckets {
		seen += b[1]
		if seen >= rank {
			lo, hi := histBounds(int(b[0]))
			return min(lo+(hi-lo)/2, s.Max)
		}
	}
	return s.Max
}

func (s histSnap) mean() float64 {
	if s.N == 0 {
		return 0
	}
	return float64(s.Sum) / float64(s.N)
}
