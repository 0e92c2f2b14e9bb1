package bench

import (
	"math/bits"
	"sync/atomic"
)

// Histogram counts values (microseconds) in log-linear buckets: exact
// below 128, then 64 buckets per power of two, so any quantile is within
// 1.6% of the true value. Record is safe for concurrent use and does not
// allocate.
type Histogram struct {
	counts [nBuckets]atomic.Int64
	n      atomic.Int64
	sum    atomic.Int64
	max    atomic.Int64
}

const (
	subBits  = 6
	subCount = 1 << subBits
	// maxValue caps recorded values (2^40 µs is about 12 days).
	maxValue = int64(1)<<40 - 1
	nBuckets = (40-subBits)*subCount + 2*subCount
)

func bucketOf(v int64) int {
	if v < 0 {
		v = 0
	}
	if v > maxValue {
		v = maxValue
	}
	e := bits.Len64(uint64(v)) - (subBits + 1)
	if e < 0 {
		e = 0
	}
	return e*subCount + int(v>>e)
}

// bucketMid returns a value representative of bucket i (its midpoint).
func bucketMid(i int) int64 {
	if i < 2*subCount {
		return int64(i)
	}
	e := i>>subBits - 1
	m := int64(i - e*subCount)
	return m<<e + (int64(1)<<e)/2
}

// Record adds one value.
func (h *Histogram) Record(v int64) {
	h.counts[bucketOf(v)].Add(1)
	h.n.Add(1)
	h.sum.Add(v)
	for {
		m := h.max.Load()
		if v <= m || h.max.CompareAndSwap(m, v) {
			return
		}
	}
}

// Count is the number of values recorded.
func (h *Histogram) Count() int64 { return h.n.Load() }

// Max is the largest value recorded.
func (h *Histogram) Max() int64 { return h.max.Load() }

// Mean is the average value, 0 when empty.
func (h *Histogram) Mean() float64 {
	n := h.n.Load()
	if n == 0 {
		return 0
	}
	return float64(h.sum.Load()) / float64(n)
}

// Quantile returns the value below which a fraction q of the values lie
// (0 when empty). The top bucket reports the exact maximum.
func (h *Histogram) Quantile(q float64) int64 {
	n := h.n.Load()
	if n == 0 {
		return 0
	}
	rank := int64(q*float64(n) + 0.5)
	if rank < 1 {
		rank = 1
	}
	if rank > n {
		rank = n
	}
	var seen int64
	for i := range h.counts {
		seen += h.counts[i].Load()
		if seen >= rank {
			v := bucketMid(i)
			if m := h.max.Load(); v > m {
				v = m
			}
			return v
		}
	}
	return h.max.Load()
}

// Merge adds every value of o to h.
func (h *Histogram) Merge(o *Histogram) {
	if o == nil {
		return
	}
	for i := range o.counts {
		if c := o.counts[i].Load(); c != 0 {
			h.counts[i].Add(c)
		}
	}
	h.n.Add(o.n.Load())
	h.sum.Add(o.sum.Load())
	for {
		m, v := h.max.Load(), o.max.Load()
		if v <= m || h.max.CompareAndSwap(m, v) {
			return
		}
	}
}

// SparseHist is a histogram as it travels between generator processes:
// non-empty buckets only.
type SparseHist struct {
	Buckets [][2]int64 `json:"b,omitempty"` // bucket index, count
	Sum     int64      `json:"s,omitempty"`
	Max     int64      `json:"m,omitempty"`
}

// Sparse returns the non-empty buckets of h.
func (h *Histogram) Sparse() SparseHist {
	var s SparseHist
	for i := range h.counts {
		if c := h.counts[i].Load(); c != 0 {
			s.Buckets = append(s.Buckets, [2]int64{int64(i), c})
		}
	}
	s.Sum, s.Max = h.sum.Load(), h.max.Load()
	return s
}

// MergeSparse adds a sparse histogram to h.
func (h *Histogram) MergeSparse(s SparseHist) {
	for _, b := range s.Buckets {
		if b[0] < 0 || b[0] >= nBuckets {
			continue
		}
		h.counts[b[0]].Add(b[1])
		h.n.Add(b[1])
	}
	h.sum.Add(s.Sum)
	for {
		m := h.max.Load()
		if s.Max <= m || h.max.CompareAndSwap(m, s.Max) {
			return
		}
	}
}
