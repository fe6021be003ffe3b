package redisstore_test

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/alicebob/miniredis/v2"

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
		s := clocked{freshStore(t, newClient(t, m.Addr())), m}
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
