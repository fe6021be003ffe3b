package limiter

import (
	"context"
	"errors"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/floodgate-go/floodgate/store"
	"go.uber.org/goleak"
)

// fakeStore is an in-process Store with the semantics the Redis script
// has (a denial changes nothing), on the (fake, under synctest) clock of
// the process; its buckets never expire. It can fail,
// hang until the context ends, and count its calls.
type fakeStore struct {
	mu      sync.Mutex
	buckets map[string]*fakeBucket
	calls   atomic.Int64 // every call
	peeks   atomic.Int64 // Peek calls
	fail    atomic.Bool  // every call fails
	hang    atomic.Bool  // every call blocks until ctx is done
	epoch   time.Time
	tick    time.Duration // if set, the clock's resolution (Redis TIME: a microsecond)
}

type fakeBucket struct {
	tokens float64
	last   int64
}

var errFake = errors.New("fake store down")

func newFakeStore() *fakeStore {
	return &fakeStore{buckets: map[string]*fakeBucket{}, epoch: time.Now()}
}

func (s *fakeStore) Take(ctx context.Context, key string, req store.Request) (store.Result, error) {
	return s.decide(ctx, key, req, true)
}

// Peek is Take for req.Cost with no Extra, writing nothing.
func (s *fakeStore) Peek(ctx context.Context, key string, req store.Request) (store.Result, error) {
	s.peeks.Add(1)
	req.Extra = 0
	return s.decide(ctx, key, req, false)
}

// decide is Take, or with write false, Peek.
func (s *fakeStore) decide(ctx context.Context, key string, req store.Request, write bool) (store.Result, error) {
	s.calls.Add(1)
	if s.hang.Load() {
		<-ctx.Done()
		return store.Result{}, ctx.Err()
	}
	if s.fail.Load() {
		return store.Result{}, errFake
	}
	if err := ctx.Err(); err != nil {
		return store.Result{}, err
	}
	p := &policyMath{limit: float64(req.Rate), burst: float64(req.Burst), n: req.Burst}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := int64(time.Since(s.epoch))
	if s.tick > 0 {
		now -= now % int64(s.tick)
	}
	b, ok := s.buckets[key]
	if !ok {
		b = &fakeBucket{tokens: p.burst, last: now}
	}
	level := p.advance(b.tokens, b.last, now)
	left, d, _ := p.take(level, req.Cost, 0)
	res := store.Result{Allowed: d.Allowed, Remaining: d.Remaining, RetryAfter: d.RetryAfter, ResetAfter: d.ResetAfter, At: now}
	if d.Allowed {
		res.At = p.fullAt(level, now)
	}
	if !write || !d.Allowed { // a Peek, or a denial: nothing changes, as in rate.Limiter
		return res, nil
	}
	s.buckets[key] = b
	b.tokens, b.last = left, now
	if d.Allowed && req.Extra > 0 && left >= 1 {
		res.Extra = min(req.Extra, int(left))
		res.Hold = time.Duration(p.durationFromTokens(p.burst - level + float64(req.Cost)))
		b.tokens -= float64(res.Extra)
		res.Remaining = remaining(b.tokens)
	}
	return res, nil
}

func (s *fakeStore) Refund(ctx context.Context, key string, req store.Request, at int64) error {
	s.calls.Add(1)
	if s.fail.Load() {
		return errFake
	}
	p := newPolicyMath(Policy{Rate: req.Rate, Burst: req.Burst})
	s.mu.Lock()
	defer s.mu.Unlock()
	if b, ok := s.buckets[key]; ok {
		now := max(int64(time.Since(s.epoch)), b.last)
		back := float64(req.Cost) - time.Duration(now-at).Seconds()*p.limit // less what refilled since the take
		if back > 0 {
			b.tokens, b.last = min(p.advance(b.tokens, b.last, now)+back, p.burst), now
		}
	}
	return nil
}

func (s *fakeStore) Reset(ctx context.Context, key string) error {
	if s.fail.Load() {
		return errFake
	}
	s.mu.Lock()
	delete(s.buckets, key)
	s.mu.Unlock()
	return nil
}

