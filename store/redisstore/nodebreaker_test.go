package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/floodgate-go/floodgate/internal/redistest"
	"github.com/floodgate-go/floodgate/limiter"
	"github.com/floodgate-go/floodgate/store"
	"github.com/floodgate-go/floodgate/store/redisstore"
)

// One master of three dies. Its keys' calls fail until its breaker opens
// after 5 failures; then they fail at once with store.ErrUnavailable, and a
// Limiter decides them by its failure mode without waiting for its
// timeout, while its own breaker stays closed: keys on the live masters
// keep getting Redis's decisions throughout. The breaker probes after each
// cooldown (the Store's clock is injected), stays open while the master is
// down, and closes once it is back.
func TestNodeBreakerCluster(t *testing.T) {
	// without full coverage, the live masters serve their slots while one is down
	c := redistest.StartCluster(t, "--cluster-require-full-coverage", "no")
	client := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs(), ContextTimeoutEnabled: true, Protocol: 2})
	t.Cleanup(func() { client.Close() })
	s := freshStore(t, client, redisstore.WithNodeBreaker(5, time.Second))
	var clock atomic.Int64
	redisstore.SetClock(s, clock.Load)
	ctx := context.Background()

	dead := c.Servers[0]
	var deadKeys, liveKeys []string
	for i := 0; len(deadKeys) < 20 || len(liveKeys) < 20; i++ {
		key := fmt.Sprintf("k%d", i)
		m, err := client.MasterForKey(ctx, s.Key(key))
		if err != nil {
			t.Fatal(err)
		}
		if m.Options().Addr == dead.Addr() {
			deadKeys = append(deadKeys, key)
		} else {
			liveKeys = append(liveKeys, key)
		}
	}
	const timeout = time.Second
	l := newLimiter(t, limiter.PerHour(1000), store.Config{Store: s, Timeout: timeout})
	allow := func(key string) (limiter.Decision, time.Duration) {
		start := time.Now()
		d, err := l.Allow(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		return d, time.Since(start)
	}
	live := func() {
		t.Helper()
		for _, k := range liveKeys[:3] {
			if d, _ := allow(k); d.Fallback || !d.Allowed {
				t.Fatalf("live key %s: %+v, want Redis's admission", k, d)
			}
		}
	}
	live()
	dead.Kill()
	for i := range 5 {
		if d, _ := allow(deadKeys[i]); !d.Fallback {
			t.Fatalf("dead key %s: %+v, want a fallback", deadKeys[i], d)
		}
		live() // successes elsewhere: the Limiter's breaker never opens
	}
	for _, k := range deadKeys[5:] {
		if _, err := s.Take(ctx, k, store.Request{Rate: 1, Burst: 1, Cost: 1}); !errors.Is(err, store.ErrUnavailable) {
			t.Fatalf("dead key %s after 5 failures: %v, want store.ErrUnavailable", k, err)
		}
		d, took := allow(k)
		if !d.Fallback || took > timeout/4 {
			t.Fatalf("dead key %s: %+v in %v, want a fallback at once", k, d, took)
		}
		live()
	}
	if st := l.Stats().Store; st.BreakerOpen || st.BreakerOpens != 0 {
		t.Fatalf("the Limiter's breaker opened: %+v", st)
	}

	clock.Add(int64(time.Second)) // the cooldown is over: one probe, which fails
	if _, err := s.Take(ctx, deadKeys[0], store.Request{Rate: 1, Burst: 1, Cost: 1}); err == nil || errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("probe to the dead master: %v, want its own failure", err)
	}
	if _, err := s.Take(ctx, deadKeys[1], store.Request{Rate: 1, Burst: 1, Cost: 1}); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("after a failed probe: %v, want store.ErrUnavailable", err)
	}

	dead.Restart(t)
	deadline := time.Now().Add(20 * time.Second)
	for {
		clock.Add(int64(time.Second))
		_, err := s.Take(ctx, deadKeys[0], store.Request{Rate: 1, Burst: 1, Cost: 1})
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the master is back and the probes still fail: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, k := range deadKeys { // closed: every key of the master is Redis's again
		if d, _ := allow(k); d.Fallback {
			t.Fatalf("key %s after recovery: %+v, want Redis's decision", k, d)
		}
	}
}
