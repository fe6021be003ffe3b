package limiter

import (
	"math"
	"sync"
	"time"
)

// A bucket is one client's token bucket. It reproduces rate.Limiter's
// arithmetic exactly (same float64 operations in the same order, see
// policyMath) in 24 bytes instead of rate.Limiter's 80, and it carries the
// sweeper's retire mark under the same lock, so checking the mark costs
// nothing extra on the request path.
//
// last is the time of the last update in nanoseconds since the limiter's
// epoch, or one of the marks below. Marks are negative; real times are not.
type bucket struct {
	mu     sync.Mutex
	tokens float64
	last   int64
}

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
type policyMath struct {
	limit float64 // tokens per second, positive and finite
	burst float64
	n     int // Burst as an int
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

// take is rate.Limiter.AllowN(now, n) on a bucket that holds tokens at
// now (already advanced). It returns the tokens left and the decision.
// Like rate.Limiter, it admits a request whose shortfall would be refilled in
// under one nanosecond (the truncated wait is zero).
func (p *policyMath) take(tokens float64, n int) (left float64, d Decision) {
	left = tokens - float64(n)
	d.Limit = p.n
	// rate.Limiter denies when the truncated wait is positive, that is when
	// the exact wait is at least one nanosecond.
	if left < 0 && p.durationFromTokens(-left) >= 1 {
		d.Remaining = remaining(tokens)
		d.RetryAfter = ceilDuration(p.durationFromTokens(-left))
		d.ResetAfter = ceilDuration(p.durationFromTokens(p.burst - tokens))
		return tokens, d
	}
	d.Allowed = true
	d.Remaining = remaining(left)
	d.ResetAfter = ceilDuration(p.durationFromTokens(p.burst - left))
	return left, d
}

func remaining(tokens float64) int {
	if tokens <= 0 {
		return 0
	}
	return int(tokens)
}

// allow applies one request of cost n at now. live is false if the bucket is
// retired or pending; the bucket is then unchanged and d is meaningless.
func (b *bucket) allow(p *policyMath, now int64, n int) (Decision, bool) {
	b.mu.Lock()
	if b.last < 0 {
		b.mu.Unlock()
		return Decision{}, false
	}
	// A request that read the clock before a concurrent one but locked after
	// it is treated as happening at the later time. rate.Limiter would move
	// last backwards and count the overlap's refill twice.
	now = max(now, b.last)
	left, d := p.take(p.advance(b.tokens, b.last, now), n)
	if d.Allowed { // like rate.Limiter, a denial leaves the state as it was
		b.tokens, b.last = left, now
	}
	b.mu.Unlock()
	return d, true
}

// retire marks the bucket retired if it has refilled to burst at now, which
// makes it indistinguishable from a new bucket, and reports whether it is
// retired.
func (b *bucket) retire(p *policyMath, now int64) bool {
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
	return true
}

// retireNow marks the bucket retired whatever it holds (for Reset).
func (b *bucket) retireNow() {
	b.mu.Lock()
	b.last = retired
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