func newRemoteLimiter(t *testing.T, p Policy, c store.Config, opts ...Option) *Limiter {
	t.Helper()
	l, err := New(p, append([]Option{WithStore(c)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// A client flooding at 100 times its rate costs one round trip per
// admission plus one per retry window; the rest is answered locally.
func TestDenyCache(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newFakeStore()
		l := newRemoteLimiter(t, Policy{Rate: 2, Burst: 3}, store.Config{Store: s})
		ctx := context.Background()
		admitted, total := 0, 0
		for range 1000 { // 10 s at 100 requests per second (the rate is 2/s)
			d, err := l.Allow(ctx, "flood")
			if err != nil {
				t.Fatal(err)
			}
			if d.Allowed {
				admitted++
			} else if d.RetryAfter <= 0 || d.RetryAfter > 500*time.Millisecond {
				t.Fatalf("denied with RetryAfter %v, want in (0, 500ms]", d.RetryAfter)
			}
			total++
			time.Sleep(10 * time.Millisecond)
		}
		// Burst 3 plus 2/s over the 9.99 s between the first and last request.
		if admitted > 3+20 || admitted < 3+19 {
			t.Fatalf("admitted %d of %d, want 22 or 23", admitted, total)
		}
		calls := int(s.calls.Load())
		// Each retry window ends with one call that is admitted, and at
		// most one more that finds the store a hair short.
		if calls > 2*admitted+2 {
			t.Fatalf("%d store calls for %d admissions; the deny cache is not working", calls, admitted)
		}
		st := l.Stats()
		if int(st.Store.RoundTrips) != calls || int(st.Store.DenyCacheHits) != total-calls || int(st.Allowed) != admitted {
			t.Fatalf("Stats %+v; want RoundTrips %d, DenyCacheHits %d, Allowed %d", st, calls, total-calls, admitted)
		}
	})
}

// A cached denial of cost n does not deny a smaller cost: that one asks.
func TestDenyCacheCost(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newFakeStore()
		l := newRemoteLimiter(t, Policy{Rate: 1, Burst: 5}, store.Config{Store: s})
		ctx := context.Background()
		mustAllow(t, l, "k", 3, true)
		mustAllow(t, l, "k", 3, false) // 2 left: denied, cached for cost >= 3
		mustAllow(t, l, "k", 4, false) // from the cache
		if got := s.calls.Load(); got != 2 {
			t.Fatalf("store calls %d, want 2 (the cost-4 request answered locally)", got)
		}
		mustAllow(t, l, "k", 2, true) // smaller than the cached cost: asks the store
		if got := s.calls.Load(); got != 3 {
			t.Fatalf("store calls %d, want 3", got)
		}
		_ = ctx
	})
}

func mustAllow(t *testing.T, l *Limiter, key string, n int, want bool) Decision {
	t.Helper()
	d, err := l.AllowN(context.Background(), key, n)
	if err != nil || d.Allowed != want {
		t.Fatalf("AllowN(%q, %d): got %+v, %v; want Allowed %v", key, n, d, err, want)
	}
	return d
}

