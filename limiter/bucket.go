package limiter

import (
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// A bucket is one client's token bucket. It reproduces rate.Limiter's
// arithmetic exactly (same float64 operations in the same order, see
// policyMath) in 32 bytes instead of rate.Limiter's 80, and it carries the
// sweeper's retire mark under the same lock, so checking the mark costs
// nothing extra on the request path.
//
// last is the time of the last update in nanoseconds since the limiter's
// epoch, or one of the marks below. Marks are negative; real times are not.
//
// allowed and denied count the bucket's decisions for Stats, under the lock
// the decision holds anyway: a shared counter, even striped, is written by
// every core and costs a cache-line transfer per request (measured: ~50 ns
// of a ~150 ns decision with two cores on 100,000 keys). They move to the
// limiter's counters when the bucket is retired or a count grows large.
type bucket struct {
	mu              sync.Mutex
	allowed, denied uint32
	tokens          float64
	last            int64
}

// spillAt is the count at which a bucket moves its counts to the limiter's.
const spillAt = 1 << 31

const (
	// retired: the sweeper (or Reset) has taken this bucket out of use. It
	// must never admit again; a request that finds it starts over.
	retired int64 = math.MinInt64
	// pending: published in the map but not yet given its starting level,
	// which depends on the overflow bucket (see overflow.go). A request that
	// finds it settles it first.
	pending int64 = math.MinInt64 + 1
)

// policyMath is a Policy's numbers in the form the bucket arithmetic uses.
// It is immutable; SetPolicy publishes a new one.
type policyMath struct {
	limit  float64 // tokens per second, positive and finite (unless inf)
	burst  float64
	n      int // Burst as an int
	inf    bool
	policy Policy
}

func newPolicyMath(p Policy) *policyMath {
	return &policyMath{limit: float64(p.Rate), burst: float64(p.Burst), n: p.Burst, inf: p.Rate == rate.Inf, policy: p}
}

// unlimited is the decision for every request under rate.Inf.
func (p *policyMath) unlimited() Decision {
	return Decision{Allowed: true, Limit: p.n, Remaining: p.n}
}

// advance is rate.Limiter.advance: the tokens in a bucket holding tokens at
// last, observed at now. The caller guarantees now >= last.
func (p *policyMath) advance(tokens float64, last, now int64) float64 {
	tokens += time.Duration(now-last).Seconds() * p.limit
	return min(tokens, p.burst)
}

// durationFromTokens is rate.Limit.durationFromTokens without truncation: the
// exact (float) nanoseconds needed to accumulate tokens.
func (p *policyMath) durationFromTokens(tokens float64) float64 {
	return tokens / p.limit * float64(time.Second)
}

// ceilDuration converts float nanoseconds to a Duration, rounding up so that
// waiting that long is always enough, and saturating instead of overflowing.
func ceilDuration(ns float64) time.Duration {
	if ns >= math.MaxInt64 {
		return math.MaxInt64
	}
	return time.Duration(math.Ceil(ns))
}

// take is rate.Limiter.ReserveN(now, n) with a maxFutureReserve of maxWait
// (AllowN is maxWait 0) on a bucket that holds tokens at now (already
// advanced). It returns the tokens left, the decision, and the wait before
// an admitted request may proceed (0 unless maxWait > 0). Like
// rate.Limiter, it admits a request whose shortfall would be refilled in
// under one nanosecond (the truncated wait is zero).
func (p *policyMath) take(tokens float64, n int, maxWait time.Duration) (left float64, d Decision, wait time.Duration) {
	left, ok, exact := p.decide(tokens, n, maxWait)
	d, wait = p.decision(tokens, left, ok, exact)
	if !ok {
		left = tokens
	}
	return left, d, wait
}

// decide is the part of take that needs the bucket's state, kept apart so
// that a bucket holds its lock only for it: whether the request is
// admitted, the tokens left if it is, and the exact wait for a shortfall
// (0 if none).
func (p *policyMath) decide(tokens float64, n int, maxWait time.Duration) (left float64, ok bool, exact float64) {
	left = tokens - float64(n)
	if left < 0 {
		exact = p.durationFromTokens(-left)
		// rate.Limiter denies when the truncated wait exceeds
		// maxFutureReserve, that is when exact >= maxWait + 1ns.
		if exact >= float64(maxWait)+1 {
			return left, false, exact
		}
	}
	return left, true, exact
}

// decision is the rest of take: the Decision for decide's results, and the
// wait before an admitted reservation may proceed. It needs no lock.
func (p *policyMath) decision(tokens, left float64, ok bool, exact float64) (d Decision, wait time.Duration) {
	d.Limit = p.n
	if !ok {
		d.Remaining = remaining(tokens)
		d.RetryAfter = ceilDuration(exact)
		d.ResetAfter = ceilDuration(p.durationFromTokens(p.burst - tokens))
		return d, 0
	}
	d.Allowed = true
	d.Remaining = remaining(left)
	d.ResetAfter = ceilDuration(p.durationFromTokens(p.burst - left))
	return d, time.Duration(exact) // truncated, as rate.Reservation.Delay
}

func remaining(tokens float64) int {
	if tokens <= 0 {
		return 0
	}
	return int(tokens)
}

// take applies one request of cost n at now, reserving up to maxWait ahead
// (see policyMath.take). live is false if the bucket is retired or pending;
// the bucket is then unchanged and the other results are meaningless.
func (b *bucket) take(p *policyMath, now int64, n int, maxWait time.Duration, c *counters) (d Decision, wait time.Duration, live bool) {
	b.mu.Lock()
	if b.last < 0 {
		b.mu.Unlock()
		return d, 0, false
	}
	// A request that read the clock before a concurrent one but locked after
	// it is treated as happening at the later time. rate.Limiter would move
	// last backwards and count the overlap's refill twice.
	now = max(now, b.last)
	tokens := p.advance(b.tokens, b.last, now)
	left, ok, exact := p.decide(tokens, n, maxWait)
	if ok { // like rate.Limiter, a denial leaves the state as it was
		b.tokens, b.last = left, now
		b.allowed++
	} else {
		b.denied++
	}
	if b.allowed >= spillAt || b.denied >= spillAt {
		b.spill(c)
	}
	b.mu.Unlock()
	d, wait = p.decision(tokens, left, ok, exact) // the float work, outside the lock
	return d, wait, true
}

// allow is take for AllowN: no reservation ahead.
func (b *bucket) allow(p *policyMath, now int64, n int, c *counters) (Decision, bool) {
	d, _, live := b.take(p, now, n, 0, c)
	return d, live
}

// spill moves b's counts to c. The caller holds b.mu.
func (b *bucket) spill(c *counters) {
	if c != nil && b.allowed|b.denied != 0 {
		c.add(spreadOf(b), uint64(b.allowed), uint64(b.denied))
	}
	b.allowed, b.denied = 0, 0
}

// counts adds b's counts to s unless b is retired (its counts are in the
// limiter's already).
func (b *bucket) counts(s *Stats) {
	b.mu.Lock()
	if b.last != retired {
		s.Allowed += uint64(b.allowed)
		s.Denied += uint64(b.denied)
	}
	b.mu.Unlock()
}

// refund gives back n tokens taken from b by a request that did not go
// ahead (a composite limit denied elsewhere, a Wait cancelled). The state
// becomes what it would be had the request never been made, except that
// requests denied in between stay denied: a refund can under-admit, never
// over-admit. A retired bucket was full, so there is nothing to give back.
func (b *bucket) refund(p *policyMath, n int) {
	b.mu.Lock()
	if b.last >= 0 {
		b.tokens = min(b.tokens+float64(n), p.burst)
	}
	b.mu.Unlock()
}

// retire marks the bucket retired if it has refilled to burst at now, which
// makes it indistinguishable from a new bucket, and reports whether it is
// retired.
func (b *bucket) retire(p *policyMath, now int64, c *counters) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.last == retired:
		return true
	case b.last == pending:
		return false
	case p.advance(b.tokens, b.last, max(now, b.last)) < p.burst:
		return false
	}
	b.last = retired
	b.spill(c)
	return true
}

// retireNow marks the bucket retired whatever it holds (for Reset).
func (b *bucket) retireNow(c *counters) {
	b.mu.Lock()
	b.last = retired
	b.spill(c)
	b.mu.Unlock()
}

// settle gives a pending bucket its starting level: tokens, capped at
// burst, at now. It does nothing to a bucket that is no longer pending.
func (b *bucket) settle(p *policyMath, tokens float64, now int64) {
	b.mu.Lock()
	if b.last == pending {
		b.tokens, b.last = min(tokens, p.burst), now
	}
	b.mu.Unlock()
}
