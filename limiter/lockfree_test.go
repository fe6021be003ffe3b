package limiter

import (
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/floodgate-go/floodgate/sweeper"
)

// A request loaded the policy, then SetPolicy replaced it before the
// request read the bucket. The bucket now holds the new policy's level, so
// a denial decided on it under the old policy would be a decision under a
// policy SetPolicy has finished replacing: the lock-free read must see the
// mark and start over.
func TestLockFreeDenialAfterSetPolicy(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := mustNew(t, PerHour(2))
		mustAllow(t, l, "k", 2, true)
		m, b := l.pm.Load(), mustLookup(t, l, "k")
		if err := l.SetPolicy(PerHour(3)); err != nil {
			t.Fatal(err)
		}
		if d, o := b.allow(m, l.now(), 1, &l.stats); o != stale {
			t.Fatalf("allow under the replaced policy = %+v, outcome %v; want outcome stale", d, o)
		}
		if d, _ := l.Allow(ctx, "k"); d.Allowed || d.Limit != 3 {
			t.Fatalf("Allow after SetPolicy = %+v, want denied with Limit 3", d)
		}
	})
}

// A request found an empty bucket, which Reset then retired: the request
// must not answer from it (a denial there would be a denial of a client
// whose bucket was just reset), but start over on a fresh one.
func TestLockFreeDenialOnRetiredBucket(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := mustNew(t, PerHour(2))
		mustAllow(t, l, "k", 2, true)
		b := mustLookup(t, l, "k")
		if err := l.Reset(ctx, "k"); err != nil {
			t.Fatal(err)
		}
		if d, o := b.allow(l.pm.Load(), l.now(), 1, &l.stats); o != gone {
			t.Fatalf("allow on the retired bucket = %+v, outcome %v; want outcome gone", d, o)
		}
		if d, _ := l.Allow(ctx, "k"); !d.Allowed || d.Remaining != 1 {
			t.Fatalf("Allow after Reset = %+v, want allowed with Remaining 1", d)
		}
	})
}

// A request read a snapshot and would admit; another admission at the same
// nanosecond took a token and released the bucket with the same clock
// word. The first request's compare-and-swap on the clock word succeeds,
// so it must notice the level changed and decide again: committing what it
// computed from its snapshot would give back the other's token.
func TestAdmissionAfterSameInstantWriter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := mustNew(t, PerSecond(2))
		mustAllow(t, l, "k", 1, true) // the bucket's clock is now
		m, b, now := l.pm.Load(), mustLookup(t, l, "k"), l.now()
		tokens, w, ok := b.snapshot()
		if !ok || tokens != 1 {
			t.Fatalf("snapshot = %v, %v; want 1 token", tokens, ok)
		}
		if d, _ := b.allow(m, now, 1, &l.stats); !d.Allowed || b.clock.Load() != w {
			t.Fatalf("the same-instant admission = %+v, or it moved the clock word", d)
		}
		if tk, o := b.takeFrom(tokens, w, false, m, now, 1, 0, &l.stats, nil); o != decidedDeny {
			t.Fatalf("admission from the outdated snapshot = %+v, outcome %v; want a denial: the bucket is empty", tk.decision(m, o), o)
		}
		if tokens := b.level(); tokens != 0 {
			t.Fatalf("the bucket holds %v tokens, want 0", tokens)
		}
	})
}

