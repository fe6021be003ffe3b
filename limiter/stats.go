package limiter

import (
	"math/rand/v2"
	"sync/atomic"
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
// requests do not all increment one contended word. A request picks a cell
// with the runtime's per-thread random generator, which costs a few
// nanoseconds and shares nothing between threads.
type counters struct {
	cells *[numCells]cell // allocated alone, so cells are 64-byte aligned
}

func newCounters() counters { return counters{cells: new([numCells]cell)} }

const numCells = 16

type cell struct {
	allowed, denied, overflowed atomic.Uint64
	_                           [64 - 3*8]byte
}

func (c *counters) count(allowed, overflowed bool) {
	x := &c.cells[rand.Uint32()%numCells]
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