// The breaker opens after the configured failures, keeps calls away from
// the store during the cooldown, probes once, and closes when the store
// answers again; FailOpen decides meanwhile with the local share.
func TestBreakerFailOpen(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newFakeStore()
		l := newRemoteLimiter(t, Policy{Rate: 1, Burst: 10},
			store.Config{Store: s, BreakerFailures: 3, BreakerCooldown: time.Second, LocalShare: 0.5})
		ctx := context.Background()
		s.fail.Store(true)
		allowed := 0
		for i := range 8 {
			d, err := l.Allow(ctx, "k")
			if err != nil || !d.Fallback {
				t.Fatalf("call %d during the outage: %+v, %v; want a Fallback decision and no error", i, d, err)
			}
			if d.Allowed {
				allowed++
			}
		}
		if allowed != 5 { // local share: burst 10 × 0.5
			t.Fatalf("FailOpen admitted %d of 8, want the local share's burst of 5", allowed)
		}
		if got := s.calls.Load(); got != 3 {
			t.Fatalf("store calls %d, want 3: the breaker should open after 3 failures", got)
		}
		st := l.Stats()
		if !st.Store.BreakerOpen || st.Store.BreakerOpens != 1 || st.Store.Errors != 3 || st.Store.Fallbacks != 8 {
			t.Fatalf("Stats %+v: want breaker open once, 3 store errors, 8 fallbacks", st)
		}
		time.Sleep(time.Second) // cooldown over; the store is still down: the probe fails
		if d, err := l.Allow(ctx, "k"); err != nil || !d.Fallback || l.Stats().Store.Errors != 4 {
			t.Fatalf("probe: %+v, %v, %+v; want a Fallback decision after a 4th store error", d, err, l.Stats())
		}
		if got := s.calls.Load(); got != 4 {
			t.Fatalf("store calls %d, want 4 (one probe)", got)
		}
		l.Allow(ctx, "k") // reopened: no call
		if got := s.calls.Load(); got != 4 {
			t.Fatalf("store calls %d after a failed probe, want 4", got)
		}
		s.fail.Store(false)
		time.Sleep(time.Second)
		d, err := l.Allow(ctx, "k")
		if err != nil || !d.Allowed || d.Fallback {
			t.Fatalf("after recovery: %+v, %v; want allowed by the store", d, err)
		}
		if st := l.Stats(); st.Store.BreakerOpen || st.Store.RoundTrips != 1 {
			t.Fatalf("after recovery: Stats %+v, want breaker closed and 1 round trip", st)
		}
	})
}

func TestFailClosed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newFakeStore()
		l := newRemoteLimiter(t, Policy{Rate: 1, Burst: 10}, store.Config{Store: s, FailClosed: true, BreakerFailures: 2, BreakerCooldown: 3 * time.Second})
		s.fail.Store(true)
		for i := range 4 {
			d, err := l.Allow(context.Background(), "k")
			if err != nil || !d.Fallback || d.Allowed || d.Limit != 10 || d.RetryAfter <= 0 || d.RetryAfter > 3*time.Second {
				t.Fatalf("call %d: got %+v, %v; want a Fallback denial, Limit 10, RetryAfter in (0, 3s], no error", i, d, err)
			}
		}
		if st := l.Stats(); st.Denied != 4 || st.Allowed != 0 || !st.Store.BreakerOpen {
			t.Fatalf("Stats %+v: want 4 denied and the breaker open", st)
		}
	})
}

// A store that stops answering costs each call at most the timeout, and
// only until the breaker opens; then calls cost nothing.
func TestStoreTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newFakeStore()
		l := newRemoteLimiter(t, Policy{Rate: 1, Burst: 10}, store.Config{Store: s, Timeout: 50 * time.Millisecond, BreakerFailures: 2, BreakerCooldown: time.Second})
		s.hang.Store(true)
		for i := range 4 {
			start := time.Now()
			d, err := l.Allow(context.Background(), "k")
			took := time.Since(start)
			if err != nil || !d.Fallback {
				t.Fatalf("call %d: %+v, %v; want a Fallback decision", i, d, err)
			}
			want := 50 * time.Millisecond
			if i >= 2 {
				want = 0 // breaker open
			}
			if took != want {
				t.Fatalf("call %d took %v, want %v", i, took, want)
			}
		}
	})
}

// A caller's own cancelled context is not a store failure.
func TestCallerCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newFakeStore()
		l := newRemoteLimiter(t, Policy{Rate: 1, Burst: 10}, store.Config{Store: s, BreakerFailures: 1, BreakerCooldown: time.Second})
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := l.Allow(ctx, "k"); !errors.Is(err, context.Canceled) || errors.Is(err, store.ErrUnavailable) {
			t.Fatalf("cancelled caller: err %v, want context.Canceled only", err)
		}
		if st := l.Stats(); st.Store.BreakerOpen || st.Store.Errors != 0 {
			t.Fatalf("Stats %+v: a caller's cancellation counted against the store", st)
		}
	})
}

