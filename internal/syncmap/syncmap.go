// Package syncmap is a typed wrapper over [sync.Map].
//
// It follows expvar.Map's habit: callers Load first and use LoadOrStore only
// on a miss, because LoadOrStore makes its key and value escape even when the
// key is already present.
package syncmap

import "sync"

// Map is a [sync.Map] whose keys have type K and values type V.
// The zero Map is empty and ready for use. A Map must not be copied after
// first use.
type Map[K comparable, V any] struct {
	m sync.Map
}

// Load returns the value stored for key, if any.
func (m *Map[K, V]) Load(key K) (value V, ok bool) {
	v, ok := m.m.Load(key)
	if !ok {
		return value, false
	}
	return v.(V), true
}

// LoadOrStore returns the existing value for key if present and reports
// loaded as true. Otherwise it stores value and returns it.
func (m *Map[K, V]) LoadOrStore(key K, value V) (actual V, loaded bool) {
	v, loaded := m.m.LoadOrStore(key, value)
	return v.(V), loaded
}

// CompareAndDelete deletes the entry for key if its value is old and
// reports whether it did. V must be comparable at run time.
func (m *Map[K, V]) CompareAndDelete(key K, old V) (deleted bool) {
	return m.m.CompareAndDelete(key, old)
}

// Range calls yield for each entry until yield returns false. It has
// [sync.Map.Range]'s consistency: no entry is visited twice, but entries
// stored or deleted concurrently may or may not be visited.
func (m *Map[K, V]) Range(yield func(key K, value V) bool) {
	m.m.Range(func(k, v any) bool { return yield(k.(K), v.(V)) })
}
