package redisstore_test

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/alicebob/miniredis/v2"

	"github.com/floodgate-go/floodgate/limiter"
	"github.com/floodgate-go/floodgate/store"
)

// clocked is a Store whose miniredis clock, the only one the script reads,
// is set to the caller's time.Now before every call: inside a synctest
// bubble, Redis TIME then follows the bubble's fake time exactly.
type clocked struct {
	store.Store
	m *miniredis.Miniredis
}

func (c clocked) Take(ctx context.Context, key string, req store.Request) (store.Result, error) {
	c.m.SetTime(time.Now())
	return c.Store.Take(ctx, key, req)
}

func (c clocked) Peek(ctx context.Context, key string, req store.Request) (store.Result, error) {
	c.m.SetTime(time.Now())
	return c.Store.Peek(ctx, key, req)
}

func (c clocked) Refund(ctx context.Context, key string, req store.Request, at int64) error {
	c.m.SetTime(time.Now())
	return c.Store.Refund(ctx, key, req, at)
}

// slowDeny is a Store that takes delay to answer, and then denies: the
// slow second limit of an AllowAll.
type slowDeny struct{ delay time.Duration }

func (s slowDeny) Take(ctx context.Context, _ string, req store.Request) (store.Result, error) {
	select {
	case <-time.After(s.delay):
	case <-ctx.Done():
		return store.Result{}, ctx.Err()
	}
	return store.Result{RetryAfter: time.Nanosecond}, nil
}

func (s slowDeny) Peek(ctx context.Context, key string, req store.Request) (store.Result, error) {
	return s.Take(ctx, key, req)
}

func (slowDeny) Reset(context.Context, string) error { return nil }

func (slowDeny) Refund(context.Context, string, store.Request, int64) error { return nil }

// An admission happened, on the store's clock, between from and to: the
// times around the call.
type admission struct{ from, to time.Duration }

func (a admission) String() string { return fmt.Sprintf("[%v, %v]", a.from, a.to) }

// checkWindows fails if any interval holds more than Burst + Rate×T
// admissions. Taking each admission at the latest moment it can have
// happened after the first of a window, and at the earliest before it, T
// is never underestimated, so real latency cannot fail it; in fake time
// (from == to) it is exact.
func checkWindows(t *testing.T, p limiter.Policy, admitted []admission) {
	t.Helper()
	slices.SortFunc(admitted, func(a, b admission) int { return cmp.Compare(a.from, b.from) })
	for i := range admitted {
		end := admitted[i].to
		for j := i; j < len(admitted); j++ {
			end = max(end, admitted[j].to)
			span := end - admitted[i].from
			bound := float64(p.Burst) + float64(p.Rate)*span.Seconds()
			if count := float64(j - i + 1); count > bound+1e-9 {
				t.Fatalf("%v admitted in [%v, %v], want at most Burst + Rate×T = %.3f", count, admitted[i].from, end, bound)
			}
		}
	}
}

// slowRefund is the reported over-admission, through the public API: a
// per-IP limit on s (100/s, burst 10) and a slow per-key limit that
// denies after the per-IP bucket has refilled. At 0 ten AllowAll calls
// take the per-IP bucket's 10 tokens, then wait 150 ms on the per-key
// limit; the bucket is full again at 100 ms; at 120 ms a client spends
// those 10 tokens directly; at 150 ms the per-key limit denies and
// AllowAll refunds the 10 tokens; then the client asks 10 more times. It
// returns the client's admissions, and checks them against Burst + Rate×T
// in every window.
func slowRefund(t *testing.T, s store.Store) []admission {
	p := limiter.Policy{Rate: 100, Burst: 10}
	// Generous timeouts: a fail-open fallback on a loaded machine is not
	// what this is about.
	perIP := newLimiter(t, p, store.Config{Store: s, Timeout: 5 * time.Second})
	perKey := newLimiter(t, limiter.PerSecond(1), store.Config{Store: slowDeny{150 * time.Millisecond}, Timeout: 5 * time.Second})
	ctx := context.Background()
	start := time.Now()
	var wg sync.WaitGroup
	for i := range p.Burst {
		wg.Go(func() {
			d, err := limiter.AllowAll(ctx,
				limiter.Limit{Name: "per-ip", Limiter: perIP, Key: "198.51.100.7"},
				limiter.Limit{Name: "per-key", Limiter: perKey, Key: "key-" + string(rune('a'+i))},
			)
			if err != nil || d.Allowed || d.DeniedBy != "per-key" {
				t.Errorf("AllowAll: %+v, %v; want denied by per-key", d, err)
			}
		})
	}
	var admitted []admission
	spend := func(n int) {
		for range n {
			from := time.Since(start)
			d, err := perIP.Allow(ctx, "198.51.100.7")
			if err != nil {
				t.Fatal(err)
			}
			if d.Allowed {
				admitted = append(admitted, admission{from, time.Since(start)})
			}
		}
	}
	time.Sleep(120 * time.Millisecond)
	spend(p.Burst)
	wg.Wait() // the refunds are done
	spend(p.Burst)
	t.Logf("admitted %d: %v", len(admitted), admitted)
	checkWindows(t, p, admitted)
	return admitted
}

// TestAllowAllSlowRefund runs slowRefund on miniredis in fake time
// (synctest), the Redis clock following it.
//
// Before the fix (a refund gave back its whole cost, whenever it came):
// 20 admitted in [120ms, 150ms], against Burst + Rate×T = 13.
// After: 13, the 3 tokens refilled between 120 and 150 ms; every refund
// came 150 ms after its take, by when the bucket had regained its token
// on its own, so none gives anything back.
func TestAllowAllSlowRefund(t *testing.T) {
	m := miniredis.RunT(t) // outside the bubble: its goroutines block on the network
	synctest.Test(t, func(t *testing.T) {
		admitted := slowRefund(t, clocked{freshStore(t, newBubbleClient(t, m.Addr())), m})
		if len(admitted) != 13 {
			t.Errorf("admitted %d, want the 13 the bucket held", len(admitted))
		}
	})
}