// Prefetch: three instances share a store and spend prefetched tokens
// locally, under a flood (24× the rate) and a mild overload (1.5×). Over
// every window, admissions stay within Burst + Rate×T, and they reach at
// least 95% of it.
func TestPrefetchExact(t *testing.T) {
	for _, tc := range []struct {
		name     string
		maxSleep time.Duration // per worker; 12 workers
	}{{"flood", 10 * time.Millisecond}, {"overload", 160 * time.Millisecond}} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) { prefetchExact(t, tc.maxSleep) })
		})
	}
}

func prefetchExact(t *testing.T, maxSleep time.Duration) {
	p := Policy{Rate: 100, Burst: 20}
	s := newFakeStore()
	var mu sync.Mutex
	var times []time.Duration
	start := time.Now()
	var wg sync.WaitGroup
	ls := make([]*Limiter, 3)
	for i := range ls {
		ls[i] = newRemoteLimiter(t, p, store.Config{Store: s, Prefetch: 10})
	}
	for w := range 12 {
		l := ls[w%3]
		rng := rand.New(rand.NewPCG(uint64(w), 1))
		wg.Go(func() {
			for time.Since(start) < 3*time.Second {
				if mustOK(t, l) {
					mu.Lock()
					times = append(times, time.Since(start))
					mu.Unlock()
				}
				time.Sleep(time.Duration(rng.Int64N(int64(maxSleep))))
			}
		})
	}
	wg.Wait()
	checkWindows(t, "prefetch", p, times)
	total := times[len(times)-1]
	bound := float64(p.Burst) + float64(p.Rate)*total.Seconds()
	var hits uint64
	for _, l := range ls {
		hits += l.Stats().Store.PrefetchHits
	}
	t.Logf("admitted %d in %v (bound %.0f), %d round trips, %d prefetch hits", len(times), total, bound, s.calls.Load(), hits)
	if float64(len(times)) < 0.95*bound {
		t.Fatalf("admitted %d in %v, want at least 95%% of %.0f", len(times), total, bound)
	}
	if hits == 0 {
		t.Fatalf("no prefetch hits: the test does not exercise prefetch")
	}
}

// A hot key below its rate is admitted in full with prefetch on (no
// under-admission), in fewer round trips than requests.
func TestPrefetchBelowRate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := Policy{Rate: 1000, Burst: 50}
		s := newFakeStore()
		ls := []*Limiter{newRemoteLimiter(t, p, store.Config{Store: s, Prefetch: 8}), newRemoteLimiter(t, p, store.Config{Store: s, Prefetch: 8})}
		var wg sync.WaitGroup
		for _, l := range ls {
			wg.Go(func() {
				for i := range 2000 { // 400/s per instance, 800/s in total
					if !mustOK(t, l) {
						t.Errorf("request %d denied below the rate", i)
						return
					}
					time.Sleep(2500 * time.Microsecond)
				}
			})
		}
		wg.Wait()
		st := ls[0].Stats()
		if st.Store.PrefetchHits == 0 || s.calls.Load() > 4000*3/4 {
			t.Fatalf("prefetch hits %d, store calls %d for 4000 requests; want prefetch to save round trips",
				st.Store.PrefetchHits, s.calls.Load())
		}
	})
}

func mustOK(t *testing.T, l *Limiter) bool {
	d, err := l.Allow(context.Background(), "hot")
	if err != nil {
		t.Error(err)
	}
	return d.Allowed
}

func TestRemoteReset(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newFakeStore()
		a := newRemoteLimiter(t, Policy{Rate: 1, Burst: 2}, store.Config{Store: s})
		b := newRemoteLimiter(t, Policy{Rate: 1, Burst: 2}, store.Config{Store: s})
		mustAllow(t, a, "k", 2, true)
		mustAllow(t, a, "k", 1, false) // a caches the denial
		if err := b.Reset(context.Background(), "k"); err != nil {
			t.Fatal(err)
		}
		mustAllow(t, b, "k", 2, true) // the store's bucket is fresh
		if err := a.Reset(context.Background(), "k"); err != nil {
			t.Fatal(err)
		}
		mustAllow(t, a, "k", 1, true) // a forgot its denial; the store is fresh again
	})
}

