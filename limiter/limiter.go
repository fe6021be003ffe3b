package limiter

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/floodgate-go/floodgate/sweeper"
)

// A Decision is the outcome of one request. It is a value, not an error: a
// denied request is a normal result.
type Decision struct {
	// Allowed reports whether the request was admitted (and its cost taken).
	Allowed bool
	// Limit is the policy's Burst: the most a client can spend at once.
	Limit int
	// Remaining is the whole tokens left after this decision.
	Remaining int
	// RetryAfter is 0 when Allowed. When denied, it is the wait after which
	// the same request would be admitted, if nothing else spends first.
	RetryAfter time.Duration
	// ResetAfter is the wait until the bucket is full again.
	ResetAfter time.Duration
	// Fallback reports that the Store could not decide (it failed, timed
	// out, or its circuit breaker is open) and the Limiter's failure mode
	// did: failing open, its per-instance buckets; failing closed, a denial
	// (store.Config.FailClosed). It is
	// counted in Stats.Fallbacks. Never set without a Store.
	Fallback bool
}

// Errors returned by a Limiter's methods.
var (
	// ErrClosed is returned by calls made after Close.
	ErrClosed = errors.New("limiter: closed")
	// ErrInvalidCost is wrapped by AllowN's error for a cost below 1 or
	// above the policy's Burst (a request that could never be admitted).
	ErrInvalidCost = errors.New("limiter: invalid cost")

	errNilContext = errors.New("limiter: nil Context")
)

// A Limiter enforces one Policy for each key (a client IP, an API key, …).
// Its methods are safe for concurrent use; call Close when done with it.
type Limiter struct {
	pm       atomic.Pointer[policyMath] // replaced by SetPolicy
	policyMu sync.Mutex                 // serialises SetPolicy
	inf      bool                       // rate.Inf: decide nothing, track nothing
	epoch    time.Time                  // the clock is nanoseconds since epoch, read monotonically

	table   table
	cells   cells            // the state of keys the table does not hold (overflow.go, cells.go)
	events  events           // rate.Limiter's lastEvent, for buckets WaitN reserved ahead on (wait.go)
	sweeper *sweeper.Sweeper // nil for rate.Inf
	helped  atomic.Uint64    // retired buckets deleted by requests (revive, makeRoom), not the sweeper

	noRoomUntil atomic.Int64 // makeRoom found nothing; do not scan again before this
	stats       counters
	reportedMu  sync.Mutex // guards reported
	reported    Stats      // the last snapshot Stats returned (see monotonic)
	closed      atomic.Bool
	// slow is set when AllowN's fast path cannot decide: rate.Inf, a
	// Store, an observer (all set by New, never changed), or Close. One
	// load instead of one per case.
	slow    atomic.Bool
	observe func(context.Context, Event) // nil unless WithObserver

	remote *remote // remote tier (store.go, remote.go); nil without WithStore
}

// New returns a Limiter that enforces p for every key, and starts its
// sweeper. It returns an error wrapping ErrInvalidPolicy or ErrInvalidOption
// if p or an option is invalid.
func New(p Policy, opts ...Option) (*Limiter, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	c := defaultConfig()
	for _, o := range opts {
		if o == nil {
			return nil, fmt.Errorf("%w: nil Option", ErrInvalidOption)
		}
		if err := o(&c); err != nil {
			return nil, err
		}
	}
	l := &Limiter{
		inf:     p.Rate == rate.Inf,
		epoch:   time.Now(),
		stats:   newCounters(),
		observe: c.observe,
	}
	l.pm.Store(newPolicyMath(p))
	l.table.max = int64(c.maxKeys)
	l.cells = newCells(c.cellCount(), c.cellRows)
	if !l.inf {
		l.sweeper = sweeper.Start(&l.table, l.retire, c.sweepInterval)
	}
	// Remote tier hook (remote.go).
	if c.remote.store != nil && p.Rate != rate.Inf {
		if err := l.newRemote(c); err != nil {
			l.Close()
			return nil, err
		}
	}
	l.slow.Store(l.inf || l.remote != nil || l.observe != nil)
	return l, nil
}

