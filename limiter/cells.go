package limiter

import (
	"hash/maphash"
	"math"
	"math/bits"
	"sync"
	"sync/atomic"
	"time"
)

// cells is the state of the keys the table does not hold: a fixed array of
// 8-byte cells, each a GCRA theoretical arrival time (TAT), and a key maps
// to rows of them (one per row) by a hash seeded at random per Limiter, so
// that nobody outside the process can tell which keys share a cell. How a
// Limiter uses them is in overflow.go.
//
// A cell's TAT is in nanoseconds since the limiter's epoch: the instant a
// bucket at that state would be full again. A TAT at or before now is a
// full bucket (0, the zero value, is always full); a TAT of now + d means
// the bucket lacks d × Rate tokens of Burst. A cell only ever rises
// between policy changes (raise), so it always holds the most restrictive
// state of any key that maps to it.
//
// Which lock guards what:
//   - arr is written only under allocMu and every stripe, or under allocMu
//     from nil (ensure); it is read with an atomic load.
//   - each cell is an atomic word, raised by CAS; replaced wholesale only by
//     adopt, which holds every stripe.
//   - stripes serialise the cell decisions and bucket settlings of the keys
//     that hash to them (a key's own decisions must not interleave: two
//     that read the same TAT would both be admitted on it).
type cells struct {
	seed    maphash.Seed
	size    int // cells in all, rows × width, fixed by New
	rows    int // cells per key, one in each row
	allocMu sync.Mutex
	arr     atomic.Pointer[[]atomic.Uint64] // nil until the table first fills
	stripes [numStripes]stripe
}

// numStripes is how many locks the keys' hashes spread over.
const numStripes = 64

type stripe struct {
	sync.Mutex
	_ [64 - 8]byte // a cache line each
}

// maxRows bounds the rows a key maps to (the default is defaultCellRows).
const maxRows = 4

// cellIndex is where a key's cells are: one per row.
type cellIndex struct {
	i [maxRows]int
	n int
}

func newCells(size, rows int) cells {
	rows = min(max(rows, 1), maxRows, size)
	return cells{seed: maphash.MakeSeed(), size: size / rows * rows, rows: rows}
}

// hash is key's hash under c's seed: it picks the key's stripe and cells.
func (c *cells) hash(key string) uint64 { return maphash.String(c.seed, key) }

// stripe is the lock of the keys with hash h.
func (c *cells) stripe(h uint64) *sync.Mutex { return &c.stripes[h>>(64-6)].Mutex }

// index is where the cells of the key with hash h are: in row r, at an
// offset drawn from h mixed with r (a finaliser per row, so two keys that
// share one cell are unlikely to share another), scaled to the row's width
// by a multiply (Lemire's reduction, no division).
func (c *cells) index(h uint64) cellIndex {
	x := cellIndex{n: c.rows}
	width := uint64(c.size / c.rows)
	for r := range c.rows {
		hi, _ := bits.Mul64(mix(h+uint64(r)*0x9E3779B97F4A7C15), width)
		x.i[r] = r*int(width) + int(hi)
	}
	return x
}

// mix is splitmix64's finaliser.
func mix(z uint64) uint64 {
	z = (z ^ z>>30) * 0xBF58476D1CE4E5B9
	z = (z ^ z>>27) * 0x94D049BB133111EB
	return z ^ z>>31
}

// load returns the cells, nil if they were never needed.
func (c *cells) load() []atomic.Uint64 {
	if p := c.arr.Load(); p != nil {
		return *p
	}
	return nil
}

// ensure returns the cells, allocating them on first use: an array costs
// its full size only once the table has filled.
func (c *cells) ensure() []atomic.Uint64 {
	if a := c.load(); a != nil {
		return a
	}
	c.allocMu.Lock()
	defer c.allocMu.Unlock()
	if a := c.load(); a != nil {
		return a
	}
	a := make([]atomic.Uint64, c.size)
	c.arr.Store(&a)
	return a
}

// tat is the state of the key at x: the least restrictive of its cells
// (the earliest TAT), which is still at least as restrictive as the key's
// own bucket would be.
func tatOf(a []atomic.Uint64, x cellIndex) int64 {
	t := a[x.i[0]].Load()
	for _, i := range x.i[1:x.n] {
		t = min(t, a[i].Load())
	}
	return int64(t)
}

// raise lifts each of the cells at x to at least t (a CAS loop: raising
// only, so concurrent raises by keys sharing a cell all hold).
func raise(a []atomic.Uint64, x cellIndex, t int64) {
	for _, i := range x.i[:x.n] {
		c := &a[i]
		for {
			old := c.Load()
			if int64(old) >= t || c.CompareAndSwap(old, uint64(t)) {
				break
			}
		}
	}
}

// lockAll takes every stripe: no cell decision or settling runs until
// unlockAll.
func (c *cells) lockAll() {
	for i := range c.stripes {
		c.stripes[i].Lock()
	}
}

func (c *cells) unlockAll() {
	for i := range c.stripes {
		c.stripes[i].Unlock()
	}
}

// adopt moves every cell from policy old to p at since: each cell's level
// under old at since is kept (a full one is full under p, as for buckets,
// see policyMath.adopt) and written back as a TAT under p. The conversion
// is monotonic (a later TAT under old stays a later or equal TAT under p),
// and rounds towards restrictive, so every cell stays at least as
// restrictive as the keys that map to it. It holds every stripe: no cell
// decision under old lands after it.
func (c *cells) adopt(old, p *policyMath, since int64) {
	c.lockAll()
	defer c.unlockAll()
	a := c.load()
	for i := range a {
		t := int64(a[i].Load())
		if t <= since {
			continue // full under old: full under p (0 and any past TAT are)
		}
		a[i].Store(uint64(p.cellTAT(p.adopt(old, old.cellLevel(t, since), since, since), since)))
	}
}

// cellLevel is the tokens, at now, of a bucket whose TAT is tat: Burst if
// tat is not after now, else Burst less what refills in tat − now. A TAT
// far ahead (WaitN reserved ahead on the cells) is a negative level, as a
// bucket's is.
func (p *policyMath) cellLevel(tat, now int64) float64 {
	if tat <= now {
		return p.burst
	}
	return p.burst - time.Duration(tat-now).Seconds()*p.limit
}

// cellTAT is the TAT that stands for tokens at now: 0 (full) at Burst or
// more, else now plus the time the shortfall takes to refill, rounded up to
// a whole nanosecond (so reading it back never yields more tokens than were
// written, but for float64's rounding, far below rate.Limiter's own
// tolerance of a nanosecond's refill), saturating.
func (p *policyMath) cellTAT(tokens float64, now int64) int64 {
	if tokens >= p.burst {
		return 0
	}
	d := p.durationFromTokens(p.burst - tokens)
	if d >= math.MaxInt64/2 {
		return math.MaxInt64
	}
	return satAdd(now, int64(math.Ceil(d)))
}