func TestRemoteOptions(t *testing.T) {
	s := newFakeStore()
	bad := []store.Config{{}, {Store: s, Timeout: -1}, {Store: s, BreakerFailures: -1}, {Store: s, BreakerCooldown: -1},
		{Store: s, LocalShare: -0.5}, {Store: s, LocalShare: 1.5}, {Store: s, Prefetch: -1}, {Store: s, Prefetch: 1001}}
	for i, c := range bad {
		if _, err := New(PerSecond(1), WithStore(c)); !errors.Is(err, ErrInvalidOption) {
			t.Errorf("store.Config %d %+v: got %v, want ErrInvalidOption", i, c, err)
		}
	}
	// Zero fields mean the defaults written on store.Config.
	rc, err := resolve(store.Config{Store: s})
	if err != nil || rc.timeout != 100*time.Millisecond || rc.failures != 5 || rc.cooldown != time.Second || rc.share != 1 || rc.prefetch != 0 || rc.failClosed {
		t.Errorf("store.Config{Store: s} resolves to %+v, %v; want the documented defaults", rc, err)
	}
	if got := localPolicy(Policy{Rate: 9, Burst: 2}, 1.0/3); got.Burst != 1 || got.Rate != 3 {
		t.Errorf("localPolicy(9/s burst 2, 1/3) = %v, want 3/s burst 1", got)
	}
}

// Close stops every goroutine the remote tier started.
func TestRemoteNoLeak(t *testing.T) {
	defer goleak.VerifyNone(t)
	l, err := New(PerSecond(10), WithStore(store.Config{Store: newFakeStore(), Prefetch: 4}))
	if err != nil {
		t.Fatal(err)
	}
	for range 20 {
		l.Allow(context.Background(), "k")
	}
	l.Close()
}

// Prefetched tokens must lapse: held while the store refills to full, they
// would let one instant admit Burst + the lease.
func TestPrefetchLapse(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := Policy{Rate: 100, Burst: 20}
		s := newFakeStore()
		a := newRemoteLimiter(t, p, store.Config{Store: s, Prefetch: 10})
		b := newRemoteLimiter(t, p, store.Config{Store: s})
		mustAllow(t, a, "k", 1, true) // cold: no prefetch
		mustAllow(t, a, "k", 1, true) // hot: takes 10 more, held for (20-19+1)/100 s
		if st := a.Stats(); st.Store.RoundTrips != 2 {
			t.Fatalf("Stats %+v, want 2 round trips", st)
		}
		mustAllow(t, a, "k", 1, true) // from the lease
		if st := a.Stats(); st.Store.PrefetchHits != 1 || st.Store.RoundTrips != 2 {
			t.Fatalf("Stats %+v, want a prefetch hit and no new round trip", st)
		}
		time.Sleep(time.Second) // the store refills to 20
		admitted := 0
		for range 40 {
			if d, _ := b.Allow(context.Background(), "k"); d.Allowed {
				admitted++
			}
			if d, _ := a.Allow(context.Background(), "k"); d.Allowed {
				admitted++
			}
		}
		if admitted > p.Burst {
			t.Fatalf("admitted %d at one instant, more than Burst %d: the lease did not lapse", admitted, p.Burst)
		}
	})
}

// An admission that spends the last token is cached as a denial until the
// next token refills, and not a nanosecond longer than the store would
// deny.
func TestDenyAfterLastToken(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newFakeStore()
		l := newRemoteLimiter(t, Policy{Rate: 10, Burst: 2}, store.Config{Store: s})
		mustAllow(t, l, "k", 1, true)
		mustAllow(t, l, "k", 1, true) // the last token: the next refills in 100 ms
		time.Sleep(99 * time.Millisecond)
		d := mustAllow(t, l, "k", 1, false)
		if d.RetryAfter <= 0 || d.RetryAfter > time.Millisecond {
			t.Fatalf("RetryAfter %v, want in (0, 1ms]", d.RetryAfter)
		}
		if got := s.calls.Load(); got != 2 {
			t.Fatalf("store calls %d, want 2: the denial should come from the cache", got)
		}
		time.Sleep(time.Millisecond)
		mustAllow(t, l, "k", 1, true) // exactly when the store has the token again
		if got := s.calls.Load(); got != 3 {
			t.Fatalf("store calls %d, want 3", got)
		}
	})
}

