package limiter

import "time"

// When the table is full, a request for a new key first looks for a bucket
// it can retire in place (makeRoom). Only when there is none, the key is
// served by the cells (cells.go): a fixed array of 8-byte GCRA states, of
// which each key maps to a few, chosen by a hash with a per-process random
// seed. Tracked keys keep their own buckets and rate.Limiter's exact
// decisions; a key served by the cells is decided conservatively, never
// admitted where its own bucket would deny it, and denied only where it,
// or the keys that share its cells, have spent.
//
// The invariant: a cell is never less restrictive than any key that maps to
// it. A key's state is the least restrictive of its cells (the earliest
// TAT); an admission raises each of them to at least the key's new TAT
// (count-min with conservative update); conversions round towards
// restrictive (policyMath.cellTAT). So the state a key is decided on is
// always at least as restrictive as its own bucket's would be, and each key
// stays within Burst + Rate×T whether it is in the table, in the cells, or
// moving between them:
//
//   - cells → table: a new bucket starts at the level of its key's cells
//     (settle), not full. Seen from one key, the level only ever jumps down
//     (to a state others' spending may have lowered) or stays.
//   - table → cells: only a bucket that has refilled to Burst leaves the
//     table (the sweeper, makeRoom; Reset forgets on purpose). A full bucket
//     is a TAT in the past: its cells, whatever they hold, are at least as
//     restrictive, so nothing needs writing. Buckets that hold spending are
//     not evicted into the cells: under a spray that would hand the table
//     to the sprayer and move every tracked client from exact decisions to
//     shared ones.
//
// The handover is race-free because a key's cell decisions and the settling
// of its new bucket hold the same lock, the key's stripe, and because a
// cell decision looks the key up in the table under that lock: either the
// decision comes first and settling reads its raise, or settling comes
// first and the decision, finding the bucket published, defers to it. The
// one read outside the lock is settle's check that the cells exist at all
// (the fast path of a new key before any spray): a cell decision publishes
// the array before looking the key up, settle reads it after publishing
// the bucket, and Go's atomics and sync.Map are sequentially consistent, so
// at least one side sees the other (the store-buffer, or Dekker, pattern).
//
// Undoing an admission made by the cells (a WaitN cancelled, an AllowAll
// denied elsewhere) gives nothing back: once a key has raised a cell,
// another key that maps to it may have been decided on the raised value
// and its own bucket may count on it, so lowering the cell could make it
// less restrictive than that key. Reset cannot clear a key's cells for the
// same reason. Both are conservative: never admitting more than the exact
// bucket, at worst denying a little more.
//
// The cells are never swept: they are a fixed array, allocated when the
// table first fills, and a cell whose TAT has passed is full.

// fromCells decides a request of cost n for key, which found the table
// full, on its cells, reserving up to maxWait ahead: the decision, the
// wait, and the time it was decided at. The outcome is gone if key is in
// the table after all, stale if m is; the caller then starts over.
func (l *Limiter) fromCells(m *policyMath, key string, n int, maxWait time.Duration) (Decision, time.Duration, int64, outcome) {
	c := &l.cells
	h := c.hash(key)
	mu := c.stripe(h)
	mu.Lock()
	defer mu.Unlock()
	if m.stale.Load() {
		return Decision{}, 0, 0, stale
	}
	a := c.ensure() // published before the lookup (see settle)
	if _, ok := l.table.lookup(key); ok {
		return Decision{}, 0, 0, gone
	}
	x := c.index(h)
	now := l.now()
	left, d, wait := m.take(m.cellLevel(tatOf(a, x), now), n, maxWait)
	if d.Allowed {
		raise(a, x, m.cellTAT(left, now))
	}
	l.stats.count(h, d.Allowed, true)
	if !d.Allowed {
		return d, 0, now, decidedDeny
	}
	return d, wait, now, decidedAdmit
}

// settle gives pending bucket b of key its starting level: the level of
// key's cells, which is Burst unless the key or one sharing its cells has
// spent there (see above).
func (l *Limiter) settle(m *policyMath, key string, b *bucket) {
	c := &l.cells
	if c.load() == nil { // no cell was ever used: read after b was published
		b.settle(m, m.burst, l.now())
		return
	}
	h := c.hash(key)
	mu := c.stripe(h)
	mu.Lock()
	now := l.now()
	b.settle(m, m.cellLevel(tatOf(c.load(), c.index(h)), now), now)
	mu.Unlock()
}

// cellsLevel is the level at now of key's cells: Burst if none was ever
// used. A snapshot for Peek: it takes no lock.
func (l *Limiter) cellsLevel(m *policyMath, key string, now int64) float64 {
	c := &l.cells
	a := c.load()
	if a == nil {
		return m.burst
	}
	return m.cellLevel(tatOf(a, c.index(c.hash(key))), now)
}