// Policy returns the policy l enforces.
func (l *Limiter) Policy() Policy { return l.pm.Load().policy }

// SetPolicy makes l enforce p from now on, without a restart: for plans
// reloaded at run time. It has the semantics of rate.Limiter's SetLimitAt
// and SetBurstAt at the instant of the call, on every key: each bucket
// keeps the level it has then (refilled under the old policy up to the
// change), then refills at p's Rate and is capped at p's Burst; a bucket
// that is full at the change is full under p too, as a key without a
// bucket is (a new or idle client gets p's Burst at once). When
// SetPolicy returns, no decision uses the old policy any more, and with a
// Store this instance has dropped every deny-cache entry and prefetched
// lease issued under it. A Limiter cannot change to or from rate.Inf (an
// unlimited Limiter tracks nothing to adopt it); that, or an invalid p, is
// an error and changes nothing.
func (l *Limiter) SetPolicy(p Policy) error {
	if err := p.Validate(); err != nil {
		return err
	}
	if (p.Rate == rate.Inf) != l.inf {
		return fmt.Errorf("%w: cannot change to or from rate.Inf; create a new Limiter", ErrInvalidPolicy)
	}
	l.setPolicy(p)
	return nil
}

// setPolicy is SetPolicy for a p already validated. It marks the old
// policy stale, so that decisions under it change nothing and wait
// (awaitPolicy); adopts every bucket to p at one instant, exactly once; and
// only then publishes p. Decisions wait for the walk: about 30 ms at a
// million tracked keys, like Stats.
func (l *Limiter) setPolicy(p Policy) {
	l.policyMu.Lock()
	defer l.policyMu.Unlock()
	old, m := l.pm.Load(), newPolicyMath(p)
	m.changes = old.changes
	if p != old.policy {
		m.changes++
	}
	old.stale.Store(true)
	since := l.now()
	l.table.Range(func(_ tableKey, b *bucket) bool {
		b.adopt(old, m, since)
		return true
	})
	l.cells.adopt(old, m, since)
	if l.remote != nil {
		l.remote.setPolicy(m)
	}
	l.pm.Store(m)
}

// awaitPolicy waits until no SetPolicy is under way: a decision that found
// its policy stale calls it before starting over.
func (l *Limiter) awaitPolicy() {
	l.policyMu.Lock()
	//lint:ignore SA2001 waiting for SetPolicy to release the lock is the point
	l.policyMu.Unlock()
}

// now reads the monotonic clock: one runtime nanotime call, no wall clock.
func (l *Limiter) now() int64 { return int64(time.Since(l.epoch)) }

// Allow is AllowN(ctx, key, 1).
func (l *Limiter) Allow(ctx context.Context, key string) (Decision, error) {
	return l.AllowN(ctx, key, 1)
}

// AllowN decides whether the request identified by key, costing n tokens,
// may happen now, and if so takes the tokens. It has the semantics of
// rate.Limiter.AllowN on a limiter private to key.
//
// Any string is a valid key; keys longer than 64 bytes are stored as a
// digest. A denial is a Decision with Allowed false, not an error. An error
// means that no decision was made: an invalid n (wrapping ErrInvalidCost),
// a nil ctx, a closed Limiter, or, with a Store, ctx ending before the
// Store answered. AllowN never blocks, and allocates nothing for a key
// already tracked.
//
// With WithStore, AllowN may wait for the Store (at most the store
// timeout). When the Store cannot decide, the failure mode does, and the
// Decision says so (Fallback); there is no error then.
func (l *Limiter) AllowN(ctx context.Context, key string, n int) (d Decision, err error) {
	m := l.pm.Load()
	// The fast path: a tracked key, on a plain local limiter. One branch
	// covers every case it does not handle (slow: rate.Inf, a Store, an
	// observer, Close).
	if n >= 1 && n <= m.n && ctx != nil && !l.slow.Load() {
		if b, ok := l.table.lookup(key); ok {
			now := l.now() // read after the lookup: the decision is as late as it can be
			if t, o := b.take(m, now, n, 0, &l.stats, nil); o.decided() {
				// Filled in place: a Decision has too many fields to travel in
				// registers, and each copy of one through memory stalls.
				m.fill(&d, t.level, t.left, o == decidedAdmit, t.exact)
				return d, nil
			}
		}
	}
	return l.allowN(ctx, key, n)
}

