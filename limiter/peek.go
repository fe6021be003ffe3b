package limiter

import (
	"context"
	"fmt"
	"time"

	"github.com/floodgate-go/floodgate/store"
)

// Peek returns the Decision that AllowN(ctx, key, n) would return at this
// instant, and takes nothing: Allowed reports whether the request would
// be admitted, Remaining the whole tokens that would be left (after n if
// admitted), RetryAfter and ResetAfter as AllowN would report them. It is
// rate.Limiter.TokensAt in the form of a Decision, for a status endpoint
// or for choosing between requests before making one.
//
// The errors are AllowN's: a nil ctx, a closed Limiter, an invalid n
// (wrapping ErrInvalidCost), or with a Store, ctx ending before the Store
// answered; an error means no Decision.
//
// Peek changes nothing a later decision depends on, and records nothing:
// a key that is not tracked is answered as AllowN would answer it (at the
// level of the key's cells, which is Burst unless the key, or keys sharing
// its cells, spent there while the table was full: what a new key's bucket
// starts from and what a key that finds the table full is decided by)
// without creating a bucket, counting in Stats.Keys, taking room under
// WithMaxKeys or touching the cells. A Peek is not a decision:
// it is not counted in Stats (Allowed, Denied, Overflowed, Store.Fallbacks
// and the cache hits) and not reported to WithObserver. Peek allocates
// nothing for a local Limiter.
//
// With WithStore, Peek answers locally when AllowN would: from a
// prefetched lease that holds n tokens, or from a denial in the deny cache
// that still covers n; otherwise it asks the Store (Store.Peek, one round
// trip that writes nothing, under the store timeout and circuit breaker,
// counted in Stats.Store.RoundTrips or Errors). The Store's answer is for
// a request without prefetch, so when AllowN would prefetch, its
// Remaining may be lower than Peek's by the tokens it prefetches. When the
// Store cannot answer, the failure mode does, as for AllowN, with Fallback
// set: failing open, what the fail-open buckets would decide; failing
// closed, a denial until the breaker's cooldown ends. Nothing is taken,
// cached or remembered from a Peek.
func (l *Limiter) Peek(ctx context.Context, key string, n int) (Decision, error) {
	for {
		m := l.pm.Load()
		if err := l.check(ctx, m, n); err != nil {
			return Decision{}, err
		}
		if m.inf {
			return m.unlimited(), nil
		}
		var d Decision
		var ok bool
		var err error
		if l.remote != nil { // remote tier hook
			d, ok, err = l.peekRemote(ctx, m, key, n)
		} else {
			d, ok = l.peekLocal(m, key, n)
		}
		if ok {
			return d, err
		}
		l.awaitPolicy() // SetPolicy is replacing m
	}
}

// inspect is AllowAll's look at a limit after a denial: Peek for a local
// Limiter; with a Store, it would cost a round trip, so it knows nothing
// and reports an admission. ok is false if m is stale.
func (l *Limiter) inspect(m *policyMath, key string, n int) (Decision, bool) {
	if m.inf || l.remote != nil {
		return m.unlimited(), true
	}
	return l.peekLocal(m, key, n)
}

// peekLocal is Peek on l's buckets, under m; ok is false, and nothing
// decided, if m is stale.
func (l *Limiter) peekLocal(m *policyMath, key string, n int) (Decision, bool) {
	if b, found := l.table.lookup(key); found {
		tokens, last := b.read() // without the lock, as a denial (see bucket)
		if m.stale.Load() {      // after the read: m had not been replaced when it was made
			return Decision{}, false
		}
		if last >= 0 {
			now := max(l.now(), last) // as bucket.take
			_, d, _ := m.take(m.advance(tokens, last, now), n, 0)
			return d, true
		}
		// Pending or retired: AllowN would settle it, or replace it with a
		// new bucket, from the same level as for an untracked key.
	}
	return l.peekNew(m, key, n)
}

// peekNew is Peek for a key without a bucket. AllowN would give it a new
// bucket, which starts at the level of the key's cells (settle); or, with
// the table full, decide it on those cells. Either way the level is the
// cells', so Peek need not know which would happen, and neither reserves
// room nor scans for it (makeRoom retires buckets).
func (l *Limiter) peekNew(m *policyMath, key string, n int) (Decision, bool) {
	level := l.cellsLevel(m, key, l.now())
	if m.stale.Load() {
		return Decision{}, false
	}
	_, d, _ := m.take(level, n, 0)
	return d, true
}

// peekRemote is Peek with a Store, under m; ok is false, and nothing
// decided, if m is stale. It answers from the key's entry when AllowN
// would (a lease holding n tokens, a denial in force for n), and
// otherwise asks the Store, through the breaker, within the store timeout;
// when the Store cannot answer, peekFallback does.
func (l *Limiter) peekRemote(ctx context.Context, m *policyMath, key string, n int) (Decision, bool, error) {
	r := l.remote
	now := l.now()
	if e, found := r.entries.load(storageKey(key)); found {
		e.mu.Lock()
		d, hit := e.peek(m, now, n)
		e.mu.Unlock()
		if hit {
			return d, true, nil
		}
	}
	if m.stale.Load() {
		return Decision{}, false, nil
	}
	ok, probe := r.breaker.Admit(now)
	if !ok {
		return l.peekFallback(m, key, n), true, nil
	}
	cctx, cancel := context.WithDeadline(ctx, l.epoch.Add(time.Duration(satAdd(now, int64(r.cfg.timeout)))))
	res, err := r.cfg.store.Peek(cctx, key, store.Request{Rate: m.policy.Rate, Burst: m.policy.Burst, Cost: n})
	cancel()
	if err != nil {
		if ctx.Err() != nil { // the caller gave up: not the Store's fault
			r.breaker.Abandon(probe)
			return Decision{}, true, fmt.Errorf("limiter: %w", ctx.Err())
		}
		r.breaker.Failure(l.now(), probe)
		r.cell().storeErrors.Add(1)
		return l.peekFallback(m, key, n), true, nil
	}
	r.breaker.Success(probe)
	r.cell().roundTrips.Add(1)
	return storeDecision(m, res), true, nil
}

// peekFallback is what fallback would decide for key, taking nothing and
// counting nothing.
func (l *Limiter) peekFallback(m *policyMath, key string, n int) Decision {
	r := l.remote
	for !r.cfg.failClosed {
		lm := r.local.pm.Load()
		if n > lm.n {
			break
		}
		if d, ok := r.local.peekLocal(lm, key, n); ok {
			d.Limit, d.Fallback = m.n, true
			return d
		}
		r.local.awaitPolicy()
	}
	wait := r.breaker.Remaining(l.now())
	if wait == 0 {
		wait = int64(r.cfg.cooldown)
	}
	return Decision{Limit: m.n, RetryAfter: time.Duration(wait), Fallback: true}
}
