package redisstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/floodgate-go/floodgate/internal/redistest"
	"github.com/floodgate-go/floodgate/limiter"
	"github.com/floodgate-go/floodgate/store"
)

// The paths of "Exact on every path" on a real redis-server, in real time
// (kept short). The fake-time versions are in package limiter
// (remote_exact_test.go) and in TestLimiterModel.

// Three instances holding prefetched leases lower their policy: from then
// on the key stays within the new Burst + Rate×T. Before the fix, 110–117
// were admitted within 0.4 s against a bound of 3–4.
func TestSetPolicyDropsLeasesRedis(t *testing.T) {
	srv := redistest.Start(t)
	client := newClient(t, srv.Addr())
	s := freshStore(t, client)
	high, low := limiter.Policy{Rate: 1000, Burst: 1000}, limiter.Policy{Rate: 5, Burst: 2}
	var ls []*limiter.Limiter
	for range 3 {
		ls = append(ls, newLimiter(t, high, store.Config{Store: s, Prefetch: 64, Timeout: 5 * time.Second}))
	}
	// Hot below the rate, so that the bucket stays full and every round
	// trip brings a lease of 64 tokens, held for about (64+1)/Rate and then
	// lapsing at Rate: each instance holds one when the policy changes.
	for range 40 {
		for _, l := range ls {
			if _, err := l.Allow(context.Background(), "k"); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	var leases uint64
	for _, l := range ls {
		leases += l.Stats().Store.PrefetchHits
	}
	if leases == 0 {
		t.Fatal("no prefetched lease was used before the change")
	}
	for _, l := range ls {
		if err := l.SetPolicy(low); err != nil {
			t.Fatal(err)
		}
	}
	admitted, elapsed := flood(t, ls, 4, "k", 400*time.Millisecond)
	bound := float64(low.Burst) + float64(low.Rate)*elapsed.Seconds()
	t.Logf("after SetPolicy(%v): admitted %d in %v, bound %.1f (%d lease hits before)", low, admitted, elapsed, bound, leases)
	if float64(admitted) > bound {
		t.Fatalf("admitted %d in %v after lowering the policy: more than Burst + Rate×T = %.1f", admitted, elapsed, bound)
	}
}

// A client that waits exactly RetryAfter and repeats the request is
// admitted, whether the denial came from Redis or from the deny cache, for
// the denied cost or a larger one, across 2 ms each way of network delay.
// Before the fix, a larger cost was told the wait for the smaller one, and
// a cached wait was short by the round trip.
func TestRetryAfterHonestRedis(t *testing.T) {
	srv := redistest.Start(t)
	proxy := redistest.StartProxy(t, srv.Addr())
	proxy.SetDelay(2 * time.Millisecond)
	client := redis.NewClient(&redis.Options{Addr: proxy.Addr, ContextTimeoutEnabled: true, Protocol: 2})
	t.Cleanup(func() { client.Close() })
	// A token every 50 ms: the three denials after draining come well
	// within that, even on a loaded machine, so none of them sees a refill.
	p := limiter.Policy{Rate: 20, Burst: 10}
	l := newLimiter(t, p, store.Config{Store: freshStore(t, client), Timeout: time.Second})
	ctx := context.Background()
	for round := range 3 {
		key := "client-" + string(rune('a'+round))
		if d, err := l.AllowN(ctx, key, 10); err != nil || !d.Allowed {
			t.Fatalf("round %d: draining: %+v, %v", round, d, err)
		}
		var d limiter.Decision
		for _, n := range []int{1, 1, 10} { // Redis's denial, then the cache's, then a larger cost
			var err error
			if d, err = l.AllowN(ctx, key, n); err != nil || d.Allowed {
				t.Fatalf("round %d: cost %d after draining: %+v, %v", round, n, d, err)
			}
		}
		if d.RetryAfter < 450*time.Millisecond {
			t.Fatalf("round %d: cost 10 told RetryAfter %v, want about 500ms", round, d.RetryAfter)
		}
		time.Sleep(d.RetryAfter)
		if got, err := l.AllowN(ctx, key, 10); err != nil || !got.Allowed {
			t.Fatalf("round %d: waited RetryAfter %v for cost 10, then %+v, %v", round, d.RetryAfter, got, err)
		}
	}
	if s := l.Stats(); s.Store.DenyCacheHits == 0 {
		t.Fatalf("the deny cache answered nothing: %+v", s)
	}
}
