package redisstore

import (
	"context"
	"errors"
	"math"
	"sync/atomic"

	"github.com/redis/go-redis/v9"
)

// A nodeBreaker is the circuit breaker of one Redis Cluster master, with
// the Limiter's rules (store.Config's BreakerFailures and BreakerCooldown)
// applied to that node alone: closed while the node answers; after a run
// of consecutive failures on it, open for a cooldown, during which calls
// for its keys fail at once with store.ErrUnavailable (so the Limiter's
// failure mode decides them without waiting for the timeout); then one
// call is let through as a probe (half-open), which closes the breaker if
// the node answers and reopens it otherwise. Successes on other nodes
// never reset it: that is why it exists, as the Limiter's breaker, which
// counts consecutive failures over all keys, never opens while any other
// node answers.
type nodeBreaker struct {
	threshold int64
	cooldown  int64 // ns

	failures  atomic.Int64 // consecutive failures while closed
	openUntil atomic.Int64 // 0 when closed; else the end of the cooldown (Store clock)
	probing   atomic.Bool  // a half-open probe is in flight
	opens     atomic.Uint64
}

// admit reports whether a call may go to the node at now, and whether it
// is the half-open probe (which must then report its outcome).
func (b *nodeBreaker) admit(now int64) (ok, probe bool) {
	until := b.openUntil.Load()
	if until == 0 {
		return true, false
	}
	if now < until || !b.probing.CompareAndSwap(false, true) {
		return false, false
	}
	return true, true
}

// record records a call's outcome at now: an answer from the node (a
// reply, or an error reply, which the node sent too) is a success; a
// caller that cancelled says nothing about the node; anything else (a
// refused connection, a timeout, a broken one) is a failure.
func (b *nodeBreaker) record(now int64, err error, probe bool) {
	var reply redis.Error
	switch {
	case err == nil || errors.As(err, &reply):
		b.success(probe)
	case errors.Is(err, context.Canceled):
		if probe {
			b.probing.Store(false)
		}
	default:
		b.failure(now, probe)
	}
}

func (b *nodeBreaker) success(probe bool) {
	if b.failures.Load() != 0 { // read first: a store per call would contend
		b.failures.Store(0)
	}
	if probe || b.openUntil.Load() != 0 {
		b.openUntil.Store(0)
		b.probing.Store(false)
	}
}

func (b *nodeBreaker) failure(now int64, probe bool) {
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

// satAdd is a + b for b >= 0, saturating at MaxInt64.
func satAdd(a, b int64) int64 {
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}
