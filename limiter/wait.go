package limiter

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// ErrWouldExceedDeadline is wrapped by WaitN's error when the wait would
// end after the context's deadline. Nothing is reserved in that case.
var ErrWouldExceedDeadline = errors.New("limiter: wait would exceed the context deadline")

// Wait is WaitN(ctx, key, 1).
func (l *Limiter) Wait(ctx context.Context, key string) error { return l.WaitN(ctx, key, 1) }

// WaitN blocks until a request of cost n for key may go ahead: for callers
// that would rather queue than be rejected, such as a client of a
// third-party API with its own limit. It has the semantics of
// rate.Limiter.WaitN: it reserves the tokens at once, so concurrent waiters
// go ahead in the order they called, and then sleeps until the tokens
// exist.
//
// WaitN returns at once, having reserved nothing, if ctx is already done or
// if the wait would end after ctx's deadline (the error then wraps
// ErrWouldExceedDeadline; without a deadline, a wait too long for a
// time.Duration, about 292 years, is refused the same way where
// rate.Limiter would sleep). If ctx is done during the wait, WaitN returns
// ctx.Err() and gives back what rate.Reservation.CancelAt would: the
// tokens no later reservation counts on. Invalid costs, a nil ctx and a
// closed Limiter get AllowN's errors.
func (l *Limiter) WaitN(ctx context.Context, key string, n int) error {
	for {
		m := l.pm.Load()
		if err := l.check(ctx, m, n); err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if m.inf {
			return nil
		}
		if l.remote != nil {
			return l.waitRemote(ctx, key, n)
		}
		maxWait, hasDeadline := time.Duration(math.MaxInt64), false
		if deadline, ok := ctx.Deadline(); ok {
			maxWait, hasDeadline = max(time.Until(deadline), 0), true
		}
		d, wait, g, ok := l.take(m, key, n, maxWait)
		if !ok {
			l.awaitPolicy() // SetPolicy is replacing m
			continue
		}
		var err error
		switch {
		case !d.Allowed && hasDeadline:
			err = fmt.Errorf("%w: a cost of %d needs %v, the deadline is in %v", ErrWouldExceedDeadline, n, d.RetryAfter, maxWait)
		case !d.Allowed:
			err = fmt.Errorf("%w: a cost of %d needs a wait longer than a time.Duration holds", ErrWouldExceedDeadline, n)
		case wait > 0:
			if err = l.sleep(ctx, key, g, n, wait); err != nil {
				d.Allowed = false // undone: reported as a denial
			}
		}
		l.observed(ctx, key, n, d)
		return err
	}
}

// sleep waits out an admitted reservation, or undoes it if ctx ends first.
func (l *Limiter) sleep(ctx context.Context, key string, g grant, n int, wait time.Duration) error {
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		l.refund(ctx, key, g, n)
		return ctx.Err()
	}
}

// waitRemote is WaitN with a Store. The Store's buckets cannot hold a
// reservation, so it asks, and after a denial sleeps for the RetryAfter the
// Store gave and asks again. Waiters are not served in order.
func (l *Limiter) waitRemote(ctx context.Context, key string, n int) error {
	for {
		d, err := l.AllowN(ctx, key, n)
		if err != nil {
			return err
		}
		if d.Allowed {
			return nil
		}
		if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < d.RetryAfter {
			return fmt.Errorf("%w: a cost of %d needs %v, the deadline is in %v", ErrWouldExceedDeadline, n, d.RetryAfter, time.Until(deadline))
		}
		t := time.NewTimer(max(d.RetryAfter, time.Millisecond))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
	}
}

// events holds rate.Limiter's lastEvent — the time-to-act of the latest
// reservation — for the buckets that WaitN reserved ahead on (see bucket).
// Only undoing a reservation reads it. The map is guarded by mu, which is
// taken inside a bucket's lock; n mirrors its length so that the common
// case, no entry at all, costs one atomic load. An entry goes when its
// bucket is retired (a full bucket has no reservation outstanding).
type events struct {
	mu sync.Mutex
	n  atomic.Int64
	m  map[*bucket]int64
}

func (e *events) set(b *bucket, t int64) {
	e.mu.Lock()
	if e.m == nil {
		e.m = make(map[*bucket]int64)
	}
	e.m[b] = t
	e.n.Store(int64(len(e.m)))
	e.mu.Unlock()
}

func (e *events) get(b *bucket) (t int64, ok bool) {
	if e == nil || e.n.Load() == 0 {
		return 0, false
	}
	e.mu.Lock()
	t, ok = e.m[b]
	e.mu.Unlock()
	return t, ok
}

func (e *events) forget(b *bucket) {
	if e.n.Load() == 0 {
		return
	}
	e.mu.Lock()
	delete(e.m, b)
	e.n.Store(int64(len(e.m)))
	e.mu.Unlock()
}
