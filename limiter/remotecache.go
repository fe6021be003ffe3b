package limiter

import (
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/floodgate-go/floodgate/internal/syncmap"
)

// An entry is what an instance remembers about one key between round trips
// to the Store: a denial it can repeat without asking (the deny cache) and
// prefetched tokens it may spend (the lease). Entries are kept only for
// keys that were denied or, with prefetch on, recently seen; every other
// remote decision leaves no local state.
//
// Both pieces of state only ever make this instance stricter than the Store
// would be, never more lenient:
//
//   - A denial from the Store at Store time s with wait w means the key's
//     bucket cannot pay the same cost before s+w. The entry records
//     sent+w, where sent is the local time the request was sent (sent ≤ s
//     in real time), so the local denial ends no later than the Store's,
//     and only costs at least as large are denied from it. Requests from
//     other instances only make the real wait longer.
//   - A lease holds tokens already taken from the Store, so spending them
//     is spending tokens the Store admitted once; see store.Config.Prefetch for why
//     they must lapse and how that keeps every interval exact.
type entry struct {
	mu      sync.Mutex
	retired bool // swept: never use again (see sweeper's retire protocol)

	// Deny cache.
	denial     denied
	refreshing bool // a request is asking the Store after the denial ran out

	// Lease (prefetch).
	tokens   int           // whole tokens left
	granted  int           // tokens granted by the lease's round trip
	leaseAt  int64         // when that round trip was sent
	leases   uint64        // leases taken so far: a grant names its lease by this count
	hold     int64         // ns the tokens are held in full
	lastTrip int64         // last round trip for this key (hotness)
	fetched  chan struct{} // non-nil while a prefetch is in flight; closed when it is in
	rate     float64       // tokens per ns, for the lapse
}

// A denied is a Store denial the deny cache repeats (see denial).
type denied struct {
	until int64    // limiter clock: deny until then; 0 when there is no denial
	cost  int      // the denied cost: smaller costs still ask the Store
	level float64  // the Store's level when it decided, or a little less
	at    int64    // when the answer arrived (limiter clock)
	d     Decision // as the Store answered it
}

// deny answers from the deny cache: ok is false when the cache does not
// cover a request of cost n at now. RetryAfter is the wait, from the level
// the Store had, for n tokens, counted from when the Store's answer
// arrived: a client that waits it and repeats the request is admitted if
// nothing else spends meanwhile. When a denial has just run out, the first
// request to see it is told to refresh it (ask the Store; the caller must
// call release); until that answer arrives, the others are denied with a
// wait of one token's refill, so a flood costs one round trip per retry
// window and instance, not one per waiting goroutine. The caller holds
// e.mu.
func (e *entry) deny(p *policyMath, now int64, n int) (d Decision, ok, refresh bool) {
	dn := &e.denial
	if dn.until == 0 || n < dn.cost {
		return d, false, false
	}
	switch {
	case now < dn.until:
		return dn.answer(p, now, n), true, false
	case !e.refreshing:
		e.refreshing = true
		return dn.d, false, true
	}
	d = dn.d
	d.RetryAfter = max(ceilDuration(p.durationFromTokens(1)), 1)
	return dn.withReset(p, now, d), true, false
}

// answer is the cached denial of a request of cost n at now, before until
// (see entry.deny).
func (dn *denied) answer(p *policyMath, now int64, n int) Decision {
	d := dn.d
	d.RetryAfter = durationNs(dn.at + int64(ceilDuration(p.durationFromTokens(float64(n)-dn.level))) - now)
	return dn.withReset(p, now, d)
}

// withReset sets d's ResetAfter: the time to refill from the level the
// Store had, counted from when its answer arrived.
func (dn *denied) withReset(p *policyMath, now int64, d Decision) Decision {
	d.ResetAfter = max(durationNs(dn.at+int64(ceilDuration(p.durationFromTokens(p.burst-dn.level)))-now), d.RetryAfter)
	return d
}

// peek is what fromEntry would answer locally for a request of cost n at
// now under p, taking nothing and claiming nothing: hit is false when
// AllowN would ask the Store (or wait for a prefetch, or refresh a denial
// that ran out), and Peek asks it. The caller holds e.mu.
func (e *entry) peek(p *policyMath, now int64, n int) (d Decision, hit bool) {
	if e.retired || p.stale.Load() {
		return d, false
	}
	if left := e.lapsed(now); left >= n {
		return leaseDecision(p, left-n), true
	}
	if dn := &e.denial; dn.until != 0 && n >= dn.cost && now < dn.until {
		return dn.answer(p, now, n), true
	}
	return d, false
}

