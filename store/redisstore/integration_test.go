package redisstore_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/floodgate-go/floodgate/internal/redistest"
	"github.com/floodgate-go/floodgate/limiter"
	"github.com/floodgate-go/floodgate/store"
	"github.com/floodgate-go/floodgate/store/redisstore"
	"github.com/floodgate-go/floodgate/store/storetest"
)

// These tests run limiters against a real redis-server started by the
// test itself. They measure real time where nothing else will do (an
// outage, a slow network), and keep it short.

// newLimiter returns a Limiter on c's Store, closed at the end of the test.
func newLimiter(t testing.TB, p limiter.Policy, c store.Config, opts ...limiter.Option) *limiter.Limiter {
	t.Helper()
	l, err := limiter.New(p, append([]limiter.Option{limiter.WithStore(c)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// flood runs workers goroutines on each limiter, each requesting key about
// every 100µs (thousands of times the rates used here, without starving the
// 2-core test machine's scheduler) for d, and returns the admissions and
// the elapsed time.
func flood(t *testing.T, ls []*limiter.Limiter, workers int, key string, d time.Duration) (admitted int64, elapsed time.Duration) {
	var n atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for _, l := range ls {
		for range workers {
			wg.Go(func() {
				for time.Since(start) < d {
					dec, err := l.Allow(context.Background(), key)
					if err != nil {
						t.Error(err)
						return
					}
					if dec.Allowed {
						n.Add(1)
					}
					time.Sleep(100 * time.Microsecond)
				}
			})
		}
	}
	wg.Wait()
	return n.Load(), time.Since(start)
}

// Three limiters (three instances) share one Redis; many goroutines each
// flood one key for 2 s. Admissions stay within Burst + Rate×T and reach
// 95% of it, with and without prefetch.
func TestExactAcrossInstances(t *testing.T) {
	srv := redistest.Start(t)
	client := newClient(t, srv.Addr())
	p := limiter.Policy{Rate: 300, Burst: 100}
	for _, prefetch := range []int{0, 16} {
		t.Run("prefetch="+strconv.Itoa(prefetch), func(t *testing.T) {
			s := freshStore(t, client)
			var ls []*limiter.Limiter
			for range 3 {
				// A generous timeout: this test is about exactness, and a
				// fail-open fallback (on a machine slowed by -race) is not.
				ls = append(ls, newLimiter(t, p, store.Config{Store: s, Prefetch: prefetch, Timeout: 5 * time.Second}))
			}
			// Warm up: dial the pool's connections and load the script, or
			// the measured bucket sits full (refill wasted) while they dial.
			flood(t, ls, 8, "warm-up", 100*time.Millisecond)
			admitted, elapsed := flood(t, ls, 8, "one-key", 2*time.Second) // long enough that a stall of the loaded machine costs little
			bound := float64(p.Burst) + float64(p.Rate)*elapsed.Seconds()
			var st limiter.Stats
			for _, l := range ls {
				s := l.Stats()
				st.Store.RoundTrips += s.Store.RoundTrips
				st.Store.DenyCacheHits += s.Store.DenyCacheHits
				st.Store.PrefetchHits += s.Store.PrefetchHits
				st.Allowed += s.Allowed
				st.Denied += s.Denied
			}
			state, _ := client.Get(context.Background(), s.Key("one-key")).Result()
			level, _, _ := decodeState(state) // unspent at the end
			t.Logf("admitted %d in %v (bound %.0f); %d decisions, %d round trips, %d deny-cache hits, %d prefetch hits; Redis bucket at the end: %v tokens",
				admitted, elapsed, bound, st.Allowed+st.Denied, st.Store.RoundTrips, st.Store.DenyCacheHits, st.Store.PrefetchHits, level)
			if float64(admitted) > bound {
				t.Fatalf("admitted %d in %v: more than Burst + Rate×T = %.1f", admitted, elapsed, bound)
			}
			if float64(admitted) < 0.95*bound {
				t.Fatalf("admitted %d in %v: less than 95%% of Burst + Rate×T = %.1f", admitted, elapsed, bound)
			}
		})
	}
}

// The reported over-admission (see slowRefund) on a real redis-server, in
// real time: about 0.2 s. Before the fix it admitted 20, 10 between 121
// and 123 ms and 10 between 158 and 160 ms (bound over [121, 158] ms:
// 13.7); after, 13 or 14 (the refill of the time the refunds took).
func TestAllowAllSlowRefundRedis(t *testing.T) {
	srv := redistest.Start(t)
	s := freshStore(t, newClient(t, srv.Addr()))
	if admitted := slowRefund(t, s); len(admitted) < 10 {
		t.Errorf("admitted %d, want at least the 10 the bucket held at 120 ms", len(admitted))
	}
}

// commandCalls returns how many times Redis ran EVALSHA and EVAL so far.
func commandCalls(t *testing.T, c *redis.Client) int64 {
	info, err := c.Info(context.Background(), "commandstats").Result()
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	for _, line := range strings.Split(info, "\n") {
		for _, cmd := range []string{"cmdstat_evalsha:calls=", "cmdstat_eval:calls="} {
			if rest, ok := strings.CutPrefix(line, cmd); ok {
				n, err := strconv.ParseInt(rest[:strings.IndexByte(rest, ',')], 10, 64)
				if err != nil {
					t.Fatal(err)
				}
				total += n
			}
		}
	}
	return total
}

// A client flooding at about 100 times its rate: Redis sees one script
// call per admission plus about one per retry window, counted by Redis
// itself (INFO commandstats).
func TestDenyCacheRoundTrips(t *testing.T) {
	srv := redistest.Start(t)
	client := newClient(t, srv.Addr())
	l := newLimiter(t, limiter.Policy{Rate: 10, Burst: 5}, store.Config{Store: freshStore(t, client)})
	if _, err := l.Allow(context.Background(), "warm-up"); err != nil { // loads the script: EVALSHA fails once, EVAL follows
		t.Fatal(err)
	}
	before := commandCalls(t, client)
	var admitted, requests int
	start := time.Now()
	for time.Since(start) < time.Second {
		d, err := l.Allow(context.Background(), "flooder")
		if err != nil {
			t.Fatal(err)
		}
		if d.Allowed {
			admitted++
		}
		requests++
		time.Sleep(time.Millisecond) // about 1000/s against a rate of 10/s
	}
	calls := commandCalls(t, client) - before
	st := l.Stats()
	t.Logf("%d requests, %d admitted, %d script calls in Redis, %d deny-cache hits", requests, admitted, calls, st.Store.DenyCacheHits)
	if calls != int64(st.Store.RoundTrips)-1 { // not the warm-up
		t.Fatalf("Redis counted %d script calls, Stats.Store.RoundTrips %d", calls, st.Store.RoundTrips)
	}
	// About 10 retry windows in a second, each ending in one admission;
	// allow one more call per window that finds Redis a hair short.
	if calls > int64(2*admitted+5) || requests < 200 {
		t.Fatalf("%d script calls for %d admissions in %d requests: want at most 2 per admission", calls, admitted, requests)
	}
}

// Redis dies mid-run and comes back on the same port: every call returns
// within the timeout (plus scheduling slack), failing open admits from local
// buckets and FailClosed denies, both saying so (Decision.Fallback); the
// breaker opens; after the restart decisions come from Redis again,
// without restarting anything.
func TestOutage(t *testing.T) {
	srv := redistest.Start(t)
	client := redis.NewClient(&redis.Options{Addr: srv.Addr(), ContextTimeoutEnabled: true, Protocol: 2, MaxRetries: -1})
	t.Cleanup(func() { client.Close() })
	s := freshStore(t, client)
	const timeout = 100 * time.Millisecond
	p := limiter.Policy{Rate: 1000, Burst: 1000}
	c := store.Config{Store: s, Timeout: timeout, BreakerFailures: 3, BreakerCooldown: 200 * time.Millisecond}
	openC, closedC := c, c
	openC.LocalShare, closedC.FailClosed = 0.5, true
	open, closed := newLimiter(t, p, openC), newLimiter(t, p, closedC)

	type result struct {
		allowed, fallback bool
		err               error
		took              time.Duration
	}
	call := func(l *limiter.Limiter) result {
		start := time.Now()
		d, err := l.Allow(context.Background(), "k")
		return result{d.Allowed, d.Fallback, err, time.Since(start)}
	}
	for _, l := range []*limiter.Limiter{open, closed} {
		if r := call(l); !r.allowed || r.err != nil {
			t.Fatalf("before the outage: %+v", r)
		}
	}
	srv.Kill()
	const slack = 400 * time.Millisecond // scheduling on a loaded 2-core machine
	outage := time.Now()
	var openAllowed, openErrs, closedAllowed, closedErrs int
	for time.Since(outage) < time.Second {
		ro, rc := call(open), call(closed)
		for _, r := range []result{ro, rc} {
			if r.took > timeout+slack {
				t.Fatalf("a call took %v during the outage, want at most the timeout %v (+%v slack)", r.took, timeout, slack)
			}
		}
		if ro.allowed {
			openAllowed++
		}
		if rc.allowed {
			closedAllowed++
		}
		if ro.err != nil || rc.err != nil {
			t.Fatalf("an error during the outage (%v, %v): the failure mode decides, without one", ro.err, rc.err)
		}
		if ro.fallback {
			openErrs++
		}
		if rc.fallback {
			closedErrs++
		}
		time.Sleep(time.Millisecond)
	}
	so, sc := open.Stats(), closed.Stats()
	t.Logf("outage: FailOpen admitted %d (%d fallback decisions), FailClosed admitted %d (%d fallback decisions); open %+v",
		openAllowed, openErrs, closedAllowed, closedErrs, so)
	if openAllowed < 10 || openAllowed > openErrs || closedAllowed != 0 || closedErrs < 10 {
		t.Fatalf("want FailOpen admitting by Fallback decisions, FailClosed denying by them")
	}
	if !so.Store.BreakerOpen || !sc.Store.BreakerOpen || so.Store.Errors == 0 || so.Store.Fallbacks < uint64(openErrs) {
		t.Fatalf("want both breakers open and errors counted; FailOpen %+v, FailClosed %+v", so, sc)
	}

	srv.Restart(t)
	before := so.Store.RoundTrips
	deadline := time.Now().Add(5 * time.Second)
	for {
		ro, rc := call(open), call(closed)
		if ro.err == nil && rc.err == nil && ro.allowed && rc.allowed && !ro.fallback && !rc.fallback {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("5 s after the restart, still %+v / %+v", ro, rc)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if st := open.Stats(); st.Store.BreakerOpen || st.Store.RoundTrips <= before {
		t.Fatalf("after the restart: %+v; want the breaker closed and decisions from Redis", st)
	}
}

// A Redis behind a proxy that delays past the timeout, or swallows
// everything, costs each call at most the timeout; once the breaker opens,
// nothing; and decisions return to Redis when the proxy heals.
func TestSlowRedis(t *testing.T) {
	srv := redistest.Start(t)
	proxy := redistest.StartProxy(t, srv.Addr())
	client := redis.NewClient(&redis.Options{Addr: proxy.Addr, ContextTimeoutEnabled: true, Protocol: 2, MaxRetries: -1})
	t.Cleanup(func() { client.Close() })
	const timeout = 50 * time.Millisecond
	l := newLimiter(t, limiter.PerSecond(1000), store.Config{Store: freshStore(t, client),
		Timeout: timeout, BreakerFailures: 2, BreakerCooldown: 100 * time.Millisecond})
	ctx := context.Background()
	if _, err := l.Allow(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	for _, mode := range []string{"delay", "black hole"} {
		if mode == "delay" {
			proxy.SetDelay(time.Second)
		} else {
			proxy.SetDelay(0)
			proxy.SetBlackHole(true)
		}
		start := time.Now()
		var worst time.Duration
		for time.Since(start) < 300*time.Millisecond {
			t0 := time.Now()
			d, err := l.Allow(ctx, "k")
			worst = max(worst, time.Since(t0))
			if err != nil || !d.Fallback {
				t.Fatalf("%s: %+v, %v; want a Fallback decision", mode, d, err)
			}
		}
		t.Logf("%s: slowest call %v (timeout %v)", mode, worst, timeout)
		if worst > timeout+300*time.Millisecond {
			t.Fatalf("%s: a call took %v, want about the timeout %v", mode, worst, timeout)
		}
	}
	proxy.SetBlackHole(false)
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := l.Allow(ctx, "k"); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("5 s after the proxy healed, decisions still fail")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Hostile keys through the Limiter, and Reset seen from another instance.
func TestHostileKeysAndReset(t *testing.T) {
	srv := redistest.Start(t)
	s := freshStore(t, newClient(t, srv.Addr()))
	p := limiter.PerHour(1)
	a, b := newLimiter(t, p, store.Config{Store: s}), newLimiter(t, p, store.Config{Store: s})
	ctx := context.Background()
	for i, k := range storetest.HostileKeys() {
		if d, err := a.Allow(ctx, k); err != nil || !d.Allowed {
			t.Fatalf("key %d: first request: %+v, %v", i, d, err)
		}
		if d, err := b.Allow(ctx, k); err != nil || d.Allowed {
			t.Fatalf("key %d: second request, other instance: %+v, %v; want denied", i, d, err)
		}
		if err := b.Reset(ctx, k); err != nil {
			t.Fatal(err)
		}
		// b forgot its denial and Redis's bucket is fresh.
		if d, err := b.Allow(ctx, k); err != nil || !d.Allowed {
			t.Fatalf("key %d: after Reset on this instance: %+v, %v; want allowed", i, d, err)
		}
		// a never saw a denial, so it asks Redis, which b just drained.
		if d, err := a.Allow(ctx, k); err != nil || d.Allowed {
			t.Fatalf("key %d: other instance after Reset and a spend: %+v, %v; want denied", i, d, err)
		}
	}
}

// Redis Cluster: keys spread over the three masters' slots, each exact.
func TestCluster(t *testing.T) {
	c := redistest.StartCluster(t)
	client := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs(), ContextTimeoutEnabled: true, Protocol: 2})
	t.Cleanup(func() { client.Close() })
	s := freshStore(t, client)
	p := limiter.PerHour(5)
	ls := []*limiter.Limiter{newLimiter(t, p, store.Config{Store: s}), newLimiter(t, p, store.Config{Store: s})}
	ctx := context.Background()
	masters := map[string]bool{}
	for i := range 30 {
		key := fmt.Sprintf("client-%d", i)
		if i%3 == 0 {
			key += ":{tag}" // hostile: must not pin a slot
		}
		var admitted atomic.Int64
		var wg sync.WaitGroup
		for _, l := range ls {
			for range 4 {
				wg.Go(func() {
					for range 4 {
						d, err := l.Allow(ctx, key)
						if err != nil {
							t.Error(err)
							return
						}
						if d.Allowed {
							admitted.Add(1)
						}
					}
				})
			}
		}
		wg.Wait()
		if got := admitted.Load(); got != 5 {
			t.Fatalf("key %q: admitted %d of 32, want exactly the burst of 5", key, got)
		}
		err := client.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
			if n, err := m.Exists(ctx, s.Key(key)).Result(); err == nil && n == 1 {
				masters[m.Options().Addr] = true
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(masters) != 3 {
		t.Fatalf("keys landed on %d masters, want all 3", len(masters))
	}
}

func TestLimiterNoLeakRedis(t *testing.T) {
	srv := redistest.Start(t)
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	client := redis.NewClient(&redis.Options{Addr: srv.Addr(), ContextTimeoutEnabled: true, Protocol: 2})
	s, err := redisstore.New(client)
	if err != nil {
		t.Fatal(err)
	}
	l, err := limiter.New(limiter.PerSecond(10), limiter.WithStore(store.Config{Store: s, Prefetch: 4}))
	if err != nil {
		t.Fatal(err)
	}
	for range 20 {
		l.Allow(context.Background(), "k")
	}
	l.Close()
	client.Close()
}
