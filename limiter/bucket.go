package limiter

import (
	"math"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// A bucket is one client's token bucket. It reproduces rate.Limiter's
// arithmetic exactly (same float64 operations in the same order, see
// policyMath) in 32 bytes instead of rate.Limiter's 80, and it carries the
// sweeper's retire mark under the same lock, so checking the mark costs
// nothing extra on the request path.
//
// Every field is guarded by mu.
//
// last is the bucket's clock, in one of three states:
//
//   - a time >= 0: the time of the last update, in nanoseconds since the
//     limiter's epoch; tokens is the level then (negative while WaitN
//     reservations are outstanding, as in rate.Limiter).
//   - pending: published in the table but not yet given its starting level,
//     which depends on the key's cells (overflow.go). Nobody takes from
//     it; whoever finds it settles it (pending → a time).
//   - retired: taken out of use by the sweeper, makeRoom or Reset (a time →
//     retired, only when the bucket is full, except for Reset). Final: a
//     request that finds it deletes the entry and starts over on a new bucket
//     (the sweeper's retire protocol, package sweeper).
//
// rate.Limiter's third field, lastEvent (the time-to-act of the latest
// reservation), is read only to undo a reservation, and only reservations
// made ahead by WaitN move it past an AllowN's own time; so it lives in the
// limiter's events table, for the few buckets a WaitN has reserved ahead on,
// instead of in every bucket.
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

// The marks of bucket.last; real times are not negative.
const (
	retired int64 = math.MinInt64
	pending int64 = math.MinInt64 + 1
)

// An outcome says whether a bucket decided, and if not, why.
type outcome uint8

const (
	decided outcome = iota
	gone            // retired or pending: start over (see Limiter.revive)
	stale           // the policy was replaced meanwhile: reload it and start over
)

// policyMath is a Policy's numbers in the form the bucket arithmetic uses.
// It is immutable but for stale; SetPolicy publishes a new one.
type policyMath struct {
	limit  float64 // tokens per second, positive and finite (unless inf)
	burst  float64
	n      int // Burst as an int
	inf    bool
	policy Policy

	// changes counts the SetPolicy calls before this policy that changed
	// it. A reservation made under another count is not undone (see
	// cancelAt); a SetPolicy to the policy in force still adopts every
	// bucket, as rate.Limiter's SetLimitAt and SetBurstAt advance it, but
	// changes no refund.
	changes int

	// stale is set when SetPolicy starts replacing this policy. A decision
	// that finds it set under a bucket's lock changes nothing, waits for
	// SetPolicy to finish (Limiter.awaitPolicy) and starts over with the new
	// policy: so SetPolicy adopts every bucket exactly once, at one instant,
	// and nothing decided after it returns uses the old policy.
	stale atomic.Bool
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

// adopt is the level under p, from at on, of a bucket that held tokens at
// last under old: rate.Limiter's SetLimitAt and SetBurstAt at at (the level
// advanced under old up to the change, then left for p's advance to cap),
// except that a bucket full under old is full under p, as a key without a
// bucket is: so whether the sweeper had retired it changes nothing.
func (p *policyMath) adopt(old *policyMath, tokens float64, last, at int64) float64 {
	if tokens = old.advance(tokens, last, at); tokens >= old.burst {
		return p.burst
	}
	return tokens
}

// giveBack is how many tokens undoing a reservation of n tokens returns:
// the reservation was made under p, due at due (its time-to-act), and is
// undone at bucket time t, when the latest reservation on the bucket is due
// at lastEvent; full is when the bucket could first have been full again
// had the reservation not been made (its level before it, refilled to
// Burst). It is rate.Reservation.CancelAt's rule — n less the tokens later
// reservations count on — and, when t is past full, less what the bucket
// could have regained since full too. Until full the bucket cannot have
// regained n on its own, so all of it comes back; after, nothing it may
// have regained is given a second time, so undoing never lets an interval
// exceed Burst + Rate×T however late it comes. (rate.Limiter gives nothing
// back once t is past due; full is never before due.)
func (p *policyMath) giveBack(n int, due, lastEvent, t, full int64) float64 {
	back := float64(n) - time.Duration(lastEvent-due).Seconds()*p.limit
	if t > full {
		back -= time.Duration(t-full).Seconds() * p.limit
	}
	return back
}

// fullAt is when a bucket at level at time now would be full again: the
// full of giveBack for a reservation made from that level, rounded down.
func (p *policyMath) fullAt(level float64, now int64) int64 {
	return satAdd(now, int64(p.durationFromTokens(p.burst-level)))
}

// undone is what undoing a reservation reads and writes of a bucket: its
// level and clock, and rate.Limiter's lastEvent when a reservation made
// ahead may be outstanding (ahead).
type undone struct {
	tokens    float64
	last      int64
	lastEvent int64
	ahead     bool
}

// cancelAt undoes a reservation of n tokens made under r, due at due, on
// bucket state s at now under the current policy p, and returns the new
// state: it gives back what giveBack says, capped at Burst, and moves
// lastEvent back as rate.Reservation.CancelAt does; when no reservation is
// outstanding any more, ahead becomes false (the next admission's own time
// is then lastEvent). The one place the undo rule is applied, for the
// buckets of the table.
func (p *policyMath) cancelAt(s undone, r *policyMath, n int, due, full, now int64) undone {
	if r.changes != p.changes { // made under another policy: full may have come sooner under this one
		return s
	}
	t := max(now, s.last)
	lastEvent := due // no reservation after this one, unless one was made ahead later
	if s.ahead && s.lastEvent > due {
		lastEvent = s.lastEvent
	}
	back := r.giveBack(n, due, lastEvent, t, full)
	if back <= 0 {
		return s
	}
	s.tokens, s.last = min(p.advance(s.tokens, s.last, t)+back, p.burst), t
	if s.ahead && s.lastEvent == due { // the latest reservation: CancelAt's lastEvent rule
		if prev := r.prevEvent(n, due); prev >= t {
			s.lastEvent = prev
		} else {
			s.ahead = false
		}
	}
	return s
}

// prevEvent is rate.Reservation.CancelAt's new lastEvent when the undone
// reservation (n tokens under p, due at due) was the latest: the time the
// one before it was due.
func (p *policyMath) prevEvent(n int, due int64) int64 {
	d := p.durationFromTokens(float64(n))
	if d >= float64(due) { // before the epoch: no reservation can be due then
		return math.MinInt64
	}
	return due - int64(d) // truncated, as rate's durationFromTokens
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
// (see policyMath.take). It returns the decision, the wait before an
// admitted request may proceed, the bucket time it was decided at and the
// level it found; if
// the outcome is not decided, the bucket is unchanged and the rest is
// meaningless. A reservation made ahead is recorded in ev (nil for AllowN,
// which never reserves ahead).
func (b *bucket) take(p *policyMath, now int64, n int, maxWait time.Duration, c *counters, ev *events) (d Decision, wait time.Duration, at int64, level float64, o outcome) {
	b.mu.Lock()
	if b.last < 0 || p.stale.Load() {
		o = b.refusal(p)
		b.mu.Unlock()
		return d, 0, 0, 0, o
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
		if ev != nil && exact >= 1 { // reserved ahead: rate.Limiter's lastEvent moves
			ev.set(b, now+int64(exact))
		}
	} else {
		b.denied++
	}
	if b.allowed >= spillAt || b.denied >= spillAt {
		b.spill(c)
	}
	b.mu.Unlock()
	d, wait = p.decision(tokens, left, ok, exact) // the float work, outside the lock
	return d, wait, now, tokens, decided
}

// refusal is why b, locked, cannot be used under p.
func (b *bucket) refusal(p *policyMath) outcome {
	if b.last < 0 {
		return gone
	}
	return stale
}

// allow is take for AllowN: no reservation ahead.
func (b *bucket) allow(p *policyMath, now int64, n int, c *counters) (Decision, outcome) {
	d, _, _, _, o := b.take(p, now, n, 0, c, nil)
	return d, o
}

// cancel undoes an admitted reservation of n tokens that did not go ahead
// (a Wait cancelled, a composite limit denied elsewhere): r is the policy it
// was made under, due its time-to-act and full as giveBack says; p is the
// policy now (see policyMath.cancelAt). A retired bucket was full: there is
// nothing to give back.
func (b *bucket) cancel(p, r *policyMath, n int, due, full, now int64, ev *events) outcome {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.last < 0 || p.stale.Load() {
		return b.refusal(p)
	}
	lastEvent, ahead := ev.get(b)
	s := p.cancelAt(undone{b.tokens, b.last, lastEvent, ahead}, r, n, due, full, now)
	b.tokens, b.last = s.tokens, s.last
	switch {
	case s.ahead && s.lastEvent != lastEvent:
		ev.set(b, s.lastEvent)
	case ahead && !s.ahead:
		ev.forget(b)
	}
	return decided
}

// adopt moves b from policy old to p at since (see policyMath.adopt); a
// bucket a racing decision updated later than since adopts p at that time.
func (b *bucket) adopt(old, p *policyMath, since int64) {
	b.mu.Lock()
	if b.last >= 0 {
		at := max(since, b.last)
		b.tokens, b.last = p.adopt(old, b.tokens, b.last, at), at
	}
	b.mu.Unlock()
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

// retire marks the bucket retired if it has refilled to burst at now, which
// makes it indistinguishable from a new bucket, and reports whether it is
// retired. Under a stale policy it does nothing: full under the old Burst
// is not full under a larger new one.
func (b *bucket) retire(p *policyMath, now int64, c *counters) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.last == retired:
		return true
	case b.last == pending || p.stale.Load():
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
// burst, at now. It does nothing to a bucket that is no longer pending, or
// under a stale policy (the bucket is then settled under the new one).
func (b *bucket) settle(p *policyMath, tokens float64, now int64) {
	b.mu.Lock()
	if b.last == pending && !p.stale.Load() {
		b.tokens, b.last = min(tokens, p.burst), now
	}
	b.mu.Unlock()
}
