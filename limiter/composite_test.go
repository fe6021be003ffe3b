package limiter

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/floodgate-go/floodgate/store"
	"golang.org/x/time/rate"
)

// A request denied by the second limit leaves the first limit's tokens
// intact.
func TestAllowAllRefundsOnDenial(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		perIP := mustNew(t, PerMinute(10))
		perKey := mustNew(t, PerMinute(2))
		req := func() CompositeDecision {
			d, err := AllowAll(ctx,
				Limit{Name: "per-ip", Limiter: perIP, Key: "198.51.100.1"},
				Limit{Name: "per-key", Limiter: perKey, Key: "key-123"},
			)
			if err != nil {
				t.Fatal(err)
			}
			return d
		}
		for i := range 2 {
			if d := req(); !d.Allowed || d.Remaining != 1-i || d.Limit != 2 || d.Tightest != "per-key" {
				t.Fatalf("request %d: %+v, want allowed, reporting per-key (Limit 2, Remaining %d)", i, d, 1-i)
			}
		}
		for range 5 {
			d := req()
			if d.Allowed || d.DeniedBy != "per-key" || d.RetryAfter != 30*time.Second {
				t.Fatalf("%+v, want denied by per-key with RetryAfter 30s", d)
			}
		}
		if d, _ := perIP.Allow(ctx, "198.51.100.1"); d.Remaining != 7 {
			t.Fatalf("per-ip Remaining %d after 2 admitted and 5 refunded requests, want 7", d.Remaining)
		}
	})
}

// After a denial, the later limits are inspected for the largest RetryAfter
// but not charged.
func TestAllowAllReportsTheLargestRetryAfter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fast := mustNew(t, PerSecond(1))
		slow := mustNew(t, PerMinute(1))
		fast.Allow(ctx, "k")
		slow.Allow(ctx, "k")
		d, err := AllowAll(ctx, Limit{Name: "fast", Limiter: fast, Key: "k"}, Limit{Name: "slow", Limiter: slow, Key: "k"})
		if err != nil || d.Allowed || d.DeniedBy != "fast" || d.RetryAfter != time.Minute {
			t.Fatalf("AllowAll = %+v, %v; want denied by fast with RetryAfter 1m (slow's)", d, err)
		}
		time.Sleep(time.Second)
		if d, _ := AllowAll(ctx, Limit{Name: "fast", Limiter: fast, Key: "k"}, Limit{Name: "slow", Limiter: slow, Key: "k"}); d.DeniedBy != "slow" {
			t.Fatalf("after 1s: %+v, want denied by slow", d)
		}
		if dd, _ := fast.Allow(ctx, "k"); !dd.Allowed {
			t.Fatal("the request denied by slow burned fast's token")
		}
	})
}

// The cells give nothing back (a cell another key may have been decided on
// cannot be lowered, see overflow.go): a request AllowAll denied elsewhere
// still counts against an untracked key, which is conservative, and only
// for that key.
func TestAllowAllOnCellsGivesNothingBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		capped := mustNew(t, PerMinute(3), WithMaxKeys(1), withCells(1<<16, 2))
		capped.Allow(ctx, "tracked")
		drained := mustNew(t, PerMinute(1))
		drained.Allow(ctx, "k")
		d, _ := AllowAll(ctx, Limit{Name: "capped", Limiter: capped, Key: "untracked"}, Limit{Name: "drained", Limiter: drained, Key: "k"})
		if d.Allowed {
			t.Fatal("admitted past a drained limit")
		}
		if d, _ := capped.Peek(ctx, "untracked", 1); d.Remaining != 1 {
			t.Fatalf("untracked key after a denied AllowAll: %+v, want Remaining 1 (the cells kept the token)", d)
		}
		if d, _ := capped.Peek(ctx, "other", 3); !d.Allowed {
			t.Fatalf("another untracked key: %+v, want its full Burst", d)
		}
	})
}

func TestAllowAllErrorsGiveBack(t *testing.T) {
	a := mustNew(t, PerMinute(5))
	closed := mustNew(t, PerMinute(5))
	closed.Close()
	for _, tc := range []struct {
		name string
		b    Limit
		want error
	}{
		{"closed", Limit{Name: "b", Limiter: closed, Key: "k"}, ErrClosed},
		{"cost above burst", Limit{Name: "b", Limiter: a, Key: "other", Cost: 6}, ErrInvalidCost},
		{"nil limiter", Limit{Name: "b"}, nil},
	} {
		_, err := AllowAll(ctx, Limit{Name: "a", Limiter: a, Key: "k"}, tc.b)
		if err == nil || (tc.want != nil && !errors.Is(err, tc.want)) {
			t.Errorf("%s: error %v, want %v", tc.name, err, tc.want)
		}
	}
	if d, _ := a.Allow(ctx, "k"); d.Remaining != 4 {
		t.Errorf("a: Remaining %d after failed composites, want 4: tokens were not given back", d.Remaining)
	}
}

func TestAllowAllWithUnlimitedAndNoLimits(t *testing.T) {
	inf := mustNew(t, Policy{Rate: rate.Inf, Burst: 100})
	one := mustNew(t, PerMinute(1))
	for i := range 3 {
		d, err := AllowAll(ctx, Limit{Name: "inf", Limiter: inf, Key: "k"}, Limit{Name: "one", Limiter: one, Key: "k"})
		if err != nil || d.Allowed != (i == 0) {
			t.Fatalf("request %d: %+v, %v", i, d, err)
		}
	}
	if d, err := AllowAll(ctx); err != nil || !d.Allowed {
		t.Fatalf("AllowAll() = %+v, %v; want allowed", d, err)
	}
}

