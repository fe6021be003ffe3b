package limiter

import (
	"math"
	"runtime"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// A bucket is one client's token bucket. It reproduces rate.Limiter's
// arithmetic exactly (same float64 operations in the same order, see
// policyMath) in 24 bytes instead of rate.Limiter's 80, and it carries the
// sweeper's retire mark in its clock, so checking the mark costs nothing
// extra on the request path.
//
// # Concurrency contract
//
// Writers — an admission, an undo (cancel), SetPolicy's adopt, settle,
// retire, and Stats reading allowed — exclude each other with busy, the
// low bit of clock: lock sets it with a compare-and-swap, unlock stores the
// new clock word with busy clear. A writer stores tokens at most once, then
// the clock with unlock. Every field but allowed is read and written
// atomically, so readers need no lock.
//
// Readers take no lock and write nothing (snapshot): they load clock,
// tokens, and clock again, and use the pair only if busy was clear and the
// clock word did not change. A writer that released the clock word it found
// changed at most tokens, with the same last, so whichever tokens the
// reader saw was the bucket's state at an instant between its two loads.
// A request that would be denied is decided on such a snapshot (bucket.take):
// rate.Limiter changes no state on a denial, so the decision is exactly the
// one the lock would have given, without writing the bucket's cache line,
// which a flooded key's requests would otherwise bounce between cores. It
// checks the policy after the snapshot: SetPolicy marks the policy stale
// before it adopts any bucket, so an unmarked policy read after the
// snapshot means the snapshot predates every adopt. A request that would be
// admitted takes the lock (with one compare-and-swap from the snapshot's
// clock word when no writer came in between) and decides again under it
// unless the state is the one it read.
//
// The clock word is last<<1 | busy. last, the bucket's clock, is in one of
// three states:
//
//   - a time >= 0: the time of the last update, in nanoseconds since the
//     limiter's epoch (below 2^62, 146 years); tokens is the level then
//     (negative while WaitN reservations are outstanding, as in
//     rate.Limiter). Writers never move it backwards.
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
// instead of in every bucket. It is read and written under the bucket's
// lock; lock-free denials do not touch it.
//
// allowed counts the bucket's admissions for Stats, under the lock the
// admission holds anyway (measured: a shared counter, even striped, costs a
// cache-line transfer, ~50 ns of a ~150 ns decision with two cores on
// 100,000 keys). It moves to the limiter's counters when the bucket is
// retired or the count grows large. Denials, which hold no lock, are counted
// in the limiter's striped counters, in a cell picked by the goroutine
// (counters.deny), so cores flooding one key do not share a counter.
type bucket struct {
	clock   atomic.Uint64 // last<<1 | busy
	tokens  atomic.Uint64 // math.Float64bits of the level at last
	allowed uint32        // guarded by busy
}

// newBucket returns a bucket holding tokens at last.
func newBucket(tokens float64, last int64) *bucket {
	b := new(bucket)
	b.tokens.Store(math.Float64bits(tokens))
	b.clock.Store(wordOf(last))
	return b
}

// spillAt is the count at which a bucket moves its counts to the limiter's.
const spillAt = 1 << 31

// The marks of bucket.last; real times are not negative.
const (
	retired int64 = math.MinInt64
	pending int64 = math.MinInt64 + 1
)

// The clock word: busy, and the words of the marks (above those of every
// time below 2^62).
const (
	busy        uint64 = 1
	retiredWord uint64 = math.MaxUint64 &^ busy
	pendingWord uint64 = retiredWord - 2
)

// wordOf is the clock word, busy clear, of last.
func wordOf(last int64) uint64 {
	switch last {
	case retired:
		return retiredWord
	case pending:
		return pendingWord
	}
	return uint64(last) << 1
}

// lastOf is the last of clock word w.
func lastOf(w uint64) int64 {
	switch w &^ busy {
	case retiredWord:
		return retired
	case pendingWord:
		return pending
	}
	return int64(w >> 1)
}

// lockSpins is how many times lock tries before it yields the processor
// between tries: a writer holds a bucket for tens of nanoseconds, unless
// it was preempted.
const lockSpins = 16

// lock takes b's writer lock and returns the clock word it found (busy
// clear); unlock gives it back.
func (b *bucket) lock() uint64 {
	for spins := 0; ; spins++ {
		if w := b.clock.Load(); w&busy == 0 && b.clock.CompareAndSwap(w, w|busy) {
			return w
		}
		if spins >= lockSpins {
			runtime.Gosched()
		}
	}
}

// unlock releases b's writer lock, leaving clock word w (busy clear).
func (b *bucket) unlock(w uint64) { b.clock.Store(w) }

// level is b's tokens. The caller holds the lock or uses it as snapshot does.
func (b *bucket) level() float64 { return math.Float64frombits(b.tokens.Load()) }

// snapshot reads b's level and clock word without the lock. ok reports
// that they are consistent (see bucket): busy was clear and the clock word
// the same before and after.
func (b *bucket) snapshot() (tokens float64, w uint64, ok bool) {
	w = b.clock.Load()
	tokens = b.level()
	return tokens, w, w&busy == 0 && b.clock.Load() == w
}

// snapshotTries is how many snapshots read makes before it takes the lock.
const snapshotTries = 4

// read returns a consistent level and last of b: a snapshot, or if writers
// keep getting in the way, under the lock.
func (b *bucket) read() (tokens float64, last int64) {
	for range snapshotTries {
		if tokens, w, ok := b.snapshot(); ok {
			return tokens, lastOf(w)
		}
	}
	w := b.lock()
	tokens = b.level()
	b.unlock(w)
	return tokens, lastOf(w)
}

// An outcome says how a bucket decided, and if it did not, why.
type outcome uint8

const (
	decidedDeny  outcome = iota
	decidedAdmit         // ≤ decidedAdmit: decided
	gone                 // retired or pending: start over (see Limiter.revive)
	stale                // the policy was replaced meanwhile: reload it and start over
)

// decided reports whether o is a decision.
func (o outcome) decided() bool { return o <= decidedAdmit }

// A taking is what bucket.take decided, in the numbers its Decision is made
// of (policyMath.decision): the level at bucket time at, the tokens left if
// admitted, and the exact wait for a shortfall. It has four fields so that
// it travels in registers; a Decision is built once, by the caller that
// returns it.
type taking struct {
	level, left, exact float64
	at                 int64
}

// decision is t's Decision under p, admitted or denied.
func (t taking) decision(p *policyMath, o outcome) (d Decision) {
	p.fill(&d, t.level, t.left, o == decidedAdmit, t.exact)
	return d
}

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
	tokens += seconds(now-last) * p.limit
	return min(tokens, p.burst)
}