// The deny cache holds at most MaxKeys entries; keys beyond the cap go to
// the store every time (correct, only slower), and the sweeper removes
// entries once their denial ran out.
func TestDenyCacheBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newFakeStore()
		l := newRemoteLimiter(t, Policy{Rate: 1, Burst: 1}, store.Config{Store: s}, WithMaxKeys(10), WithSweepInterval(time.Second))
		for i := range 100 {
			key := "spray-" + strconv.Itoa(i)
			mustAllow(t, l, key, 1, true)
			mustAllow(t, l, key, 1, false)
			mustAllow(t, l, key, 1, false)
		}
		st := l.Stats()
		if st.Store.CachedKeys != 10 {
			t.Fatalf("CachedKeys %d after 100 denied keys, want the cap of 10", st.Store.CachedKeys)
		}
		// The first 10 keys got entries when their admission spent the last
		// token, and answered their next two requests locally; 90 asked.
		if got := s.calls.Load(); got != 100*3-20 {
			t.Fatalf("store calls %d, want %d", got, 100*3-20)
		}
		time.Sleep(2 * time.Second) // denials over; a sweep runs
		synctest.Wait()
		if st := l.Stats(); st.Store.CachedKeys != 0 {
			t.Fatalf("CachedKeys %d after the denials ran out and a sweep, want 0", st.Store.CachedKeys)
		}
		mustAllow(t, l, "spray-0", 1, true)
	})
}

// TestRemoteCompositeRefund: tokens a remote limit admitted are given back
// where they came from, the Store or a prefetched lease, when another limit
// denies.
func TestRemoteCompositeRefund(t *testing.T) {
	for _, prefetch := range []int{0, 8} {
		synctest.Test(t, func(t *testing.T) {
			s := newFakeStore()
			p := Policy{Rate: 100, Burst: 20}
			remote := newRemoteLimiter(t, p, store.Config{Store: s, Prefetch: prefetch})
			drained := mustNew(t, PerHour(1))
			drained.Allow(ctx, "k")
			for range 10 { // hot enough to prefetch
				remote.Allow(ctx, "ip")
				time.Sleep(10 * time.Millisecond)
			}
			before := remote.Stats()
			for range 50 {
				d, err := AllowAll(ctx, Limit{Name: "remote", Limiter: remote, Key: "ip"}, Limit{Name: "drained", Limiter: drained, Key: "k"})
				if err != nil || d.Allowed || d.DeniedBy != "drained" {
					t.Fatalf("prefetch %d: %+v, %v", prefetch, d, err)
				}
			}
			after := remote.Stats()
			// Without refunds, 50 admissions would drain the 20-token bucket
			// and the next request would be denied.
			if d, _ := remote.Allow(ctx, "ip"); !d.Allowed {
				t.Fatalf("prefetch %d: the 50 refunded requests burned quota (%+v → %+v)", prefetch, before, after)
			}
			if prefetch > 0 && after.Store.PrefetchHits == before.Store.PrefetchHits {
				t.Fatalf("prefetch %d: no lease was used: %+v", prefetch, after)
			}
		})
	}
}

// With a Store, Wait asks and sleeps for the Store's RetryAfter: waiters
// are paced at the policy's rate and never wait past their deadline.
func TestRemoteWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newFakeStore()
		l := newRemoteLimiter(t, Policy{Rate: 2, Burst: 2}, store.Config{Store: s})
		start := time.Now()
		for range 4 {
			if err := l.Wait(ctx, "api"); err != nil {
				t.Fatal(err)
			}
		}
		if took := time.Since(start); took != time.Second {
			t.Fatalf("4 waits at 2/s with burst 2 took %v, want 1s", took)
		}
		c, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		defer cancel()
		if err := l.Wait(c, "api"); !errors.Is(err, ErrWouldExceedDeadline) {
			t.Fatalf("Wait with a deadline shorter than the wait = %v, want ErrWouldExceedDeadline", err)
		}
	})
}
