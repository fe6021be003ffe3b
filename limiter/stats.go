package limiter

import (
	"sync/atomic"
	"unsafe"
)

// Stats is a snapshot of a Limiter's counters, for operators. The counters
// are cumulative since New; Keys and MaxKeys are current.
type Stats struct {
	Keys    int // buckets tracked now (never more than MaxKeys)
	MaxKeys int // the cap set by WithMaxKeys

	Allowed uint64 // decisions that admitted the request
	Denied  uint64 // decisions that rejected it

	// Overflowed counts decisions (included in Allowed and Denied) made by
	// the shared overflow bucket because the table was full.
	Overflowed uint64
	// Retired counts buckets removed because they had refilled to Burst.
	Retired uint64
	// Sweeps counts completed sweeper passes.
	Sweeps uint64
}

// counters are striped over cache-line-sized cells so that parallel
// requests for different keys do not all increment one contended word. A
// request picks its cell from its bucket's address, which costs a multiply:
// requests for one hot key share a cell, as they already share the bucket's
// lock.
type counters struct {
	cells *[numCells]cell // allocated alone, so cells are 64-byte aligned
}

func newCounters() counters { return counters{cells: new([numCells]cell)} }

const (
	cellBits = 4
	numCells = 1 << cellBits
)

type cell struct {
	allowed, denied, overflowed atomic.Uint64
	_                           [64 - 3*8]byte
}

func (c *counters) count(b *bucket, allowed, overflowed bool) {
	// Fibonacci hashing of the address; the low bits are alignment.
	x := &c.cells[(uint64(uintptr(unsafe.Pointer(b)))>>3)*0x9E3779B97F4A7C15>>(64-cellBits)]
	if allowed {
		x.allowed.Add(1)
	} else {
		x.denied.Add(1)
	}
	if overflowed {
		x.overflowed.Add(1)
	}
}

func (c *counters) sum(s *Stats) {
	for i := range c.cells {
		x := &c.cells[i]
		s.Allowed += x.allowed.Load()
		s.Denied += x.denied.Load()
		s.Overflowed += x.overflowed.Load()
	}
}
