package limiter

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/floodgate-go/floodgate/internal/breaker"
	"github.com/floodgate-go/floodgate/store"
	"github.com/floodgate-go/floodgate/sweeper"
)

// remote is a Limiter's remote tier: the Store, the breaker and failure
// policy in front of it, and the per-key entries (deny cache and prefetch
// leases) that save round trips.
//
// The order of a decision: a lease that holds the cost pays for it; else a
// denial still in force answers; else the breaker decides whether the
// Store is asked; if it is not, or it fails, the failure mode
// (store.Config.FailClosed) decides.
type remote struct {
	cfg     remoteConfig
	breaker breaker.Breaker
	entries entries
	sweeper *sweeper.Sweeper
	local   *Limiter     // the fail-open per-instance buckets
	hot     atomic.Int64 // ns: a round trip closer than this to the last one marks the key hot
	stats   [numCells]remoteCell
}

type remoteCell struct {
	roundTrips, storeErrors, denyHits, leaseHits, fallbacks atomic.Uint64
	_                                                       [64 - 5*8]byte
}

func (l *Limiter) newRemote(c config) error {
	rc := c.remote
	m := l.pm.Load()
	local, err := New(localPolicy(m.policy, rc.share), WithMaxKeys(c.maxKeys), WithSweepInterval(c.sweepInterval))
	if err != nil {
		return err
	}
	r := &remote{cfg: rc, local: local}
	r.breaker.Threshold, r.breaker.Cooldown = int64(rc.failures), int64(rc.cooldown)
	r.entries.max = int64(c.maxKeys)
	r.hot.Store(hotGap(m, rc.prefetch))
	now := l.now
	r.sweeper = sweeper.Start(&r.entries, func(e *entry) bool {
		e.mu.Lock()
		defer e.mu.Unlock()
		if e.retired || e.idle(now(), r.hot.Load()) {
			e.retired = true
		}
		return e.retired
	}, c.sweepInterval)
	l.remote = r
	return nil
}

func (r *remote) cell() *remoteCell { return &r.stats[rand.Uint32()%numCells] }

// hotGap is the gap between round trips under which a key counts as hot:
// the time the policy takes to refill prefetch+1 tokens.
func hotGap(m *policyMath, prefetch int) int64 {
	return int64(ceilDuration(m.durationFromTokens(float64(prefetch + 1))))
}

// setPolicy makes the remote tier follow a new policy (SetPolicy). m's
// predecessor is already stale, so record stores nothing more from a round
// trip made under it; what the entries hold from before is dropped here:
// a lease's tokens were granted under the old Burst, and a denial's wait
// was computed under the old Rate.
func (r *remote) setPolicy(m *policyMath) {
	r.local.setPolicy(localPolicy(m.policy, r.cfg.share))
	r.hot.Store(hotGap(m, r.cfg.prefetch))
	r.entries.Range(func(_ string, e *entry) bool {
		e.mu.Lock()
		e.forget()
		e.mu.Unlock()
		return true
	})
}

// allowRemote is AllowN with a Store; n has been checked against m. It
// answers from the key's entry when it can (a lease, a denial in force,
// or, for a hot key, the tokens of a prefetch already in flight), and asks
// the Store otherwise. The grant says where an admission's tokens came
// from. The whole call, waits for another request's prefetch included,
// takes at most the store timeout.
func (l *Limiter) allowRemote(ctx context.Context, m *policyMath, key string, n int) (d Decision, g grant, ok bool, err error) {
	r := l.remote
	ekey := storageKey(key)
	now := l.now()
	deadline := satAdd(now, int64(r.cfg.timeout))
	extra := 0
	for waited := false; ; waited = true {
		if m.stale.Load() { // SetPolicy is replacing m: start over with the new one
			return d, g, false, nil
		}
		e, found := r.entries.load(ekey)
		if !found {
			break
		}
		d, g, hit, c, wait := l.fromEntry(m, e, now, n, !waited)
		if hit {
			l.stats.count(rand.Uint64(), d.Allowed, false)
			return d, g, true, nil
		}
		if wait != nil { // a prefetch for this key is in flight: wait for its tokens
			arrived, err := l.awaitPrefetch(ctx, wait, deadline)
			if err != nil {
				return Decision{}, grant{}, true, err
			}
			if !arrived { // the store timeout passed: the failure mode decides
				d, g = l.fallback(m, key, n)
				return d, g, true, nil
			}
			now = l.now()
			continue
		}
		if c.fetch {
			extra = r.cfg.prefetch
		}
		if c != (claim{}) {
			defer e.release(c)
		}
		break
	}
	d, g, err = l.ask(ctx, m, key, ekey, n, extra, now, deadline)
	return d, g, true, err
}

