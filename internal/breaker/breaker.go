// Package breaker is the circuit breaker shared by the Limiter's Store tier
// (one in front of the whole Store) and redisstore (one per Redis Cluster
// master).
package breaker

import (
	"math"
	"sync/atomic"
)

// A Breaker is closed while calls succeed; after Threshold consecutive
// failures it opens for Cooldown, during which no call should be made; then
// the first call to arrive becomes the single probe (half-open). A
// successful probe closes the breaker, a failed one reopens it for another
// cooldown. Everything is lock-free: the closed path is one atomic load.
// Times are nanoseconds on whatever clock the owner passes (the Limiter's,
// or Redis's); Threshold and Cooldown are set before first use.
type Breaker struct {
	Threshold int64
	Cooldown  int64 // ns

	failures  atomic.Int64 // consecutive failures while closed
	openUntil atomic.Int64 // 0 when closed; else the end of the cooldown
	probing   atomic.Bool  // a half-open probe is in flight
	opens     atomic.Uint64
}

// Admit reports whether a call may be made at now, and whether it is the
// half-open probe (which must then report Success, Failure or Abandon).
func (b *Breaker) Admit(now int64) (ok, probe bool) {
	until := b.openUntil.Load()
	if until == 0 {
		return true, false
	}
	if now < until || !b.probing.CompareAndSwap(false, true) {
		return false, false
	}
	return true, true
}

// Success records a call that succeeded.
func (b *Breaker) Success(probe bool) {
	if b.failures.Load() != 0 { // read first: a store per call would contend
		b.failures.Store(0)
	}
	if probe || b.openUntil.Load() != 0 {
		b.openUntil.Store(0)
		b.probing.Store(false)
	}
}

// Failure records a call that failed at now.
func (b *Breaker) Failure(now int64, probe bool) {
	if probe {
		b.openUntil.Store(SatAdd(now, b.Cooldown))
		b.probing.Store(false)
		b.opens.Add(1)
		return
	}
	if b.failures.Add(1) >= b.Threshold && b.openUntil.CompareAndSwap(0, SatAdd(now, b.Cooldown)) {
		b.failures.Store(0)
		b.opens.Add(1)
	}
}

// Abandon records a probe whose outcome says nothing about the callee (its
// caller cancelled): the next call after it may probe again.
func (b *Breaker) Abandon(probe bool) {
	if probe {
		b.probing.Store(false)
	}
}

// Remaining is how long the breaker stays open after now (0 when closed or
// half-open).
func (b *Breaker) Remaining(now int64) int64 {
	return max(b.openUntil.Load()-now, 0)
}

// Open reports whether the breaker is open or half-open.
func (b *Breaker) Open() bool { return b.openUntil.Load() != 0 }

// Opens is how many times the breaker has opened.
func (b *Breaker) Opens() uint64 { return b.opens.Load() }

// SatAdd is a + b for b >= 0, saturating at MaxInt64 (a cooldown of
// MaxInt64 must mean "open for good", not a time in the past).
func SatAdd(a, b int64) int64 {
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}
