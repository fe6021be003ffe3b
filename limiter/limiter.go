package limiter

import (
	"context"
	"errors"
	"fmt"
	"strings"
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
}

// Errors returned by a Limiter's methods.
var (
	// ErrClosed is returned by calls made after Close.
	ErrClosed = errors.New("limiter: closed")
	// ErrInvalidCost is wrapped by AllowN's error for a cost below 1 or
	// above the policy's Burst (a request that could never be admitted).
	ErrInvalidCost = errors.New("limiter: invalid cost")
)

// A Limiter enforces one Policy for each key (a client IP, an API key, …).
// Its methods are safe for concurrent use; call Close when done with it.
type Limiter struct {
	policy Policy
	math   policyMath
	epoch  time.Time // the clock is nanoseconds since epoch, read monotonically

	table   table
	over    overflow
	sweeper *sweeper.Sweeper // nil for rate.Inf
	helped  atomic.Uint64    // retired buckets deleted by requests, not the sweeper
	stats   counters
	closed  atomic.Bool

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
		policy: p,
		math:   policyMath{limit: float64(p.Rate), burst: float64(p.Burst), n: p.Burst},
		epoch:  time.Now(),
	}
	l.table.max = int64(c.maxKeys)
	l.over.tokens = l.math.burst
	if p.Rate != rate.Inf {
		l.sweeper = sweeper.Start(&l.table, l.retire, c.sweepInterval)
	}
	// Remote tier hook (remote.go).
	if c.remote.store != nil && p.Rate != rate.Inf {
		if err := l.newRemote(c); err != nil {
			l.Close()
			return nil, err
		}
	}
	return l, nil
}

// Policy returns the policy l enforces.
func (l *Limiter) Policy() Policy { return l.policy }

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
// Any string is a valid key; keys longer than MaxKeyLen are stored as a
// digest. The error is non-nil only for an invalid n (wrapping
// ErrInvalidCost) or a closed Limiter; a denial is a Decision with Allowed
// false. AllowN never blocks, and allocates nothing for a key already
// tracked.
//
// With WithStore, AllowN may wait for the Store (at most the store timeout),
// and the error is also non-nil when the Store could not decide: it then
// wraps ErrStoreUnavailable and the Decision, made by the FailureMode, is
// still the one to apply; or when ctx ended first (Decision zero, denied).
func (l *Limiter) AllowN(ctx context.Context, key string, n int) (Decision, error) {
	if err := l.check(n); err != nil {
		return Decision{}, err
	}
	if l.policy.Rate == rate.Inf {
		return Decision{Allowed: true, Limit: l.policy.Burst, Remaining: l.policy.Burst}, nil
	}
	if l.remote != nil { // remote tier hook (remote.go)
		return l.allowRemote(ctx, key, n)
	}
	key = storageKey(key)
	for {
		if b, ok := l.table.load(key); ok {
			d, live := b.allow(&l.math, l.now(), n) // read the clock after the lookup
			if live {
				l.stats.count(d.Allowed, false)
				return d, nil
			}
			l.revive(key, b)
			continue
		}
		if d, live := l.insert(key, n); live {
			return d, nil
		}
	}
}

func (l *Limiter) check(n int) error {
	if l.closed.Load() {
		return ErrClosed
	}
	if n < 1 || (n > l.policy.Burst && l.policy.Rate != rate.Inf) {
		return fmt.Errorf("%w: cost %d is outside [1, burst %d]", ErrInvalidCost, n, l.policy.Burst)
	}
	return nil
}

// revive deals with a bucket that a request found retired or pending.
// Retired: delete it on the sweeper's behalf (harmless if the sweeper got
// there first) so the retry creates a fresh one. Pending: settle it.
func (l *Limiter) revive(key string, b *bucket) {
	b.mu.Lock()
	isRetired := b.last == retired
	b.mu.Unlock()
	if !isRetired {
		l.settle(b)
		return
	}
	if l.table.CompareAndDelete(key, b) {
		l.helped.Add(1)
	}
}

// insert handles a key that is not in the table. live is false when the
// caller must start over (the key appeared meanwhile).
func (l *Limiter) insert(key string, n int) (d Decision, live bool) {
	if !l.table.reserve() {
		l.sweeper.Kick()
		d, live = l.fromOverflow(key, n)
		if live {
			l.stats.count(d.Allowed, true)
		}
		return d, live
	}
	b, stored := l.table.store(strings.Clone(key), &bucket{last: pending})
	if stored {
		l.settle(b)
	}
	return Decision{}, false // the loop in AllowN takes from b
}

// retire is the sweeper's retire function.
func (l *Limiter) retire(b *bucket) bool { return b.retire(&l.math, l.now()) }

// Reset forgets key: its next request starts with a full bucket. Resetting
// a key that is not tracked does nothing. Unlike sweeping, Reset does change
// decisions; it is for operators (a client unblocked by hand, a test).
func (l *Limiter) Reset(ctx context.Context, key string) error {
	if l.closed.Load() {
		return ErrClosed
	}
	if l.remote != nil { // remote tier hook (remote.go)
		return l.resetRemote(ctx, key)
	}
	key = storageKey(key)
	if b, ok := l.table.load(key); ok {
		b.retireNow()
		l.table.CompareAndDelete(key, b)
	}
	return nil
}

// Stats returns a snapshot of l's counters. It is cheap enough to call from
// a metrics scrape, not from every request.
func (l *Limiter) Stats() Stats {
	s := Stats{Keys: l.table.len(), MaxKeys: int(l.table.max), Retired: l.helped.Load()}
	if l.sweeper != nil {
		s.Retired += l.sweeper.Removed()
		s.Sweeps = l.sweeper.Passes()
	}
	l.stats.sum(&s)
	if l.remote != nil { // remote tier hook (remote.go)
		l.remote.addStats(&s)
	}
	return s
}

// Close stops the sweeper and waits for it to exit. Calls made after Close
// return ErrClosed. Close is idempotent and always returns nil.
func (l *Limiter) Close() error {
	l.closed.Store(true)
	if l.sweeper != nil {
		l.sweeper.Stop()
	}
	if l.remote != nil { // remote tier hook (remote.go)
		l.remote.close()
	}
	return nil
}
