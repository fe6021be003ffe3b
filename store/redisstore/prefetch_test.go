package redisstore_test

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/alicebob/miniredis/v2"
	"golang.org/x/time/rate"

	"github.com/floodgate-go/floodgate/internal/ratemodel"
	"github.com/floodgate-go/floodgate/limiter"
	"github.com/floodgate-go/floodgate/store"
)

// An AllowAll whose first limit's round trip also takes a prefetch lease,
// and which another limit then denies, gives the cost back to the Store;
// the lease must then lapse sooner, by the cost's refill time. The Store's
// Hold counts the time to refill the cost, so before the fix the lease was
// still held in full when the Store, given the cost back, had refilled to
// Burst: at 250/s, Burst 4, five tokens were admitted at one instant (seed
// 52 of TestLimiterModel with prefetch, shrunk by TestLimiterModelShrink).
func TestPrefetchLeaseAfterRefundOfItsRoundTrip(t *testing.T) {
	m := miniredis.RunT(t)
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		p := limiter.Policy{Rate: 250, Burst: 4} // 4 ms a token
		s := clocked{freshStore(t, newBubbleClient(t, m.Addr())), m}
		l := newLimiter(t, p, store.Config{Store: s, Prefetch: 8})
		deny := newLocalLimiter(t, limiter.Policy{Rate: 1, Burst: 1})
		deny.AllowN(ctx, "x", 1) // drained: it denies the AllowAll below
		ledger := ratemodel.NewLedger(p.Rate, p.Burst)
		allow := func(n int) {
			t.Helper()
			d, err := l.AllowN(ctx, "k", n)
			if err != nil {
				t.Fatal(err)
			}
			if d.Allowed {
				ledger.Admit(time.Now(), n)
			}
		}

		allow(3) // the Store: 4 → 1; the key is hot from now on
		time.Sleep(8 * time.Millisecond)
		// The Store, at 3, takes 2 and leases 1 (held 12 ms), then gets 2
		// back at once: 2, with the lease's 1 held.
		cd, err := limiter.AllowAll(ctx,
			limiter.Limit{Name: "k", Limiter: l, Key: "k", Cost: 2},
			limiter.Limit{Name: "x", Limiter: deny, Key: "x"})
		if err != nil || cd.Allowed || cd.DeniedBy != "x" {
			t.Fatalf("AllowAll: got %+v, %v; want denied by x", cd, err)
		}
		time.Sleep(8 * time.Millisecond) // the Store is full again
		allow(1)
		allow(4)
		if err := ledger.Check(); err != nil {
			t.Fatal(err)
		}
	})
}

func newLocalLimiter(t *testing.T, p limiter.Policy) *limiter.Limiter {
	t.Helper()
	l, err := limiter.New(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// The deny cache ends no later than the Store would admit: RetryAfter is
// rounded up to the ns, rate.Limiter (and the Store's script) admit once
// the wait rounded down has passed, and the cache, which denied until
// RetryAfter, denied a request at that instant that both admit (seed 203
// of TestLimiterModel without prefetch, shrunk: 10/s, Burst 7, cost 6 at
// 402.291ms after a denial whose RetryAfter was 402.291001ms).
func TestDenyCacheEndsWhenTheStoreAdmits(t *testing.T) {
	m := miniredis.RunT(t)
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		p := limiter.Policy{Rate: 10, Burst: 7}
		l := newLimiter(t, p, store.Config{Store: clocked{freshStore(t, newBubbleClient(t, m.Addr())), m}})
		shadow := rate.NewLimiter(p.Rate, p.Burst)
		allow := func(n int) limiter.Decision {
			t.Helper()
			d, err := l.AllowN(ctx, "k", n)
			if err != nil {
				t.Fatal(err)
			}
			if want := shadow.AllowN(time.Now(), n); d.Allowed != want {
				t.Fatalf("AllowN(%d) at %v: got %+v, want Allowed %v as rate.Limiter", n, time.Now(), d, want)
			}
			return d
		}
		allow(7)
		time.Sleep(397709 * time.Microsecond)
		allow(2)
		d := allow(6) // denied: the cache holds it
		time.Sleep(402291 * time.Microsecond)
		if d.RetryAfter <= 402291*time.Microsecond {
			t.Fatalf("RetryAfter %v: the rounding this test is about did not happen", d.RetryAfter)
		}
		allow(6)
	})
}