// TestLockFreeDenialStress makes lock-free denials race admissions,
// retirement (sweeper passes, makeRoom, Reset) and SetPolicy on one key,
// round after round: every round, 8 goroutines making 2 requests each, and
// one of the four, wake at the same fake instant on a full bucket. A round
// that only races retirement admits exactly Burst (more: a request spent
// from a dropped bucket; fewer: a denial decided on a state that no longer
// held). A Reset round admits between Burst and twice Burst; a SetPolicy
// round between the two policies' Bursts, and a request that starts after
// SetPolicy returned is decided under the new policy. Stats count every
// decision.
func TestLockFreeDenialStress(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const requesters, calls, rounds = 8, 2, 400
		policies := [2]Policy{{Rate: 10, Burst: 5}, {Rate: 20, Burst: 8}}
		l := mustNew(t, policies[0])
		var (
			admitted, denied [rounds]atomic.Int64
			limitErrs        atomic.Int64
			setDone          [rounds]atomic.Bool
			retiredRounds    int
			wg               sync.WaitGroup
		)
		policyAt := func(r int) Policy { return policies[r/4%2] } // at round r's start; SetPolicy in rounds 3, 7, …
		for range requesters {
			wg.Go(func() {
				for r := range rounds {
					time.Sleep(time.Second) // full again under either policy
					yieldRandomly()
					for range calls {
						after := setDone[r].Load()
						d, err := l.Allow(ctx, "hot")
						if err != nil {
							t.Errorf("round %d: %v", r, err)
						}
						if d.Allowed {
							admitted[r].Add(1)
						} else {
							denied[r].Add(1)
						}
						if after && d.Limit != policyAt(r+1).Burst {
							limitErrs.Add(1)
						}
					}
				}
			})
		}
		wg.Go(func() {
			for r := range rounds {
				time.Sleep(time.Second)
				yieldRandomly()
				switch r % 4 {
				case 0:
					retiredRounds += sweeper.Pass(&l.table, l.retire)
				case 1:
					if l.makeRoom(l.pm.Load()) {
						l.table.release() // the room it made is ours: give it back
						retiredRounds++
					}
				case 2:
					if err := l.Reset(ctx, "hot"); err != nil {
						t.Error(err)
					}
				case 3:
					if err := l.SetPolicy(policyAt(r + 1)); err != nil {
						t.Error(err)
					}
					setDone[r].Store(true)
				}
			}
		})
		wg.Wait()
		var sumA, sumD int64
		for r := range rounds {
			a, d := admitted[r].Load(), denied[r].Load()
			sumA, sumD = sumA+a, sumD+d
			lo, hi := int64(policyAt(r).Burst), int64(policyAt(r).Burst)
			switch r % 4 {
			case 2:
				hi *= 2
			case 3:
				lo, hi = min(lo, int64(policyAt(r+1).Burst)), max(hi, int64(policyAt(r+1).Burst))
			}
			if a < lo || a > hi {
				t.Errorf("round %d (kind %d) admitted %d, want %d to %d", r, r%4, a, lo, hi)
			}
		}
		if n := limitErrs.Load(); n > 0 {
			t.Errorf("%d decisions made after SetPolicy returned used the replaced policy", n)
		}
		if retiredRounds == 0 || retiredRounds == rounds/2 {
			t.Errorf("retirement won %d of %d rounds: the race was not exercised both ways", retiredRounds, rounds/2)
		}
		if s := l.Stats(); s.Allowed != uint64(sumA) || s.Denied != uint64(sumD) {
			t.Errorf("Stats counted %d allowed, %d denied; the requests saw %d and %d", s.Allowed, s.Denied, sumA, sumD)
		}
	})
}

// TestLockFreeDenialsCountedExactly: goroutines flooding one key from
// every core are all denied without the lock, and Stats counts each of
// them, wherever its goroutine's counter cell is.
func TestLockFreeDenialsCountedExactly(t *testing.T) {
	l := mustNew(t, PerHour(1))
	mustAllow(t, l, "k", 1, true)
	const goroutines, each = 16, 2000
	var wg sync.WaitGroup
	var wrong atomic.Int64
	for range goroutines {
		wg.Go(func() {
			for range each {
				if d, err := l.Allow(ctx, "k"); err != nil || d.Allowed || d.Limit != 1 || d.RetryAfter <= 0 {
					wrong.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if n := wrong.Load(); n > 0 {
		t.Fatalf("%d of %d decisions on an empty bucket were not denials with a RetryAfter", n, goroutines*each)
	}
	if s := l.Stats(); s.Allowed != 1 || s.Denied != goroutines*each {
		t.Fatalf("Stats = %d allowed, %d denied; want 1 and %d", s.Allowed, s.Denied, goroutines*each)
	}
}

func mustLookup(t *testing.T, l *Limiter, key string) *bucket {
	t.Helper()
	b, ok := l.table.lookup(key)
	if !ok {
		t.Fatalf("%q is not tracked", key)
	}
	return b
}