// allowN is AllowN beyond the fast path.
func (l *Limiter) allowN(ctx context.Context, key string, n int) (Decision, error) {
	for {
		m := l.pm.Load()
		if err := l.check(ctx, m, n); err != nil {
			return Decision{}, err
		}
		if m.inf {
			return m.unlimited(), nil
		}
		d, _, ok, err := l.takeFor(ctx, m, key, n)
		if !ok {
			l.awaitPolicy() // SetPolicy is replacing m
			continue
		}
		if err == nil {
			l.observed(ctx, key, n, d)
		}
		return d, err
	}
}

// A grant records where a request's tokens came from, so that they can be
// given back (AllowAll, Wait): the key's bucket, the cells, or
// with a Store, a prefetched lease, the Store itself or the fail-open
// buckets. The zero grant holds nothing (rate.Inf, a denial).
type grant struct {
	b     *bucket
	over  bool
	lease *entry      // remote: this entry's lease paid; with store, the round trip took it
	gen   uint64      // remote: which of lease's leases (entry.leases)
	store bool        // remote: a Store round trip
	local bool        // remote: the fail-open buckets (b or over are theirs)
	m     *policyMath // the policy the tokens were taken under (local)
	at    int64       // local: the reservation's time-to-act; store: store.Result.At; lease: the lease's
	full  int64       // local: when the bucket could have been full again without it (giveBack)
}

// takeFor is AllowN's decision, with its grant for AllowAll: the local
// tier's, or the remote tier's. An error means no decision. ok is false if SetPolicy replaced m meanwhile:
// nothing was taken, and the caller starts over with the new policy.
func (l *Limiter) takeFor(ctx context.Context, m *policyMath, key string, n int) (d Decision, g grant, ok bool, err error) {
	if l.remote != nil { // remote tier hook (remote.go)
		return l.allowRemote(ctx, m, key, n)
	}
	d, _, g, ok = l.take(m, key, n, 0)
	return d, g, ok, nil
}

// take decides a request of cost n for key, reserving up to maxWait ahead
// (0 for AllowN). It returns the decision, the wait before an admitted
// request may proceed, and where the tokens came from; ok is false, with
// nothing taken, if m is stale (SetPolicy replaced it).
func (l *Limiter) take(m *policyMath, key string, n int, maxWait time.Duration) (d Decision, wait time.Duration, g grant, ok bool) {
	var ev *events
	if maxWait > 0 {
		ev = &l.events
	}
	for {
		b, found := l.table.lookup(key)
		if !found {
			if !l.table.reserve() && !l.makeRoom(m) {
				l.sweeper.Kick()
				d, wait, at, o := l.fromCells(m, key, n, maxWait)
				switch {
				case o.decided():
					return d, wait, grant{over: true, m: m, at: at + int64(wait)}, true
				case o == stale:
					return d, 0, grant{}, false
				}
				continue
			}
			var stored bool
			if b, stored = l.table.store(ownKey(makeKey(key)), newBucket(0, pending)); stored {
				l.settle(m, key, b)
			}
		}
		// Take from the bucket in the table (found, ours, or one stored
		// meanwhile); if it was retired meanwhile, start over.
		now := l.now() // read after the lookup: the decision is as late as it can be
		t, o := b.take(m, now, n, maxWait, &l.stats, ev)
		switch {
		case o == decidedAdmit:
			wait := time.Duration(t.exact) // truncated, as rate.Reservation.Delay
			return t.decision(m, o), wait, grant{b: b, m: m, at: t.at + int64(wait), full: m.fullAt(t.level, t.at)}, true
		case o == decidedDeny:
			return t.decision(m, o), 0, grant{}, true
		case o == stale:
			return Decision{}, 0, grant{}, false
		}
		if m.stale.Load() { // a pending bucket stays pending until SetPolicy is done
			return Decision{}, 0, grant{}, false
		}
		l.revive(m, key, b)
	}
}