// awaitPrefetch waits until fetched is closed (arrived), ctx is done (the
// error), or the deadline (limiter clock) passes (neither).
func (l *Limiter) awaitPrefetch(ctx context.Context, fetched <-chan struct{}, deadline int64) (arrived bool, err error) {
	t := time.NewTimer(time.Duration(deadline - l.now()))
	defer t.Stop()
	select {
	case <-fetched:
		return true, nil
	case <-ctx.Done():
		return false, fmt.Errorf("limiter: %w", ctx.Err())
	case <-t.C:
		return false, nil
	}
}

// ask decides with one Store call (sent at now), or with the failure mode
// when the breaker is open or the call fails.
func (l *Limiter) ask(ctx context.Context, m *policyMath, key, ekey string, n, extra int, now, deadline int64) (Decision, grant, error) {
	r := l.remote
	ok, probe := r.breaker.Admit(now)
	if !ok {
		d, g := l.fallback(m, key, n)
		return d, g, nil
	}
	res, err := l.callStore(ctx, key, store.Request{Rate: m.policy.Rate, Burst: m.policy.Burst, Cost: n, Extra: extra}, deadline)
	if err != nil {
		if ctx.Err() != nil { // the caller gave up: not the Store's fault
			r.breaker.Abandon(probe)
			return Decision{}, grant{}, fmt.Errorf("limiter: %w", ctx.Err())
		}
		r.breaker.Failure(l.now(), probe)
		r.cell().storeErrors.Add(1)
		d, g := l.fallback(m, key, n)
		return d, g, nil
	}
	r.breaker.Success(probe)
	r.cell().roundTrips.Add(1)
	d := storeDecision(m, res)
	g := grant{store: d.Allowed, at: res.At}
	g.lease, g.gen = l.record(m, ekey, now, l.now(), d, res, n)
	l.stats.count(rand.Uint64(), d.Allowed, false)
	return d, g, nil
}

// storeDecision is the Decision for the Store's answer res under m, its
// numbers clamped to what a Decision can say.
func storeDecision(m *policyMath, res store.Result) Decision {
	return Decision{Allowed: res.Allowed, Limit: m.n, Remaining: min(max(res.Remaining, 0), m.n),
		RetryAfter: max(res.RetryAfter, 0), ResetAfter: max(res.ResetAfter, 0)}
}

// A claim is the round trip a request makes on behalf of its instance's
// other requests for the key; it must be released when the call returns.
type claim struct {
	fetch   bool // a prefetch: others wait for its tokens
	refresh bool // the first ask after a cached denial ran out
}

// fromEntry tries to decide locally from e. Otherwise it says what the
// round trip claims, or, if mayWait and a prefetch for the key is in
// flight, returns a channel closed when that prefetch's tokens are in.
func (l *Limiter) fromEntry(m *policyMath, e *entry, now int64, n int, mayWait bool) (d Decision, g grant, hit bool, c claim, wait <-chan struct{}) {
	r := l.remote
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.retired {
		return d, g, false, c, nil
	}
	if d, ok := e.spend(m, now, n); ok {
		r.cell().leaseHits.Add(1)
		return d, grant{lease: e, at: e.leaseAt, gen: e.leases}, true, c, nil
	}
	d, ok, refresh := e.deny(m, now, n)
	if ok {
		r.cell().denyHits.Add(1)
		return d, g, true, c, nil
	}
	c.refresh = refresh
	switch {
	case r.cfg.prefetch == 0:
	case e.fetched != nil:
		if mayWait && !refresh {
			return d, g, false, c, e.fetched
		}
	case now-e.lastTrip < r.hot.Load():
		e.fetched = make(chan struct{})
		c.fetch = true
	}
	return d, g, false, c, nil
}

