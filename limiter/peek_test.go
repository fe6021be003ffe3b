package limiter

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"testing/synctest"
	"time"

	"golang.org/x/time/rate"

	"github.com/floodgate-go/floodgate/store"
)

func mustPeek(t *testing.T, l *Limiter, key string, n int) Decision {
	t.Helper()
	d, err := l.Peek(ctx, key, n)
	if err != nil {
		t.Fatalf("Peek(%q, %d): %v", key, n, err)
	}
	return d
}

// A Peek at 100,000 keys the Limiter does not track tracks none of them:
// no bucket, no room taken, nothing counted, nothing observed; it answers
// a full bucket, and on a table that is full it neither retires buckets to
// make room nor touches the cells.
func TestPeekTracksNothing(t *testing.T) {
	observed := 0
	l := mustNew(t, Policy{Rate: 1, Burst: 5}, WithObserver(func(context.Context, Event) { observed++ }))
	keys := 100_000
	if raceEnabled {
		keys = 10_000
	}
	for i := range keys {
		if d := mustPeek(t, l, strconv.Itoa(i), 2); !d.Allowed || d.Remaining != 3 {
			t.Fatalf("Peek(cost 2) of an unknown key: %+v, want a full bucket's answer (allowed, Remaining 3)", d)
		}
	}
	if st := l.Stats(); st.Keys != 0 || st.Allowed+st.Denied+st.Overflowed != 0 || observed != 0 {
		t.Fatalf("after %d peeks: Stats %+v, %d observed; want no keys, no decisions, nothing observed", keys, st, observed)
	}

	synctest.Test(t, func(t *testing.T) {
		full := mustNew(t, Policy{Rate: 1, Burst: 2}, WithMaxKeys(2), WithSweepInterval(time.Hour))
		for _, k := range []string{"a", "b"} {
			mustAllow(t, full, k, 1, true)
		}
		time.Sleep(2 * time.Second) // both full again: makeRoom would retire one for a new key
		for i := range 1000 {
			if d := mustPeek(t, full, "new"+strconv.Itoa(i), 2); !d.Allowed {
				t.Fatalf("Peek of a new key on a full table: %+v, want allowed", d)
			}
		}
		if st := full.Stats(); st.Keys != 2 || st.Retired != 0 || st.Overflowed != 0 || full.cells.load() != nil {
			t.Fatalf("peeks on a full table: Stats %+v, cells allocated %v; want the 2 keys kept, nothing retired or overflowed", st, full.cells.load() != nil)
		}
		mustAllow(t, full, "new", 2, true) // AllowN does make room
		if st := full.Stats(); st.Retired != 1 {
			t.Fatalf("AllowN of a new key on a full table: Stats %+v, want one bucket retired to make room", st)
		}
	})
}

// Peek allocates nothing, for a tracked key admitted or denied, or a key
// that is not tracked.
func TestPeekDoesNotAllocate(t *testing.T) {
	l := mustNew(t, PerSecond(1_000_000))
	l.Allow(ctx, "203.0.113.9")
	drained := mustNew(t, PerHour(1))
	drained.Allow(ctx, "k")
	for _, c := range []struct {
		name string
		l    *Limiter
		key  string
	}{{"tracked", l, "203.0.113.9"}, {"denied", drained, "k"}, {"untracked", l, "198.51.100.7"}} {
		if n := testing.AllocsPerRun(1000, func() { c.l.Peek(ctx, c.key, 1) }); n != 0 {
			t.Errorf("Peek on a %s key: %v allocs, want 0", c.name, n)
		}
	}
}

// Peek's errors are AllowN's: a nil ctx, a closed Limiter, a cost outside
// [1, Burst]; under rate.Inf it answers what AllowN does.
func TestPeekErrors(t *testing.T) {
	l := mustNew(t, PerSecond(3))
	for _, n := range []int{0, -1, 4} {
		if _, err := l.Peek(ctx, "k", n); !errors.Is(err, ErrInvalidCost) {
			t.Errorf("Peek(cost %d): error %v, want ErrInvalidCost", n, err)
		}
	}
	//lint:ignore SA1012 a nil Context is what is tested
	if _, err := l.Peek(nil, "k", 1); err == nil {
		t.Error("Peek(nil ctx): no error")
	}
	inf := mustNew(t, Policy{Rate: rate.Inf, Burst: 7})
	if d := mustPeek(t, inf, "k", 100); d != inf.peekWant(t, "k", 100) {
		t.Errorf("Peek under rate.Inf: %+v", d)
	}
	l.Close()
	if _, err := l.Peek(ctx, "k", 1); !errors.Is(err, ErrClosed) {
		t.Errorf("Peek after Close: error %v, want ErrClosed", err)
	}
}

// peekWant is AllowN's decision, for comparison with a Peek before it.
func (l *Limiter) peekWant(t *testing.T, key string, n int) Decision {
	t.Helper()
	d, err := l.AllowN(ctx, key, n)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// With the table full, a key that is not tracked is decided by its cells:
// Peek reports that decision, takes nothing from them, and the AllowN
// after it decides the same.
func TestPeekOverflow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := mustNew(t, Policy{Rate: 1, Burst: 3}, WithMaxKeys(1), withCells(1<<16, 2))
		mustAllow(t, l, "tracked", 3, true) // holds spending: makeRoom cannot retire it
		mustAllow(t, l, "spray1", 2, true)  // spray1's cells, 1 left
		for range 3 {
			if d := mustPeek(t, l, "spray1", 2); d.Allowed || d.Remaining != 1 || d.RetryAfter != time.Second {
				t.Fatalf("Peek(cost 2) with the cells at 1: %+v, want denied, Remaining 1, RetryAfter 1s", d)
			}
			if d := mustPeek(t, l, "spray1", 1); !d.Allowed || d.Remaining != 0 {
				t.Fatalf("Peek(cost 1) with the cells at 1: %+v, want allowed, Remaining 0", d)
			}
			if d := mustPeek(t, l, "spray2", 3); !d.Allowed || d.Remaining != 0 {
				t.Fatalf("Peek(cost 3) of another key: %+v, want allowed from its own cells", d)
			}
		}
		d := mustPeek(t, l, "spray3", 1)
		if got := l.peekWant(t, "spray3", 1); got != d {
			t.Fatalf("Peek said %+v, AllowN then decided %+v", d, got)
		}
		if st := l.Stats(); st.Overflowed != 2 {
			t.Fatalf("Stats.Overflowed %d, want the 2 AllowN calls", st.Overflowed)
		}
	})
}