// refund undoes the admission that g records, of n tokens for key, which
// did not go ahead (see policyMath.giveBack for how much comes back). Stats
// count it as denied from then on.
func (l *Limiter) refund(ctx context.Context, key string, g grant, n int) {
	l.stats.refund(uint64(g.at))
	switch {
	case g.lease != nil || g.store || g.local:
		l.refundRemote(ctx, l.pm.Load(), key, g, n)
	case g.b != nil:
		for !g.b.cancel(l.pm.Load(), g.m, n, g.at, g.full, l.now(), &l.events) {
			l.awaitPolicy()
		}
	}
	// g.over: the cells give nothing back (see overflow.go).
}

func (l *Limiter) check(ctx context.Context, m *policyMath, n int) error {
	if ctx == nil {
		return errNilContext
	}
	if l.closed.Load() {
		return ErrClosed
	}
	if n < 1 || (n > m.n && !m.inf) {
		return fmt.Errorf("%w: cost %d is outside [1, burst %d]", ErrInvalidCost, n, m.n)
	}
	return nil
}

// revive deals with a bucket that a request found retired or pending.
// Retired: delete it on the sweeper's behalf (harmless if the sweeper got
// there first) so the retry creates a fresh one. Pending: settle it.
func (l *Limiter) revive(m *policyMath, key string, b *bucket) {
	if lastOf(b.clock.Load()) != retired { // retired is final: no lock needed
		l.settle(m, key, b)
		return
	}
	if l.table.CompareAndDelete(makeKey(key), b) {
		l.helped.Add(1)
	}
}

// evictScan is how many tracked buckets a request for a new key inspects,
// when the table is full, for one it can retire to make room.
const evictScan = 16

// makeRoom retires and deletes one bucket that has refilled to Burst, if it
// finds one among the first evictScan entries of the table, and reports
// whether it did; the freed slot is then the caller's reservation, so a
// concurrent new key cannot take it first. This is the sweeper's retire protocol run inline,
// so it is just as lossless; it means a new key goes to its cells
// only when the buckets it looked at all still hold spending to remember,
// not merely because the sweeper has not passed yet. Under a spray of
// single requests, the sprayed buckets refill within 1/Rate and make room
// for clients coming back.
//
// After a scan that found nothing, buckets need time to refill before
// another can succeed, so scans pause for the time one token takes (at
// most 100ms): under a spray of keys that all hold spending, a new key
// costs a scan at most that often, not on every request.
func (l *Limiter) makeRoom(m *policyMath) bool {
	now := l.now()
	if now < l.noRoomUntil.Load() {
		return false
	}
	seen, freed := 0, false
	l.table.Range(func(k tableKey, b *bucket) bool {
		if l.retireIdle(b, m, now) && l.table.takeOver(k, b) {
			l.events.forget(b)
			l.helped.Add(1)
			freed = true
			return false
		}
		seen++
		return seen < evictScan
	})
	if !freed {
		l.noRoomUntil.Store(now + int64(min(m.durationFromTokens(1), float64(100*time.Millisecond))))
	}
	return freed
}

// retire is the sweeper's retire function.
func (l *Limiter) retire(b *bucket) bool {
	if !l.retireIdle(b, l.pm.Load(), l.now()) {
		return false
	}
	l.events.forget(b)
	return true
}

