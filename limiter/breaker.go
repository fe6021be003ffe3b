package limiter

import (
	"math"
	"sync/atomic"
)

// A breaker is the circuit breaker in front of a Store. It is closed while
// the Store answers; after a run of consecutive failures it opens for a
// cooldown, during which no call reaches the Store; then the first request
// to arrive becomes the single probe (half-open). A successful probe closes
// the breaker, a failed one reopens it for another cooldown. Everything is
// lock-free: the closed path is one atomic load.
type breaker struct {
	threshold int64
	cooldown  int64 // ns

	failures  atomic.Int64 // consecutive failures while closed
	openUntil atomic.Int64 // 0 when closed; else the end of the cooldown (limiter clock)
	probing   atomic.Bool  // a half-open probe is in flight
	opens     atomic.Uint64
}

// admit reports whether a call may go to the Store at now, and whether it
// is the half-open probe (which must then report its outcome).
func (b *breaker) admit(now int64) (ok, probe bool) {
	until := b.openUntil.Load()
	if until == 0 {
		return true, false
	}
	if now < until || !b.probing.CompareAndSwap(false, true) {
		return false, false
	}
	return true, true
}

// success records a call that the Store answered.
func (b *breaker) success(probe bool) {
	if b.failures.Load() != 0 { // read first: a store per call would contend
		b.failures.Store(0)
	}
	if probe || b.openUntil.Load() != 0 {
		b.openUntil.Store(0)
		b.probing.Store(false)
	}
}

// failure records a failed call at now.
func (b *breaker) failure(now int64, probe bool) {
	if probe {
		b.openUntil.Store(satAdd(now, b.cooldown))
		b.probing.Store(false)
		b.opens.Add(1)
		return
	}
	if b.failures.Add(1) >= b.threshold && b.openUntil.CompareAndSwap(0, satAdd(now, b.cooldown)) {
		b.failures.Store(0)
		b.opens.Add(1)
	}
}

// remaining is how long the breaker stays open after now (0 when closed or
// half-open).
func (b *breaker) remaining(now int64) int64 {
	return max(b.openUntil.Load()-now, 0)
}

// open reports whether the breaker is open or half-open.
func (b *breaker) open() bool { return b.openUntil.Load() != 0 }

// satAdd is a + b for b >= 0, saturating at MaxInt64 (a cooldown of
// MaxInt64 must mean "open for good", not a time in the past).
func satAdd(a, b int64) int64 {
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}