// forget drops what the entry holds under a policy SetPolicy replaced.
// The caller holds e.mu.
func (e *entry) forget() {
	e.denial = denied{}
	e.tokens, e.granted = 0, 0
}

// release ends the round trips that c claimed (see deny and fromEntry),
// waking the requests that waited for a prefetch.
func (e *entry) release(c claim) {
	e.mu.Lock()
	if c.fetch {
		close(e.fetched)
		e.fetched = nil
	}
	if c.refresh {
		e.refreshing = false
	}
	e.mu.Unlock()
}

// unhold gives up the part of lease number id's hold that its round
// trip's cost of n tokens paid for, when that cost goes back to the
// Store (a refund), at now. The Store's Hold counts the time to refill
// the cost too (store.Result.Hold): the Store, given the cost back, fills
// up that much sooner, so the lease must lapse that much sooner, or the
// tokens it holds and the Store's would exceed Burst. The Store gives back
// at most n, so the hold shrinks by n's refill time, rounded up. The
// caller holds e.mu.
func (e *entry) unhold(id uint64, n int, now int64) {
	if e.retired || e.granted == 0 || e.leases != id {
		return
	}
	e.hold -= int64(math.Ceil(float64(n) / e.rate))
	e.available(now)
}

// available is how many lease tokens may still be spent at now: all of them
// during the hold, then fewer as they lapse at the policy's rate. The
// caller holds e.mu.
func (e *entry) available(now int64) int {
	e.tokens = e.lapsed(now)
	return e.tokens
}

// lapsed is the lease tokens left at now once the lapse is applied,
// without applying it. The caller holds e.mu.
func (e *entry) lapsed(now int64) int {
	if e.tokens == 0 {
		return 0
	}
	if late := now - e.leaseAt - e.hold; late > 0 {
		lapsed := float64(late) * e.rate
		limit := math.Floor(float64(e.granted) - lapsed)
		if limit < float64(e.tokens) {
			return int(max(limit, 0))
		}
	}
	return e.tokens
}

// spend takes n lease tokens if the lease holds them at now.
func (e *entry) spend(p *policyMath, now int64, n int) (d Decision, ok bool) {
	if e.available(now) < n {
		return d, false
	}
	e.tokens -= n
	return leaseDecision(p, e.tokens), true
}

// leaseDecision is the admission paid by a lease that has left tokens
// after it.
func leaseDecision(p *policyMath, left int) Decision {
	return Decision{Allowed: true, Limit: p.n, Remaining: left,
		ResetAfter: ceilDuration(p.durationFromTokens(p.burst - float64(left)))}
}

// idle reports whether the entry remembers nothing that matters at now:
// no denial in force, no lease tokens, no recent round trip.
func (e *entry) idle(now, hot int64) bool {
	return (e.denial.until == 0 || now >= e.denial.until) && !e.refreshing &&
		e.available(now) == 0 && now-e.lastTrip >= hot && e.fetched == nil
}

func durationNs(ns int64) time.Duration { return time.Duration(max(ns, 1)) }

// entries is the bounded map of entries, swept like the bucket table.
type entries struct {
	m   syncmap.Map[string, *entry]
	n   atomic.Int64
	max int64
}

func (t *entries) load(key string) (*entry, bool) { return t.m.Load(key) }

// get returns key's live entry, creating it if there is room. ok is false
// when the map is full; the caller then goes without.
func (t *entries) get(key string, rate float64) (e *entry, ok bool) {
	for {
		if e, ok := t.m.Load(key); ok {
			return e, true
		}
		if t.n.Load() >= t.max {
			return nil, false
		}
		if t.n.Add(1) > t.max {
			t.n.Add(-1)
			return nil, false
		}
		e, loaded := t.m.LoadOrStore(strings.Clone(key), &entry{rate: rate})
		if !loaded {
			return e, true
		}
		t.n.Add(-1)
	}
}

// CompareAndDelete and Range make entries a sweeper.Table.
func (t *entries) CompareAndDelete(key string, e *entry) bool {
	if !t.m.CompareAndDelete(key, e) {
		return false
	}
	t.n.Add(-1)
	return true
}

// Range visits the entries.
func (t *entries) Range(yield func(string, *entry) bool) { t.m.Range(yield) }
