package limiter

import (
	"sync/atomic"
	"unsafe"

	"github.com/floodgate-go/floodgate/store"
)

// spreadOf is a bucket's spread for count: its address, without the
// alignment bits.
func spreadOf(b *bucket) uint64 { return uint64(uintptr(unsafe.Pointer(b))) >> 3 }

// Stats is a snapshot of a Limiter's counters, for operators. The counters
// are cumulative since New and never decrease from one snapshot to the
// next (a decrease would read as a reset to a metrics system); Keys,
// MaxKeys, Store.BreakerOpen and Store.CachedKeys are current.
type Stats struct {
	Keys    int // buckets tracked now (never more than MaxKeys)
	MaxKeys int // the cap set by WithMaxKeys

	// Allowed counts decisions that admitted the request; Denied those
	// that rejected it, including admissions that were undone (a Wait
	// cancelled, an AllowAll another limit denied).
	Allowed uint64
	Denied  uint64

	// Overflowed counts decisions (included in Allowed and Denied) made on
	// the cells because the table was full (see WithMaxKeys).
	Overflowed uint64
	// Retired counts buckets removed because they had refilled to Burst.
	Retired uint64
	// Sweeps counts completed sweeper passes.
	Sweeps uint64

	// Store counts the remote tier's work (WithStore); all zero without a
	// Store.
	Store store.Stats
}

// counters hold the counts no live bucket holds: those of retired buckets,
// and decisions made without a bucket of the table (the cells,
// the remote tier). They are striped over cache-line-sized cells so that
// parallel writers do not all hit one word.
type counters struct {
	cells *[numCells]cell // allocated alone, so cells are 64-byte aligned
}

func newCounters() counters { return counters{cells: new([numCells]cell)} }

const (
	cellBits = 6 // 4 KiB: two goroutines denying in parallel share a cell 1 time in 64
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

// count counts one decision that no bucket counts (the cells',
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

// deny counts one denial of a bucket of the table, in the cell of the
// calling goroutine (goroutineSpread): goroutines on different cores
// denying one key's requests write different cells, where the key's own
// cell, or the bucket, would bounce between them. c may be nil (tests).
func (c *counters) deny() {
	if c != nil {
		c.cell(goroutineSpread()).denied.Add(1)
	}
}

// goroutineSpread is a spread that differs between goroutines and stays
// the same for one (unless its stack moves): the address of a variable on
// its stack. It costs nothing, where the processor a goroutine runs on is
// not known outside the runtime (a sync.Pool, per processor, measured 44
// ns a call here against 27 for an atomic add).
func goroutineSpread() uint64 {
	var x byte
	return uint64(uintptr(unsafe.Pointer(&x)))
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
