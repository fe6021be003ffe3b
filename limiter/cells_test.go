package limiter

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"golang.org/x/time/rate"

	"github.com/floodgate-go/floodgate/sweeper"
)

// TestCellsStress: six keys on a table of two and a tiny array of cells, so
// that keys keep moving between their buckets and cells they share, under
// every interleaving: AllowN, WaitN cancelled at random, AllowAll with a
// limit that often denies (so admissions are undone), and sweeper passes.
// Every window of every key stays within Burst + Rate×T.
func TestCellsStress(t *testing.T) {
	for _, shape := range []struct{ cells, rows int }{{1, 1}, {3, 1}, {4, 2}, {64, 2}} {
		t.Run(fmt.Sprintf("cells=%d,rows=%d", shape.cells, shape.rows), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				p := Policy{Rate: 5, Burst: 3}
				l := mustNew(t, p, WithMaxKeys(2), withCells(shape.cells, shape.rows))
				other := mustNew(t, Policy{Rate: 2, Burst: 1}) // denies often: AllowAll gives back
				start := time.Now()
				var mu sync.Mutex
				admitted := map[string][]time.Duration{}
				record := func(key string) {
					mu.Lock()
					admitted[key] = append(admitted[key], time.Since(start))
					mu.Unlock()
				}
				var wg sync.WaitGroup
				for g := range 18 {
					key := fmt.Sprintf("k%d", g%6)
					wg.Go(func() {
						rng := rand.New(rand.NewPCG(uint64(g), 1))
						for range 150 {
							time.Sleep(time.Duration(rng.IntN(400)) * time.Millisecond)
							yieldRandomly()
							switch rng.IntN(3) {
							case 0:
								if d, _ := l.Allow(ctx, key); d.Allowed {
									record(key)
								}
							case 1:
								c, cancel := context.WithTimeout(ctx, time.Duration(rng.IntN(2000))*time.Millisecond)
								stop := time.AfterFunc(time.Duration(rng.IntN(1500))*time.Millisecond, cancel)
								if l.Wait(c, key) == nil {
									record(key)
								}
								stop.Stop()
								cancel()
							default:
								d, _ := AllowAll(ctx, Limit{Name: "cells", Limiter: l, Key: key}, Limit{Name: "other", Limiter: other, Key: "o"})
								if d.Allowed {
									record(key)
								}
							}
						}
					})
				}
				wg.Go(func() {
					for range 600 {
						time.Sleep(100 * time.Millisecond)
						yieldRandomly()
						sweeper.Pass(&l.table, l.retire)
					}
				})
				wg.Wait()
				total := 0
				for key, times := range admitted {
					checkWindows(t, key, p, times)
					total += len(times)
				}
				if s := l.Stats(); s.Overflowed == 0 || s.Retired == 0 || total == 0 {
					t.Errorf("Stats = %+v, %d admitted: want the cells, retirement and admissions exercised", s, total)
				}
			})
		})
	}
}

// A client whose bucket left the table while it was idle (refilled, swept)
// and which comes back during a key spray that keeps the table full is
// admitted as if it had never left: exactly as rate.Limiter would, with the
// same Remaining, on its first request and on the ones after. Before the
// cells, it came back to the overflow bucket the spray kept empty.
func TestReturningClientAdmittedAsIfItNeverLeft(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := PerMinute(5)
		// Cells enough that the client's are not hit (how often they are,
		// at each spray rate, is what TestLockoutRate measures).
		l := mustNew(t, p, WithMaxKeys(100), WithSweepInterval(time.Second), withCells(1<<20, 2))
		oracle := rate.NewLimiter(p.Rate, p.Burst)
		client := func(n int) {
			t.Helper()
			for range n {
				d, _ := l.Allow(ctx, "client")
				want := oracle.Allow()
				if d.Allowed != want || d.Remaining != int(oracle.Tokens()) {
					t.Fatalf("client: %+v, want Allowed %v Remaining %d as rate.Limiter", d, want, int(oracle.Tokens()))
				}
			}
		}
		client(3)
		time.Sleep(time.Minute) // refilled, and swept
		if s := l.Stats(); s.Keys != 0 || s.Retired != 1 {
			t.Fatalf("Stats = %+v, want the client's bucket retired", s)
		}
		// The spray: 200 keys a second for a minute, 24 times what keeps the
		// table of 100 full (100 × 5/min); the rest go to the cells.
		for i := range 12_000 {
			l.Allow(ctx, fmt.Sprintf("10.%d.%d.1", i>>8, i&0xff))
			time.Sleep(5 * time.Millisecond)
		}
		if s := l.Stats(); s.Keys != 100 || s.Overflowed == 0 {
			t.Fatalf("Stats = %+v, want the table full and the cells used", s)
		}
		client(7) // 5 admitted, then denied, as if it had never left
	})
}

// The exception: an attacker who pays to saturate every cell (here a single
// one, so it is cheap) gets a first-time client denied, and no key ever
// gets more than its own Burst + Rate×T.
func TestSaturatedCellsDeny(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := mustNew(t, PerMinute(5), WithMaxKeys(1), withCells(1, 1))
		l.Allow(ctx, "sprayer-0") // fills the table
		for i := range 5 {
			l.Allow(ctx, fmt.Sprintf("sprayer-%d", i+1))
		}
		if d, _ := l.Allow(ctx, "newcomer"); d.Allowed || d.RetryAfter != 12*time.Second {
			t.Fatalf("newcomer on a saturated cell: %+v, want denied for 12s", d)
		}
	})
}

// SetPolicy converts the cells' states: a key that spent 2 of 5 at 1/s
// keeps its level of 3 under a policy of 2/s and Burst 10, and refills at
// the new rate; a key that had not spent is full under the new Burst.
func TestSetPolicyAdoptsCells(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := mustNew(t, Policy{Rate: 1, Burst: 5}, WithMaxKeys(1), withCells(1<<16, 2))
		l.AllowN(ctx, "tracked", 5)
		if d, _ := l.AllowN(ctx, "spent", 2); !d.Allowed || d.Remaining != 3 {
			t.Fatalf("spent: %+v", d)
		}
		if err := l.SetPolicy(Policy{Rate: 2, Burst: 10}); err != nil {
			t.Fatal(err)
		}
		if d, _ := l.Peek(ctx, "spent", 1); d.Remaining != 2 || d.ResetAfter != 4*time.Second {
			t.Fatalf("spent after SetPolicy: %+v, want Remaining 2 (3 kept, less 1), ResetAfter 4s", d)
		}
		if d, _ := l.Peek(ctx, "fresh", 10); !d.Allowed {
			t.Fatalf("fresh after SetPolicy: %+v, want the new Burst", d)
		}
		time.Sleep(time.Second)
		if d, _ := l.AllowN(ctx, "spent", 5); !d.Allowed || d.Remaining != 0 {
			t.Fatalf("spent a second later: %+v, want 3 + 2 = 5 admitted", d)
		}
	})
}