func TestAllowAllDoesNotAllocate(t *testing.T) {
	a := mustNew(t, PerSecond(1_000_000))
	b := mustNew(t, PerSecond(1_000_000))
	f := func() {
		AllowAll(ctx, Limit{Name: "a", Limiter: a, Key: "k"}, Limit{Name: "b", Limiter: b, Key: "k"})
	}
	f()
	if n := testing.AllocsPerRun(100, f); n != 0 {
		t.Errorf("AllowAll on tracked keys: %v allocs, want 0", n)
	}
}

// slowDenyStore answers every Take with a denial after delay, in fake time:
// a limit slow enough for the others to refill before AllowAll refunds them.
type slowDenyStore struct{ delay time.Duration }

func (s slowDenyStore) Take(context.Context, string, store.Request) (store.Result, error) {
	time.Sleep(s.delay)
	return store.Result{RetryAfter: time.Second}, nil
}
func (s slowDenyStore) Peek(ctx context.Context, key string, req store.Request) (store.Result, error) {
	return s.Take(ctx, key, req)
}
func (slowDenyStore) Reset(context.Context, string) error                        { return nil }
func (slowDenyStore) Refund(context.Context, string, store.Request, int64) error { return nil }

// A refund never mints tokens: when the second limit answers only after the
// first has refilled, the tokens the first gets back are those it had not
// regained on its own. Reported before the fix: 20 admitted within 1 ms
// against a bound of 10.1.
func TestAllowAllSlowLimitRefundDoesNotMint(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := PerSecond(10)
		perIP := mustNew(t, p)
		slow := mustNew(t, PerSecond(10), WithStore(store.Config{Store: slowDenyStore{delay: time.Second + time.Millisecond}, Timeout: time.Hour}))
		start := time.Now()
		var wg sync.WaitGroup
		for range 10 { // drain perIP; each request then waits on the slow limit
			wg.Go(func() {
				d, err := AllowAll(ctx, Limit{Name: "ip", Limiter: perIP, Key: "ip"}, Limit{Name: "slow", Limiter: slow, Key: "k"})
				if err != nil || d.Allowed {
					t.Errorf("AllowAll = %+v, %v: want denied by the slow limit", d, err)
				}
			})
		}
		var admitted []time.Duration
		take := func() {
			for range 10 {
				if d, _ := perIP.Allow(ctx, "ip"); d.Allowed {
					admitted = append(admitted, time.Since(start))
				}
			}
		}
		time.Sleep(time.Second) // perIP has refilled: its 10 tokens go now
		take()
		wg.Wait() // then the slow limit denies, and the first gets refunds
		take()
		if len(admitted) != 10 {
			t.Errorf("%d admitted at %v, want the 10 perIP refilled, none from refunds", len(admitted), admitted)
		}
		checkWindows(t, "per-ip", p, admitted)
	})
}

// TestAllowEachReportsEveryLimit: each[i] is limits[i]'s part of the
// outcome. Admitted: every limit's own decision. Denied by the second of
// three: the first reports its tokens back and the request's RetryAfter,
// the second its denial, the third, only inspected, what it would decide
// (it took nothing).
func TestAllowEachReportsEveryLimit(t *testing.T) {
	ctx := context.Background()
	a, b, c := mustNew(t, PerMinute(10)), mustNew(t, PerMinute(2)), mustNew(t, PerMinute(5))
	limits := []Limit{{Name: "a", Limiter: a, Key: "k"}, {Name: "b", Limiter: b, Key: "k", Cost: 2}, {Name: "c", Limiter: c, Key: "k"}}
	each := make([]Decision, 3)
	d, err := AllowEach(ctx, each, limits...)
	if err != nil || !d.Allowed || each[0].Remaining != 9 || each[1].Remaining != 0 || each[2].Remaining != 4 || d.Remaining != 0 {
		t.Fatalf("admitted: %+v %v, each %+v", d, err, each)
	}
	d, err = AllowEach(ctx, each, limits...)
	switch {
	case err != nil || d.Allowed || d.DeniedBy != "b":
		t.Fatalf("denied by b: %+v %v", d, err)
	case each[0].Allowed || each[0].Remaining != 9 || each[0].RetryAfter != d.RetryAfter:
		t.Fatalf("a, given back: %+v, want denied with Remaining 9 (its token back) and RetryAfter %v", each[0], d.RetryAfter)
	case each[1].Allowed || each[1].Remaining != 0 || each[1].RetryAfter <= 0:
		t.Fatalf("b, the denial: %+v", each[1])
	case !each[2].Allowed || each[2].Remaining != 3:
		t.Fatalf("c, inspected: %+v, want what it would decide (admit, 3 left after the request it did not take)", each[2])
	}
	if d, _ := c.Allow(ctx, "k"); d.Remaining != 3 {
		t.Fatalf("c after the denial: Remaining %d, want 3 (the inspection took nothing)", d.Remaining)
	}
	if _, err := AllowEach(ctx, each[:2], limits...); err == nil {
		t.Fatal("AllowEach with 2 places for 3 limits: nil error")
	}
}
