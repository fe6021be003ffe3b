package limiter

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"
)

// ErrWouldExceedDeadline is wrapped by WaitN's error when the wait would
// end after the context's deadline. Nothing is reserved in that case.
var ErrWouldExceedDeadline = errors.New("limiter: wait would exceed the context deadline")

// Wait is WaitN(ctx, key, 1).
func (l *Limiter) Wait(ctx context.Context, key string) error { return l.WaitN(ctx, key, 1) }

// WaitN blocks until a request of cost n for key may go ahead: for callers
// that would rather queue than be rejected, such as a client of a
// third-party API with its own limit. Like rate.Limiter.WaitN, it reserves
// the tokens at once, so concurrent waiters go ahead in the order they
// called, and then sleeps until the tokens exist.
//
// WaitN returns at once, having reserved nothing, if ctx is already done or
// if the wait would end after ctx's deadline (the error then wraps
// ErrWouldExceedDeadline). If ctx is done during the wait, the reserved
// tokens are given back and ctx.Err() is returned. Invalid costs and a
// closed Limiter get AllowN's errors.
func (l *Limiter) WaitN(ctx context.Context, key string, n int) error {
	m := l.pm.Load()
	if err := l.check(m, n); err != nil {
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
	maxWait := time.Duration(math.MaxInt64)
	if deadline, ok := ctx.Deadline(); ok {
		maxWait = max(time.Until(deadline), 0)
	}
	d, wait, g := l.take(m, key, n, maxWait)
	if !d.Allowed {
		return fmt.Errorf("%w: a cost of %d needs %v, the deadline is in %v", ErrWouldExceedDeadline, n, d.RetryAfter, maxWait)
	}
	if wait == 0 {
		return nil
	}
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
		if err != nil && !errors.Is(err, ErrStoreUnavailable) {
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