// seconds is time.Duration(d).Seconds(), bit for bit. Under a second that
// is float64(0) + float64(d)/1e9, which is float64(d)/1e9 (adding +0
// changes no nonzero float, and d/1e9 is only ±0 for d = 0): the integer
// division and remainder are skipped on the hot path, where a bucket is
// read again well within a second.
func seconds(d int64) float64 {
	if d > -int64(time.Second) && d < int64(time.Second) {
		return float64(d) / 1e9
	}
	return time.Duration(d).Seconds()
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
	d = p.decision(tokens, left, ok, exact)
	if !ok {
		return tokens, d, 0
	}
	return left, d, time.Duration(exact) // truncated, as rate.Reservation.Delay
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

// decision is the rest of take: the Decision for decide's results. It
// needs no lock. An admitted reservation may proceed after
// time.Duration(exact) (truncated, as rate.Reservation.Delay).
func (p *policyMath) decision(tokens, left float64, ok bool, exact float64) (d Decision) {
	p.fill(&d, tokens, left, ok, exact)
	return d
}

// fill sets the fields of *d, a zero Decision, to decision's.
func (p *policyMath) fill(d *Decision, tokens, left float64, ok bool, exact float64) {
	d.Limit = p.n
	if !ok {
		d.Remaining = remaining(tokens)
		d.RetryAfter = ceilDuration(exact)
		d.ResetAfter = ceilDuration(p.durationFromTokens(p.burst - tokens))
		return
	}
	d.Allowed = true
	d.Remaining = remaining(left)
	d.ResetAfter = ceilDuration(p.durationFromTokens(p.burst - left))
}

func remaining(tokens float64) int {
	if tokens <= 0 {
		return 0
	}
	return int(tokens)
}

// take applies one request of cost n at now, reserving up to maxWait ahead
// (see policyMath.take). It returns what it decided, admitted or denied (the
// Decision is t.decision, the wait before an admitted request may proceed
// time.Duration(t.exact)), at bucket time t.at from level t.level; if the
// outcome is not a decision, the bucket is unchanged and t is meaningless. A
// reservation made ahead is recorded in ev (nil for AllowN, which never
// reserves ahead). Denials are counted in c, admissions in b.
//
// A request that will be denied is decided on a snapshot, without the lock
// (see bucket); one that will be admitted, or that found a writer busy,
// under the lock.
func (b *bucket) take(p *policyMath, now int64, n int, maxWait time.Duration, c *counters, ev *events) (t taking, o outcome) {
	tokens, w, ok := b.snapshot()
	if !ok {
		return b.takeLocked(p, now, n, maxWait, c, ev)
	}
	return b.takeFrom(tokens, w, false, p, now, n, maxWait, c, ev)
}

// takeLocked is take under the lock.
func (b *bucket) takeLocked(p *policyMath, now int64, n int, maxWait time.Duration, c *counters, ev *events) (taking, outcome) {
	w := b.lock()
	return b.takeFrom(b.level(), w, true, p, now, n, maxWait, c, ev)
}

// takeFrom is take from tokens at clock word w: a consistent snapshot, or
// if held, read under the lock, which it then releases.
func (b *bucket) takeFrom(tokens float64, w uint64, held bool, p *policyMath, now int64, n int, maxWait time.Duration, c *counters, ev *events) (t taking, o outcome) {
	last := lastOf(w)
	if o, refused := refusal(p, last); refused {
		if held {
			b.unlock(w)
		}
		return t, o
	}
	// A request that read the clock before a concurrent one but reached the
	// bucket after it is treated as happening at the later time.
	// rate.Limiter would move last backwards and count the overlap's refill
	// twice.
	t.at = max(now, last)
	t.level = p.advance(tokens, last, t.at)
	var admit bool
	t.left, admit, t.exact = p.decide(t.level, n, maxWait)
	if !admit { // like rate.Limiter, a denial leaves the state as it was
		if held {
			b.unlock(w)
		}
		c.deny()
		return t, decidedDeny
	}
	if !held {
		if !b.clock.CompareAndSwap(w, w|busy) {
			return b.takeLocked(p, now, n, maxWait, c, ev)
		}
		if b.tokens.Load() != math.Float64bits(tokens) || p.stale.Load() {
			// A writer that kept the clock word changed the level, or SetPolicy
			// began: decide again under the lock.
			return b.takeFrom(b.level(), w, true, p, now, n, maxWait, c, ev)
		}
	}
	b.commit(t, c, ev)
	return t, decidedAdmit
}

// commit stores admission t and releases the lock.
func (b *bucket) commit(t taking, c *counters, ev *events) {
	b.tokens.Store(math.Float64bits(t.left))
	b.allowed++
	if ev != nil && t.exact >= 1 { // reserved ahead: rate.Limiter's lastEvent moves
		ev.set(b, t.at+int64(t.exact))
	}
	if b.allowed >= spillAt {
		b.spill(c)
	}
	b.unlock(wordOf(t.at))
}

// refusal is why a bucket whose clock is last cannot be used under p, if
// it cannot (refused).
func refusal(p *policyMath, last int64) (o outcome, refused bool) {
	switch {
	case last < 0:
		return gone, true
	case p.stale.Load():
		return stale, true
	}
	return 0, false
}

// cancel undoes an admitted reservation of n tokens that did not go ahead
// (a Wait cancelled, a composite limit denied elsewhere): r is the policy it
// was made under, due its time-to-act and full as giveBack says; p is the
// policy now (see policyMath.cancelAt). A retired bucket was full: there is
// nothing to give back. It reports false, changing nothing, if p is stale:
// the caller waits for SetPolicy and tries again with the new policy.
func (b *bucket) cancel(p, r *policyMath, n int, due, full, now int64, ev *events) bool {
	w := b.lock()
	last := lastOf(w)
	if o, refused := refusal(p, last); refused {
		b.unlock(w)
		return o != stale
	}
	lastEvent, ahead := ev.get(b)
	s := p.cancelAt(undone{b.level(), last, lastEvent, ahead}, r, n, due, full, now)
	b.tokens.Store(math.Float64bits(s.tokens))
	switch {
	case s.ahead && s.lastEvent != lastEvent:
		ev.set(b, s.lastEvent)
	case ahead && !s.ahead:
		ev.forget(b)
	}
	b.unlock(wordOf(s.last))
	return true
}

// adopt moves b from policy old to p at since (see policyMath.adopt); a
// bucket a racing decision updated later than since adopts p at that time.
func (b *bucket) adopt(old, p *policyMath, since int64) {
	w := b.lock()
	if last := lastOf(w); last >= 0 {
		at := max(since, last)
		b.tokens.Store(math.Float64bits(p.adopt(old, b.level(), last, at)))
		w = wordOf(at)
	}
	b.unlock(w)
}

// spill moves b's counts to c. The caller holds the lock.
func (b *bucket) spill(c *counters) {
	if c != nil && b.allowed != 0 {
		c.add(spreadOf(b), uint64(b.allowed), 0)
	}
	b.allowed = 0
}

// counts adds b's counts to s unless b is retired (its counts are in the
// limiter's already).
func (b *bucket) counts(s *Stats) {
	w := b.lock()
	if lastOf(w) != retired {
		s.Allowed += uint64(b.allowed)
	}
	b.unlock(w)
}

// retire marks the bucket retired if it has refilled to burst at now, which
// makes it indistinguishable from a new bucket, and reports whether it is
// retired. Under a stale policy it does nothing: full under the old Burst
// is not full under a larger new one. A bucket that a snapshot shows is not
// full is left without taking the lock.
func (b *bucket) retire(p *policyMath, now int64, c *counters) bool {
	if tokens, w, ok := b.snapshot(); ok && !full(p, tokens, lastOf(w), now) {
		return lastOf(w) == retired
	}
	w := b.lock()
	switch last := lastOf(w); {
	case last == retired:
		b.unlock(w)
		return true
	case p.stale.Load() || !full(p, b.level(), last, now):
		b.unlock(w)
		return false
	}
	b.spill(c)
	b.unlock(retiredWord)
	return true
}

// full reports whether a bucket holding tokens at last is full at now under
// p; a pending or retired one is not.
func full(p *policyMath, tokens float64, last, now int64) bool {
	return last >= 0 && p.advance(tokens, last, max(now, last)) >= p.burst
}

// retireNow marks the bucket retired whatever it holds (for Reset).
func (b *bucket) retireNow(c *counters) {
	b.lock()
	b.spill(c)
	b.unlock(retiredWord)
}

// settle gives a pending bucket its starting level: tokens, capped at
// burst, at now. It does nothing to a bucket that is no longer pending, or
// under a stale policy (the bucket is then settled under the new one).
func (b *bucket) settle(p *policyMath, tokens float64, now int64) {
	w := b.lock()
	if lastOf(w) == pending && !p.stale.Load() {
		b.tokens.Store(math.Float64bits(min(tokens, p.burst)))
		w = wordOf(now)
	}
	b.unlock(w)
}