// retireIdle retires b if it is as a new bucket would be: refilled to
// Burst, and with no reservation made ahead still due. A full bucket can
// have one after SetPolicy raised the rate under a pending WaitN, and
// undoing an admission reads that reservation's time (rate.Limiter's
// lastEvent), which a new bucket does not have: retiring it then would
// change how much a refund gives back.
func (l *Limiter) retireIdle(b *bucket, m *policyMath, now int64) bool {
	if due, ahead := l.events.get(b); ahead && due > now {
		return false
	}
	return b.retire(m, now, &l.stats)
}

// Reset forgets key: its next request starts with a full bucket. Resetting
// a key that is not tracked does nothing. Unlike sweeping, Reset does change
// decisions; it is for operators (a client unblocked by hand, a test).
func (l *Limiter) Reset(ctx context.Context, key string) error {
	if ctx == nil {
		return errNilContext
	}
	if l.closed.Load() {
		return ErrClosed
	}
	if l.remote != nil { // remote tier hook (remote.go)
		return l.resetRemote(ctx, key)
	}
	if b, ok := l.table.lookup(key); ok {
		b.retireNow(&l.stats)
		l.events.forget(b)
		l.table.CompareAndDelete(makeKey(key), b)
	}
	return nil
}

// Stats returns a snapshot of l's counters. Admissions are counted in their
// buckets (denials in striped counters), so Stats visits every tracked
// bucket (about 30 ms at a million keys): fine for a metrics scrape, not
// for every request. A snapshot
// taken while buckets are being retired may miss their counts until the
// next one; no counter is ever reported lower than in an earlier snapshot.
func (l *Limiter) Stats() Stats {
	s := Stats{Keys: l.table.len(), MaxKeys: int(l.table.max), Retired: l.helped.Load()}
	if l.sweeper != nil {
		s.Retired += l.sweeper.Removed()
		s.Sweeps = l.sweeper.Passes()
	}
	refunded := l.stats.sum(&s)
	l.table.Range(func(_ tableKey, b *bucket) bool {
		b.counts(&s)
		return true
	})
	s.Allowed -= min(refunded, s.Allowed)
	s.Denied += refunded
	if l.remote != nil { // remote tier hook (remote.go)
		l.remote.addStats(&s.Store)
	}
	return l.monotonic(s)
}

// monotonic raises each cumulative counter of s to at least what an earlier
// snapshot reported, and remembers s.
func (l *Limiter) monotonic(s Stats) Stats {
	l.reportedMu.Lock()
	defer l.reportedMu.Unlock()
	p := &l.reported
	for _, c := range [...]struct{ got, prev *uint64 }{
		{&s.Allowed, &p.Allowed}, {&s.Denied, &p.Denied}, {&s.Overflowed, &p.Overflowed},
		{&s.Retired, &p.Retired}, {&s.Sweeps, &p.Sweeps}, {&s.Store.RoundTrips, &p.Store.RoundTrips},
		{&s.Store.Errors, &p.Store.Errors}, {&s.Store.DenyCacheHits, &p.Store.DenyCacheHits},
		{&s.Store.PrefetchHits, &p.Store.PrefetchHits}, {&s.Store.Fallbacks, &p.Store.Fallbacks},
		{&s.Store.BreakerOpens, &p.Store.BreakerOpens},
	} {
		*c.got = max(*c.got, *c.prev)
	}
	*p = s
	return s
}

// Close stops the sweeper and waits for it to exit. Calls made after Close
// return ErrClosed. Close is idempotent and always returns nil.
func (l *Limiter) Close() error {
	l.closed.Store(true)
	l.slow.Store(true)
	if l.sweeper != nil {
		l.sweeper.Stop()
	}
	if l.remote != nil { // remote tier hook (remote.go)
		l.remote.close()
	}
	return nil
}
