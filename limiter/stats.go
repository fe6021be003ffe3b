package limiter

import (
	"sync/atomic"
	"unsafe"
)

// spreadOf is a bucket's spread for count: its address, without the
// alignment bits.
func spreadOf(b *bucket) uint64 { return uint64(uintptr(unsafe.Pointer(b))) >> 3 }

// Stats is a snapshot of a Limiter's counters, for operators. The counters
// are cumulative since New and never decrease from one snapshot to the
// next (a decrease would read as a reset to a metrics system); Keys,
// MaxKeys, BreakerOpen and CachedKeys are current.
type Stats struct {
	Keys    int // buckets tracked now (never more than MaxKeys)
	MaxKeys int // the cap set by WithMaxKeys

	// Allowed counts decisions that admitted the request; Denied those
	// that rejected it, including admissions that were undone (a Wait
	// cancelled, an AllowAll another limit denied).
	Allowed uint64
	Denied  uint64

	// Overflowed counts decisions (included in Allowed and Denied) made by
	// the shared overflow bucket because the table was full.
	Overflowed uint64
	// Retired counts buckets removed because they had refilled to Burst.
	Retired uint64
	// Sweeps counts completed sweeper passes.
	Sweeps uint64

	// Remote tier (WithStore); all zero without a Store.

	// RoundTrips counts Store calls that returned a decision.
	RoundTrips uint64
	// StoreErrors counts Store calls that failed or timed out (including
	// Reset and refunds); a decision that needed the Store was then made
	// by the failure mode (Decision.Fallback).
	StoreErrors uint64
	// DenyCacheHits counts denials answered locally from an earlier Store
	// denial, without a round trip.
	DenyCacheHits uint64
	// PrefetchHits counts admissions paid for by prefetched tokens, without
	// a round trip.
	PrefetchHits uint64
	// Fallbacks counts decisions made by the failure mode because the Store
	// failed or the breaker was open.
	Fallbacks uint64
	// BreakerOpens counts times the circuit breaker opened.
	BreakerOpens uint64
	// BreakerOpen reports whether the breaker is open (or half-open) now.
	BreakerOpen bool
	// CachedKeys is the number of keys with a deny-cache or prefetch entry
	// (at most MaxKeys).
	CachedKeys int
}

// counters hold the counts no live bucket holds: those of retired buckets,
// and decisions made without a bucket of the table (the overflow bucket,
// the remote tier). They are striped over cache-line-sized cells so that
// parallel writers do not all hit one word.
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
	refunded                    atomic.Uint64 // admissions undone (AllowAll, Wait): counted denied, not allowed
	_                           [64 - 4*8]byte
}

// cell is the cell that spread picks (Fibonacci hashing): writers that
// should not contend pass different spreads.
func (c *counters) cell(spread uint64) *cell {
	return &c.cells[spread*0x9E3779B97F4A7C15>>(64-cellBits)]
}

// add adds counts moved out of a bucket (bucket.spill).
func (c *counters) add(spread uint64, allowed, denied uint64) {
	x := c.cell(spread)
	x.allowed.Add(allowed)
	x.denied.Add(denied)
}

// count counts one decision that no bucket counts (the overflow bucket's,
// the remote tier's).
func (c *counters) count(spread uint64, allowed, overflowed bool) {
	x := c.cell(spread)
	if allowed {
		x.allowed.Add(1)
	} else {
		x.denied.Add(1)
	}
	if overflowed {
		x.overflowed.Add(1)
	}
}

// refund counts an admission that was undone.
func (c *counters) refund(spread uint64) { c.cell(spread).refunded.Add(1) }

func (c *counters) sum(s *Stats) (refunded uint64) {
	for i := range c.cells {
		x := &c.cells[i]
		s.Allowed += x.allowed.Load()
		s.Denied += x.denied.Load()
		s.Overflowed += x.overflowed.Load()
		refunded += x.refunded.Load()
	}
	return refunded
}
