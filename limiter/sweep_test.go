package limiter

import (
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"golang.org/x/time/rate"

	"github.com/floodgate-go/floodgate/sweeper"
)

// The retire protocol, interleaving by interleaving (see package sweeper).

// A request has loaded a bucket; the sweeper retires and deletes it before
// the request locks it. The request must not spend from the dropped bucket:
// it starts over on a fresh one.
func TestSweepRetiresBucketARequestHolds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := mustNew(t, PerSecond(5))
		l.Allow(ctx, "k")
		time.Sleep(time.Second) // refilled: indistinguishable from fresh
		b, _ := l.table.lookup("k")
		if got := sweeper.Pass(&l.table, l.retire); got != 1 {
			t.Fatalf("Pass removed %d, want 1", got)
		}
		if _, o := b.allow(l.pm.Load(), l.now(), 1, &l.stats); o.decided() {
			t.Fatal("a retired bucket admitted a request")
		}
		d, err := l.Allow(ctx, "k")
		if err != nil || !d.Allowed || d.Remaining != 4 {
			t.Fatalf("Allow after the race = %+v, %v; want allowed with Remaining 4", d, err)
		}
		if nb, _ := l.table.lookup("k"); nb == b {
			t.Fatal("the retired bucket is back in the table")
		}
	})
}

// The sweeper has marked a bucket retired but not yet deleted it when a
// request arrives. The request deletes it on the sweeper's behalf and
// creates a fresh bucket; the sweeper's CompareAndDelete then fails and
// must not delete the fresh bucket.
func TestSweepMarkedButNotDeleted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := mustNew(t, PerSecond(5))
		l.Allow(ctx, "k")
		time.Sleep(time.Second)
		var during Decision
		removed := sweeper.Pass(&l.table, func(b *bucket) bool {
			ok := l.retire(b)
			during, _ = l.Allow(ctx, "k") // between the mark and CompareAndDelete
			return ok
		})
		if removed != 0 {
			t.Fatalf("Pass removed %d, want 0: the request replaced the entry first", removed)
		}
		if !during.Allowed || during.Remaining != 4 {
			t.Fatalf("racing Allow = %+v, want allowed with Remaining 4", during)
		}
		d, _ := l.Allow(ctx, "k")
		if d.Remaining != 3 {
			t.Fatalf("next Allow: Remaining %d, want 3: the fresh bucket was lost", d.Remaining)
		}
		if s := l.Stats(); s.Keys != 1 || s.Retired != 1 {
			t.Fatalf("Stats = %+v, want Keys 1, Retired 1", s)
		}
	})
}

// Buckets that are not full are never swept, however idle.
func TestSweepKeepsDrainedBuckets(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := mustNew(t, PerHour(2))
		l.Allow(ctx, "k")
		time.Sleep(59 * time.Minute) // refill takes 30 minutes per token; one token short
		l.Allow(ctx, "k")
		time.Sleep(29 * time.Minute)
		if got := sweeper.Pass(&l.table, l.retire); got != 0 {
			t.Fatalf("Pass removed %d drained buckets, want 0", got)
		}
		if s := l.Stats(); s.Keys != 1 {
			t.Fatalf("Keys = %d, want 1", s.Keys)
		}
	})
}

// TestLosslessSweeping: a slow policy swept every 100ms for a minute admits
// exactly what one never-swept rate.Limiter admits for the same requests.
func TestLosslessSweeping(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := Policy{Rate: 1, Burst: 5}
		l := mustNew(t, p, WithSweepInterval(100*time.Millisecond))
		oracle := rate.NewLimiter(p.Rate, p.Burst)
		var got, want int
		start := time.Now()
		for i := 0; time.Since(start) < time.Minute; i++ {
			// Bursts of 7 requests, then gaps of growing length: some gaps are
			// long enough for the bucket to refill and be swept.
			for range 7 {
				if d, _ := l.Allow(ctx, "client"); d.Allowed {
					got++
				}
				if oracle.Allow() {
					want++
				}
			}
			time.Sleep(time.Duration(i%8) * 700 * time.Millisecond)
		}
		if got != want {
			t.Fatalf("admitted %d with sweeping, %d by rate.Limiter", got, want)
		}
		if s := l.Stats(); s.Retired == 0 {
			t.Fatalf("the sweeper retired nothing (%+v): the test did not exercise it", s)
		}
	})
}

// TestSweepRaceStress makes requests and sweeper passes collide on a full
// bucket, round after round: every round, 16 goroutines and a sweeper pass
// wake at the same fake instant. Whatever the interleaving, the round admits
// exactly Burst: more would mean a request spent from a dropped bucket and a
// fresh one admitted again; fewer, that a request was lost.
func TestSweepRaceStress(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const burst, requesters, rounds = 5, 16, 300
		l := mustNew(t, PerSecond(burst))
		var admitted [rounds]atomic.Int64
		var wg sync.WaitGroup
		for g := range requesters {
			wg.Go(func() {
				for r := range rounds {
					time.Sleep(time.Second) // the bucket refills between rounds
					yieldRandomly()
					for range 1 + g%2 {
						if d, _ := l.Allow(ctx, "hot"); d.Allowed {
							admitted[r].Add(1)
						}
					}
				}
			})
		}
		var swept int
		wg.Go(func() {
			for range rounds {
				time.Sleep(time.Second)
				yieldRandomly()
				swept += sweeper.Pass(&l.table, l.retire)
			}
		})
		wg.Wait()
		for r := range rounds {
			if got := admitted[r].Load(); got != burst {
				t.Errorf("round %d admitted %d, want exactly %d", r, got, burst)
			}
		}
		if swept == 0 || swept == rounds {
			t.Errorf("the sweeper won %d of %d rounds: the race was not exercised both ways", swept, rounds)
		}
	})
}

// yieldRandomly shuffles the order in which goroutines woken at the same
// fake instant reach the code under test.
func yieldRandomly() {
	for range rand.IntN(4) {
		runtime.Gosched()
	}
}
