package limiter

import (
	"context"
	"github.com/floodgate-go/floodgate/store"
	"math/rand/v2"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// The remote tier's paths that save round trips — deny cache, prefetched
// leases, refunds — are exact and honest, as AllowN on a local bucket is:
// the reproductions from "Exact on every path".

// latencyStore delays every call by in before it reaches the store and by
// out after it answers (fake time).
type latencyStore struct {
	store.Store
	in, out time.Duration
}

func (s latencyStore) Take(ctx context.Context, key string, req store.Request) (store.Result, error) {
	time.Sleep(s.in)
	res, err := s.Store.Take(ctx, key, req)
	time.Sleep(s.out)
	return res, err
}

func (s latencyStore) Peek(ctx context.Context, key string, req store.Request) (store.Result, error) {
	time.Sleep(s.in)
	res, err := s.Store.Peek(ctx, key, req)
	time.Sleep(s.out)
	return res, err
}

// A client that waits exactly Decision.RetryAfter and repeats the request,
// nothing else spending, is admitted: whether the denial came from the
// Store, from the deny cache for the same cost, or from the deny cache for
// a larger cost than the one the Store denied; with one-way latencies
// either way round, and a Store clock of a microsecond's resolution, as
// Redis TIME has. Before the fix the cache's wait was counted from when
// the request was sent: short by the round trip, so such a client was
// denied again.
func TestRemoteRetryAfterIsHonest(t *testing.T) {
	for _, lat := range [][2]time.Duration{{0, 0}, {200 * time.Microsecond, 2 * time.Millisecond}, {2 * time.Millisecond, 200 * time.Microsecond}} {
		synctest.Test(t, func(t *testing.T) {
			p := Policy{Rate: 10, Burst: 10}
			s := newFakeStore()
			s.tick = time.Microsecond // Redis TIME's resolution
			time.Sleep(time.Microsecond / 2)
			l := newRemoteLimiter(t, p, store.Config{Store: latencyStore{s, lat[0], lat[1]}})
			for round := range 10 {
				key := string(rune('a' + round))
				if d := mustAllow(t, l, key, 10, true); d.Remaining != 0 {
					t.Fatalf("latency %v: draining took %+v", lat, d)
				}
				for _, n := range []int{1, 1, 10, 3} { // the Store's denial, then the cache's
					d := mustAllow(t, l, key, n, false)
					if want := time.Duration(float64(n) / float64(p.Rate) * float64(time.Second)); d.RetryAfter < want-5*time.Millisecond {
						t.Fatalf("latency %v: cost %d after draining: RetryAfter %v, want about %v", lat, n, d.RetryAfter, want)
					}
				}
				d := mustAllow(t, l, key, 10, false)
				time.Sleep(d.RetryAfter)
				if got, _ := l.AllowN(ctx, key, 10); !got.Allowed {
					t.Fatalf("latency %v round %d: waited RetryAfter %v for cost 10 and was denied again: %+v", lat, round, d.RetryAfter, got)
				}
			}
		})
	}
}

// hangingStore never answers before ctx is done.
type hangingStore struct{ store.Store }

func (hangingStore) Take(ctx context.Context, _ string, _ store.Request) (store.Result, error) {
	<-ctx.Done()
	return store.Result{}, ctx.Err()
}

func (hangingStore) Peek(ctx context.Context, _ string, _ store.Request) (store.Result, error) {
	<-ctx.Done()
	return store.Result{}, ctx.Err()
}

// With prefetch, a request that waits for another request's prefetch and
// then asks the Store itself still returns within the store timeout in
// all. Before the fix 27 of 30 calls took twice the timeout.
func TestPrefetchWaitStaysWithinTheTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &switchStore{Store: newFakeStore()}
		l := newRemoteLimiter(t, Policy{Rate: 1000, Burst: 1000}, store.Config{Store: s, Prefetch: 2, BreakerFailures: 1000})
		for range 6 { // hot: round trips within the time 3 tokens take
			mustOK(t, l)
		}
		s.hang()
		var wg sync.WaitGroup
		call := func(i int) {
			start := time.Now()
			l.Allow(ctx, "hot")
			if took := time.Since(start); took > defaultStoreTimeout {
				t.Errorf("call %d took %v, want at most the store timeout %v", i, took, defaultStoreTimeout)
			}
		}
		for i := 0; ; i++ { // spend the lease, until a call goes out to prefetch
			wg.Go(func() { call(i) })
			synctest.Wait()
			e, _ := l.remote.entries.load("hot")
			e.mu.Lock()
			inFlight := e.fetched != nil
			e.mu.Unlock()
			if inFlight {
				break
			}
		}
		time.Sleep(defaultStoreTimeout / 2)
		for i := range 30 { // these wait for the prefetch, then ask themselves
			wg.Go(func() { call(100 + i) })
		}
		wg.Wait()
	})
}

// switchStore passes calls to its Store until hang is called.
type switchStore struct {
	store.Store
	mu      sync.Mutex
	hanging bool
}

func (s *switchStore) hang() { s.mu.Lock(); s.hanging = true; s.mu.Unlock() }

func (s *switchStore) Take(ctx context.Context, key string, req store.Request) (store.Result, error) {
	s.mu.Lock()
	h := s.hanging
	s.mu.Unlock()
	if h {
		return hangingStore{}.Take(ctx, key, req)
	}
	return s.Store.Take(ctx, key, req)
}

func (s *switchStore) Peek(ctx context.Context, key string, req store.Request) (store.Result, error) {
	s.mu.Lock()
	h := s.hanging
	s.mu.Unlock()
	if h {
		return hangingStore{}.Peek(ctx, key, req)
	}
	return s.Store.Peek(ctx, key, req)
}

// Three instances holding prefetched leases; the policy is lowered on all
// of them: from then on, every window stays within the new Burst + Rate×T.
// Before the fix, 110–117 were admitted within 0.4 s against a bound of
// 3–4.
func TestSetPolicyDropsLeases(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newFakeStore()
		high, low := Policy{Rate: 1000, Burst: 1000}, Policy{Rate: 5, Burst: 2}
		ls := make([]*Limiter, 3)
		for i := range ls {
			ls[i] = newRemoteLimiter(t, high, store.Config{Store: s, Prefetch: 64})
		}
		for range 20 { // every instance hot, holding a lease
			for _, l := range ls {
				mustOK(t, l)
			}
			time.Sleep(time.Millisecond)
		}
		var held uint64
		for _, l := range ls {
			held += l.Stats().Store.PrefetchHits
		}
		if held == 0 {
			t.Fatal("no instance used a lease before the change")
		}
		for _, l := range ls {
			if err := l.SetPolicy(low); err != nil {
				t.Fatal(err)
			}
		}
		start := time.Now()
		var mu sync.Mutex
		var admitted []time.Duration
		var wg sync.WaitGroup
		for w := range 12 {
			wg.Go(func() {
				rng := rand.New(rand.NewPCG(uint64(w), 3))
				for time.Since(start) < 400*time.Millisecond {
					if mustOK(t, ls[w%3]) {
						mu.Lock()
						admitted = append(admitted, time.Since(start))
						mu.Unlock()
					}
					time.Sleep(time.Duration(rng.Int64N(int64(5 * time.Millisecond))))
				}
			})
		}
		wg.Wait()
		checkWindows(t, "after SetPolicy", low, admitted)
	})
}
