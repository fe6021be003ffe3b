package limiter

import (
	"sync/atomic"

	"github.com/floodgate-go/floodgate/internal/syncmap"
)

// table is the map of tracked buckets with a hard cap on its size.
//
// n counts entries plus reservations in flight. A new entry is stored only
// after a successful reserve, and every successful delete releases one, so n
// never exceeds max: the cap is exact, with no slack.
type table struct {
	m   syncmap.Map[tableKey, *bucket]
	n   atomic.Int64
	max int64
}

// lookup finds the bucket for key. Each case converts its own stack value
// to an interface for Load, which does not retain it, so a lookup allocates
// nothing (a shared helper returning tableKey would move the key to the heap).
func (t *table) lookup(key string) (*bucket, bool) {
	switch n := len(key); {
	case n < len(key16{}):
		return t.m.Load(short16(key))
	case n < len(key32{}):
		return t.m.Load(short32(key))
	}
	return t.m.Load(storageKey(key))
}

// reserve claims room for one new entry and reports whether there was any.
func (t *table) reserve() bool {
	if t.n.Load() >= t.max { // read first: under a spray the table is full and this is all it costs
		return false
	}
	if t.n.Add(1) > t.max {
		t.n.Add(-1)
		return false
	}
	return true
}

// release gives back a reservation that was not used.
func (t *table) release() { t.n.Add(-1) }

// store publishes b for key using a reservation. If key is already present
// it releases the reservation and returns the present bucket.
func (t *table) store(key tableKey, b *bucket) (actual *bucket, stored bool) {
	actual, loaded := t.m.LoadOrStore(key, b)
	if loaded {
		t.release()
	}
	return actual, !loaded
}

// CompareAndDelete removes key if it still maps to b, releasing its room.
// With Range it makes table a sweeper.Table.
func (t *table) CompareAndDelete(key tableKey, b *bucket) bool {
	if !t.m.CompareAndDelete(key, b) {
		return false
	}
	t.n.Add(-1)
	return true
}

// takeOver removes key if it still maps to b and hands its room to the
// caller as a reservation, so that no other request can claim the room
// between the delete and the caller's store.
func (t *table) takeOver(key tableKey, b *bucket) bool {
	return t.m.CompareAndDelete(key, b)
}

// Range visits the tracked buckets.
func (t *table) Range(yield func(tableKey, *bucket) bool) { t.m.Range(yield) }

// len reports the tracked keys, counting reservations in flight.
func (t *table) len() int { return int(t.n.Load()) }