// callStore makes one Store call that ends by deadline (limiter clock).
func (l *Limiter) callStore(ctx context.Context, key string, req store.Request, deadline int64) (store.Result, error) {
	cctx, cancel := context.WithDeadline(ctx, l.epoch.Add(time.Duration(deadline)))
	res, err := l.remote.cfg.store.Take(cctx, key, req)
	cancel()
	return res, err
}

// record remembers what the Store said about the key under m (res, and
// the Decision made of it), asked at now and answered at done: a denial for the deny cache, granted tokens as
// a lease, the round trip for hotness. Nothing is remembered from a round
// trip made under a policy SetPolicy has replaced since. If the round trip
// took a lease, record returns its entry and number (see entry.unhold).
func (l *Limiter) record(m *policyMath, ekey string, now, done int64, d Decision, res store.Result, n int) (lease *entry, id uint64) {
	r := l.remote
	dn := denial(m, now, done, d, n)
	var e *entry
	var ok bool
	if dn.until != 0 || r.cfg.prefetch > 0 {
		e, ok = r.liveEntry(ekey, m.limit/float64(time.Second))
	} else if e, ok = r.entries.load(ekey); ok { // an admission ends a denial
		e.mu.Lock()
	}
	if !ok {
		return
	}
	defer e.mu.Unlock()
	if m.stale.Load() { // under e.mu: SetPolicy's sweep of the entries has passed or will
		return
	}
	e.denial = dn
	if r.cfg.prefetch == 0 || !d.Allowed {
		return
	}
	e.lastTrip = max(e.lastTrip, done) // the gap to the next trip excludes this one's latency
	if res.Extra > 0 {                 // a new lease replaces the old one, whose tokens are lost
		e.tokens, e.granted, e.leaseAt, e.hold = res.Extra, res.Extra, now, int64(res.Hold)
		e.rate = m.limit / float64(time.Second)
		e.leases++
		return e, e.leases
	}
	return nil, 0
}

// denial returns the deny-cache entry for a Store decision d on cost n,
// sent at now and answered at done; its until is 0 when there is nothing
// to cache. A denial is cached as it is. An admission that left the bucket
// short of one token is cached too, as a denial of cost 1 until that token
// refills, which keeps the goroutines of an instance from all asking Redis
// after each admission of a flooded key.
//
// The Store's level when it decided is Burst − ResetAfter×Rate or a little
// more (ResetAfter was rounded up). The cache denies until the wait for
// the denied cost, from the level, has passed since the request was sent,
// less 1 ns, so never as late as the Store would: RetryAfter is rounded up
// to the ns, and rate.Limiter (and the Store) admit at the wait rounded
// down, so denying until RetryAfter itself denied, at that instant, a
// request the Store admits. RetryAfter tells a client the wait for its
// own cost from the level, counted from when the answer arrived, so a
// client that waits it is admitted (see entry.deny).
func denial(m *policyMath, now, done int64, d Decision, n int) denied {
	level := m.burst - d.ResetAfter.Seconds()*m.limit
	if !d.Allowed {
		return denied{until: now + max(int64(d.RetryAfter)-1, 1), cost: n, level: level, at: done, d: d}
	}
	if d.Remaining > 0 {
		return denied{}
	}
	wait := int64(m.durationFromTokens(1-level)) - 1
	if level >= 1 || wait < 1 {
		return denied{}
	}
	return denied{until: now + wait, cost: 1, level: level, at: done, d: Decision{Limit: d.Limit, Remaining: d.Remaining}}
}

// liveEntry returns key's entry, locked and not retired, creating it if
// there is room.
func (r *remote) liveEntry(key string, rate float64) (*entry, bool) {
	for {
		e, ok := r.entries.get(key, rate)
		if !ok {
			return nil, false
		}
		e.mu.Lock()
		if !e.retired {
			return e, true
		}
		e.mu.Unlock()
		r.entries.CompareAndDelete(key, e)
	}
}