// With a Store: Peek asks it (a Store.Peek, which creates no bucket there
// and nothing here), answers from the deny cache or a lease without a round
// trip when AllowN would, and when the Store fails, answers as the failure
// mode would decide, taking nothing from the fail-open buckets.
func TestPeekRemote(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newFakeStore()
		l := newRemoteLimiter(t, Policy{Rate: 1, Burst: 3}, store.Config{Store: s, BreakerFailures: 100, LocalShare: 0.5})
		if d := mustPeek(t, l, "new", 3); !d.Allowed || d.Remaining != 0 || d.Fallback {
			t.Fatalf("Peek(cost 3) of a new key: %+v, want allowed, Remaining 0", d)
		}
		if s.peeks.Load() != 1 || len(s.buckets) != 0 || l.Stats().Store.CachedKeys != 0 || l.Stats().Store.RoundTrips != 1 {
			t.Fatalf("after a Peek: %d Store.Peek calls, %d buckets in the Store, Stats %+v; want 1 call, no bucket, no entry, 1 round trip",
				s.peeks.Load(), len(s.buckets), l.Stats())
		}
		mustAllow(t, l, "k", 3, true)
		mustAllow(t, l, "k", 1, false) // now in the deny cache
		calls := s.calls.Load()
		d := mustPeek(t, l, "k", 2)
		if d.Allowed || s.calls.Load() != calls {
			t.Fatalf("Peek of a cached denial: %+v after %d Store calls; want denied from the cache, no call", d, s.calls.Load()-calls)
		}
		if got := l.peekWant(t, "k", 2); got != d {
			t.Fatalf("Peek said %+v, AllowN then decided %+v", d, got)
		}

		s.fail.Store(true)
		for range 3 {
			if d := mustPeek(t, l, "down", 1); !d.Allowed || !d.Fallback || d.Remaining != 0 || d.Limit != 3 {
				t.Fatalf("Peek with the Store down: %+v, want a Fallback admission from the local share (burst 1), Limit 3", d)
			}
		}
		if d := mustPeek(t, l, "down", 2); d.Allowed || !d.Fallback {
			t.Fatalf("Peek(cost 2) above the local share with the Store down: %+v, want a Fallback denial", d)
		}
		if st := l.Stats(); st.Store.Fallbacks != 0 || st.Store.Errors != 4 {
			t.Fatalf("Stats %+v: want no fallbacks counted (a Peek is not a decision), 4 store errors", st)
		}
		mustAllow(t, l, "down", 1, true) // the local share's token is still there
		s.fail.Store(false)

		cancelled, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := l.Peek(cancelled, "x", 1); !errors.Is(err, context.Canceled) {
			t.Fatalf("Peek with a cancelled ctx: error %v, want context.Canceled", err)
		}
	})
}

// A Peek under FailClosed with the Store down is a Fallback denial, as the
// AllowN after it.
func TestPeekRemoteFailClosed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newFakeStore()
		l := newRemoteLimiter(t, Policy{Rate: 1, Burst: 3}, store.Config{Store: s, FailClosed: true, BreakerFailures: 1, BreakerCooldown: time.Second})
		s.fail.Store(true)
		l.Allow(ctx, "k") // opens the breaker
		time.Sleep(time.Second / 4)
		d := mustPeek(t, l, "k", 1)
		if d.Allowed || !d.Fallback || d.RetryAfter != 3*time.Second/4 {
			t.Fatalf("Peek with the breaker open: %+v, want a Fallback denial until the cooldown ends (750ms)", d)
		}
		if got := l.peekWant(t, "k", 1); got != d {
			t.Fatalf("Peek said %+v, AllowN then decided %+v", d, got)
		}
	})
}

// With prefetch, a lease that holds the cost answers Peek as it would
// answer AllowN, without a round trip and without spending from it.
func TestPeekLease(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newFakeStore()
		l := newRemoteLimiter(t, Policy{Rate: 1000, Burst: 100}, store.Config{Store: s, Prefetch: 10})
		mustAllow(t, l, "hot", 1, true)
		mustAllow(t, l, "hot", 1, true) // hot: takes a lease of 10
		calls := s.calls.Load()
		for range 3 {
			if d := mustPeek(t, l, "hot", 4); !d.Allowed || d.Remaining != 6 {
				t.Fatalf("Peek(cost 4) on a lease of 10: %+v, want allowed, Remaining 6", d)
			}
		}
		d := mustPeek(t, l, "hot", 4)
		if got := l.peekWant(t, "hot", 4); got != d || s.calls.Load() != calls {
			t.Fatalf("Peek said %+v, AllowN then decided %+v, with %d Store calls; want the same, from the lease", d, got, s.calls.Load()-calls)
		}
		if st := l.Stats(); st.Store.PrefetchHits != 1 {
			t.Fatalf("Stats.Store.PrefetchHits %d, want 1 (the AllowN, not the peeks)", st.Store.PrefetchHits)
		}
	})
}
