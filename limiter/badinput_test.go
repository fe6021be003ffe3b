package limiter

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/floodgate-go/floodgate/store"
	"golang.org/x/time/rate"
)

// Bad input gets an error, never a panic, and is never silently changed.

func TestNilContextIsAnError(t *testing.T) {
	local := mustNew(t, PerSecond(1))
	remote := newRemoteLimiter(t, PerSecond(1), store.Config{Store: newFakeStore()})
	plans := mustPlans(t, map[string]Policy{"free": PerSecond(1)})
	var nilCtx context.Context
	for name, l := range map[string]*Limiter{"local": local, "store": remote} {
		calls := map[string]func() error{
			"Allow":  func() error { _, err := l.Allow(nilCtx, "k"); return err },
			"AllowN": func() error { _, err := l.AllowN(nilCtx, "k", 1); return err },
			"Wait":   func() error { return l.Wait(nilCtx, "k") },
			"Reset":  func() error { return l.Reset(nilCtx, "k") },
			"AllowAll": func() error {
				_, err := AllowAll(nilCtx, Limit{Name: "a", Limiter: l, Key: "k"})
				return err
			},
			"Plans.Allow": func() error { _, err := plans.Allow(nilCtx, "free", "k"); return err },
		}
		for call, f := range calls {
			if err := f(); err == nil || !strings.Contains(err.Error(), "nil Context") {
				t.Errorf("%s: %s(nil ctx) = %v, want a nil Context error", name, call, err)
			}
		}
		if s := l.Stats(); s.Allowed+s.Denied != 0 {
			t.Errorf("%s: calls with a nil ctx made decisions: %+v", name, s)
		}
	}
}

func TestAllowAllRejectsNegativeCost(t *testing.T) {
	l := mustNew(t, PerSecond(10))
	d, err := AllowAll(ctx, Limit{Name: "a", Limiter: l, Key: "k", Cost: -3})
	if !errors.Is(err, ErrInvalidCost) || d.Allowed {
		t.Fatalf("AllowAll with Cost -3 = %+v, %v; want ErrInvalidCost", d, err)
	}
	if s := l.Stats(); s.Allowed != 0 {
		t.Fatalf("a negative cost took tokens: %+v", s)
	}
}

// A cooldown of MaxInt64 keeps the breaker open for good instead of
// overflowing into the past and sending every call to the Store.
func TestBreakerCooldownSaturates(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newFakeStore()
		l := newRemoteLimiter(t, PerSecond(10), store.Config{Store: s, BreakerFailures: 1, BreakerCooldown: math.MaxInt64})
		time.Sleep(time.Second) // now > 0
		s.fail.Store(true)
		l.Allow(ctx, "k") // opens the breaker
		before := s.calls.Load()
		for range 10 {
			if d, err := l.Allow(ctx, "k"); err != nil || !d.Fallback {
				t.Fatalf("Allow with the breaker open = %+v, %v; want a Fallback decision", d, err)
			}
		}
		if n := s.calls.Load() - before; n != 0 {
			t.Fatalf("%d calls reached the Store through an open breaker", n)
		}
	})
}

// Burst is bounded to what a float64 level (here, in rate.Limiter and in
// the Redis script) and a Redis reply hold exactly.
func TestBurstBound(t *testing.T) {
	if _, err := New(Policy{Rate: 1, Burst: maxBurst + 1}); !errors.Is(err, ErrInvalidPolicy) {
		t.Fatalf("New with Burst maxBurst+1 = %v, want ErrInvalidPolicy", err)
	}
	if _, err := New(Policy{Rate: 1, Burst: math.MaxInt64}); !errors.Is(err, ErrInvalidPolicy) {
		t.Fatalf("New with Burst MaxInt64 = %v, want ErrInvalidPolicy", err)
	}
	l := mustNew(t, Policy{Rate: 1, Burst: maxBurst})
	for i := range 3 {
		d, err := l.AllowN(ctx, "k", 1)
		if err != nil || !d.Allowed || d.Remaining != maxBurst-1-i {
			t.Fatalf("take %d from maxBurst: %+v, %v; want Remaining %d", i, d, err, maxBurst-1-i)
		}
	}
	if _, err := New(Policy{Rate: rate.Inf, Burst: math.MaxInt64}); err != nil {
		t.Fatalf("rate.Inf only reports Burst: New = %v", err)
	}
}

// WaitN without a deadline, on a wait no time.Duration holds, says so
// instead of naming a nonsense deadline, and reserves nothing.
func TestWaitTooLongWithoutDeadline(t *testing.T) {
	l := mustNew(t, Policy{Rate: 1e-10, Burst: 1})
	l.Allow(ctx, "k")
	err := l.Wait(ctx, "k")
	if !errors.Is(err, ErrWouldExceedDeadline) || !strings.Contains(err.Error(), "longer than a time.Duration holds") {
		t.Fatalf("Wait = %v, want ErrWouldExceedDeadline saying the wait is too long", err)
	}
	if strings.Contains(err.Error(), "deadline is in") {
		t.Fatalf("Wait without a deadline names one: %v", err)
	}
}