// fallback decides without the Store, following the failure mode; the
// decision says so (Fallback).
func (l *Limiter) fallback(m *policyMath, key string, n int) (Decision, grant) {
	r := l.remote
	r.cell().fallbacks.Add(1)
	if d, g, ok := r.failOpen(key, n); ok {
		d.Limit, d.Fallback = m.n, true
		l.stats.count(rand.Uint64(), d.Allowed, false)
		g.local = d.Allowed
		return d, g
	}
	wait := r.breaker.Remaining(l.now())
	if wait == 0 {
		wait = int64(r.cfg.cooldown)
	}
	l.stats.count(rand.Uint64(), false, false)
	return Decision{Limit: m.n, RetryAfter: time.Duration(wait), Fallback: true}, grant{}
}

// failOpen decides with the fail-open local buckets, if that is the mode and
// n fits their policy.
func (r *remote) failOpen(key string, n int) (Decision, grant, bool) {
	for !r.cfg.failClosed {
		lm := r.local.pm.Load()
		if n > lm.n {
			break
		}
		if d, _, g, ok := r.local.take(lm, key, n, 0); ok {
			return d, g, true
		}
		r.local.awaitPolicy()
	}
	return Decision{}, grant{}, false
}

// refundRemote gives back n tokens of an admission the remote tier made,
// where they came from: the lease, if it is still the one they came from
// (and still subject to its lapse, which keeps every interval exact); the
// Store (one round trip, less what the bucket refilled since, see
// Store.Refund; a failure only under-admits, so it is counted and
// otherwise ignored), after shortening the hold of the lease the same
// round trip took, if any (entry.unhold); or the fail-open buckets.
func (l *Limiter) refundRemote(ctx context.Context, m *policyMath, key string, g grant, n int) {
	r := l.remote
	switch {
	case g.store:
		if e := g.lease; e != nil { // before the Store has the cost back: never both
			e.mu.Lock()
			e.unhold(g.gen, n, l.now())
			e.mu.Unlock()
		}
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.cfg.timeout)
		err := r.cfg.store.Refund(cctx, key, store.Request{Rate: m.policy.Rate, Burst: m.policy.Burst, Cost: n}, g.at)
		cancel()
		if err != nil {
			r.cell().storeErrors.Add(1)
			return
		}
		if e, ok := r.entries.load(storageKey(key)); ok { // the cache may hold a denial the refund lifts
			e.mu.Lock()
			e.denial = denied{}
			e.mu.Unlock()
		}
	case g.lease != nil:
		e := g.lease
		e.mu.Lock()
		if !e.retired && e.granted > 0 && e.leases == g.gen { // the same lease, not one SetPolicy dropped or a newer one
			e.tokens = min(e.tokens+n, e.granted)
			e.available(l.now()) // re-apply the lapse cap
		}
		e.mu.Unlock()
	case g.local:
		g.local = false
		r.local.refund(ctx, key, g, n)
	}
}

// resetRemote is Reset with a Store: it resets the key in the Store and
// forgets what this instance knew about it. Other instances may still
// answer from their own deny cache (until the denial they saw ends) or
// leases (tokens they already hold).
func (l *Limiter) resetRemote(ctx context.Context, key string) error {
	r := l.remote
	ekey := storageKey(key)
	if e, ok := r.entries.load(ekey); ok {
		e.mu.Lock()
		e.forget()
		e.mu.Unlock()
	}
	if err := r.local.Reset(ctx, key); err != nil {
		return err
	}
	cctx, cancel := context.WithTimeout(ctx, r.cfg.timeout)
	defer cancel()
	if err := r.cfg.store.Reset(cctx, key); err != nil {
		r.cell().storeErrors.Add(1)
		return fmt.Errorf("%w: %w", store.ErrUnavailable, err)
	}
	return nil
}

// addStats adds the remote tier's counters to s.
func (r *remote) addStats(s *store.Stats) {
	for i := range r.stats {
		c := &r.stats[i]
		s.RoundTrips += c.roundTrips.Load()
		s.Errors += c.storeErrors.Load()
		s.DenyCacheHits += c.denyHits.Load()
		s.PrefetchHits += c.leaseHits.Load()
		s.Fallbacks += c.fallbacks.Load()
	}
	s.BreakerOpens = r.breaker.Opens()
	s.BreakerOpen = r.breaker.Open()
	s.CachedKeys = int(r.entries.n.Load())
}

func (r *remote) close() {
	r.sweeper.Stop()
	r.local.Close()
}
