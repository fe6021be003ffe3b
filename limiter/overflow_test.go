package limiter

import (
	"fmt"
	"runtime"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/floodgate-go/floodgate/sweeper"
)

// withCells gives a Limiter n cells in rows rows instead of the default
// (a tiny array makes keys collide; a large one keeps them apart).
func withCells(n, rows int) Option {
	return func(c *config) error {
		c.cells, c.cellRows = n, rows
		return nil
	}
}

// Keys the table does not hold are served by their own cells, not by one
// bucket they all share: each gets its own Burst. (Before the cells, ten
// untracked keys shared one overflow bucket and got 3 admissions in all.)
func TestCellsKeepUntrackedKeysApart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := mustNew(t, PerMinute(3), WithMaxKeys(1), withCells(1<<16, 2))
		if d, _ := l.Allow(ctx, "tracked"); !d.Allowed {
			t.Fatal("first key denied")
		}
		for i := range 10 {
			key := fmt.Sprintf("sprayed-%d", i)
			for j := range 4 {
				d, _ := l.Allow(ctx, key)
				if d.Allowed != (j < 3) || d.Remaining != max(2-j, 0) {
					t.Fatalf("%s request %d: %+v, want Allowed %v, Remaining %d: its own Burst of 3", key, j, d, j < 3, max(2-j, 0))
				}
			}
		}
		// The tracked key keeps its own bucket.
		for want := range 2 {
			if d, _ := l.Allow(ctx, "tracked"); !d.Allowed || d.Remaining != 1-want {
				t.Fatalf("tracked key under overflow: %+v, want allowed with Remaining %d", d, 1-want)
			}
		}
		if s := l.Stats(); s.Keys != 1 || s.Overflowed != 40 {
			t.Errorf("Stats = %+v, want Keys 1, Overflowed 40", s)
		}
	})
}

// With a single cell, every untracked key shares it: the old overflow
// bucket is the degenerate case, and is still never less restrictive than
// any key's own bucket.
func TestOneCellIsSharedByAll(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := mustNew(t, PerMinute(3), WithMaxKeys(1), withCells(1, 1))
		l.Allow(ctx, "tracked")
		var admitted int
		for i := range 10 {
			if d, _ := l.Allow(ctx, fmt.Sprintf("sprayed-%d", i)); d.Allowed {
				admitted++
			}
		}
		if admitted != 3 {
			t.Errorf("10 keys on one cell admitted %d, want its Burst, 3", admitted)
		}
	})
}

// When the table is full, a new key retires a refilled bucket in place and
// takes its slot, rather than waiting for the sweeper; a bucket that still
// remembers spending is never retired for it.
func TestFullTableMakesRoomFromRefilledBuckets(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := mustNew(t, PerSecond(2), WithMaxKeys(2))
		l.Allow(ctx, "idle")
		l.Allow(ctx, "drained")
		l.Allow(ctx, "drained")
		time.Sleep(600 * time.Millisecond) // idle is full again; drained is not
		if d, _ := l.Allow(ctx, "new"); !d.Allowed || d.Remaining != 1 {
			t.Fatalf("new key: %+v, want its own fresh bucket (Remaining 1)", d)
		}
		if s := l.Stats(); s.Overflowed != 0 || s.Retired != 1 || s.Keys != 2 {
			t.Fatalf("Stats = %+v, want Overflowed 0, Retired 1 (idle), Keys 2", s)
		}
		if d, _ := l.Allow(ctx, "drained"); d.Remaining != 0 {
			t.Fatalf("drained: %+v: its bucket was retired while it still held spending", d)
		}
		if d, _ := l.Allow(ctx, "another"); !d.Allowed {
			t.Fatalf("another: %+v", d)
		}
		if s := l.Stats(); s.Overflowed != 1 {
			t.Fatalf("Overflowed = %d, want 1: nothing was retirable", s.Overflowed)
		}
	})
}

// A key that spent from its cells and then gets a bucket of its own must
// start from its cells' level, not from full: otherwise it would get a
// second burst.
func TestOverflowHandoverKeepsSpending(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := Policy{Rate: 1, Burst: 5}
		l := mustNew(t, p, WithMaxKeys(1))
		l.Allow(ctx, "a") // a holds the only slot
		var admitted []time.Duration
		start := time.Now()
		allowB := func() {
			if d, _ := l.Allow(ctx, "b"); d.Allowed {
				admitted = append(admitted, time.Since(start))
			}
		}
		for range 5 {
			allowB() // b drains its cells
		}
		time.Sleep(time.Second) // a refills; b's cells regain 1
		if got := sweeper.Pass(&l.table, l.retire); got != 1 {
			t.Fatalf("Pass removed %d, want a", got)
		}
		for range 5 {
			allowB() // b now gets a bucket of its own
		}
		if s := l.Stats(); s.Keys != 1 {
			t.Fatalf("Keys = %d, want 1 (b)", s.Keys)
		}
		checkWindows(t, "b", p, admitted)
		if len(admitted) != 6 {
			t.Fatalf("b admitted %d in 1s, want Burst + Rate×1s = 6", len(admitted))
		}
	})
}

// A request that found the table full can reach the cells after its key
// got a bucket of its own (room freed up in between). It must use that
// bucket, not spend from its cells as well.
func TestOverflowPathDefersToTable(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := mustNew(t, PerMinute(5), WithMaxKeys(1))
		l.Allow(ctx, "k") // k is tracked
		if _, _, _, o := l.fromCells(l.pm.Load(), "k", 1, 0); o != gone {
			t.Fatalf("the cells decided (outcome %d) for a key that has its own bucket", o)
		}
		if s := l.Stats(); s.Overflowed != 0 {
			t.Fatalf("Overflowed = %d, want 0", s.Overflowed)
		}
		if l.cells.load() == nil {
			t.Fatal("the cells path did not publish the cells before checking the table (see settle)")
		}
	})
}

// TestOverflowStress: with a cap of one key, two clients and a sweeper
// contend round after round, so keys keep moving between their own bucket
// and the overflow bucket under every interleaving. Every window of every
// client stays within Burst + Rate×T.
func TestOverflowStress(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := Policy{Rate: 4, Burst: 3}
		l := mustNew(t, p, WithMaxKeys(1))
		start := time.Now()
		var mu sync.Mutex
		admitted := map[string][]time.Duration{}
		var wg sync.WaitGroup
		for g := range 12 {
			key := []string{"x", "y", "z"}[g%3]
			wg.Go(func() {
				for r := range 400 {
					time.Sleep(time.Duration(50+r%5*100) * time.Millisecond)
					yieldRandomly()
					if d, _ := l.Allow(ctx, key); d.Allowed {
						mu.Lock()
						admitted[key] = append(admitted[key], time.Since(start))
						mu.Unlock()
					}
				}
			})
		}
		wg.Go(func() {
			for range 800 {
				time.Sleep(50 * time.Millisecond)
				yieldRandomly()
				sweeper.Pass(&l.table, l.retire)
			}
		})
		wg.Wait()
		for key, times := range admitted {
			checkWindows(t, key, p, times)
		}
		if s := l.Stats(); s.Overflowed == 0 || s.Keys > 1 {
			t.Errorf("Stats = %+v: want overflow exercised and at most 1 key", s)
		}
	})
}

// TestKeySpray: a million distinct keys against a cap of 10,000. The table
// never exceeds the cap, the heap stays bounded (the table, plus the cells
// allocated once when it first fills), a client drained before the spray is
// still limited during it, and clients that first show up during it are
// admitted (before the cells, the spray kept their shared overflow bucket
// empty: every one of them was denied).
func TestKeySpray(t *testing.T) {
	if testing.Short() {
		t.Skip("sprays a million keys")
	}
	synctest.Test(t, func(t *testing.T) {
		const maxKeys = 10_000
		spray := 1_000_000
		if raceEnabled {
			spray = 100_000 // still ten times the cap
		}
		p := PerSecond(10)
		l := mustNew(t, p, WithMaxKeys(maxKeys), WithSweepInterval(100*time.Millisecond))
		start := time.Now()
		var victim []time.Duration
		for range 20 {
			if d, _ := l.Allow(ctx, "victim"); d.Allowed {
				victim = append(victim, 0)
			}
		}
		before := heapAlloc()
		key := make([]byte, 0, 64)
		for i := range spray {
			key = fmt.Appendf(key[:0], "%d.%d.%d.%d", 10+i>>24&0xff, i>>16&0xff, i>>8&0xff, i&0xff)
			l.Allow(ctx, string(key))
			if i%1000 == 0 {
				time.Sleep(time.Second * 1000 / time.Duration(spray)) // a second of fake time over the spray
				if d, _ := l.Allow(ctx, "victim"); d.Allowed {
					victim = append(victim, time.Since(start))
				}
				if k := l.Stats().Keys; k > maxKeys {
					t.Fatalf("after %d keys: tracking %d, cap %d", i, k, maxKeys)
				}
				if d, _ := l.Allow(ctx, fmt.Sprintf("newcomer-%d", i)); !d.Allowed {
					t.Fatalf("after %d sprayed keys, a first-time client was denied: %+v", i, d)
				}
			}
		}
		growth := int64(heapAlloc()) - int64(before)
		s := l.Stats()
		t.Logf("heap growth %d bytes; %+v", growth, s)
		cells := int64(l.cells.size) * 8
		if growth > 8<<20+cells {
			t.Errorf("heap grew by %d bytes during the spray, want under 8 MiB + the cells' %d", growth, cells)
		}
		if s.Overflowed == 0 || s.Retired == 0 {
			t.Errorf("Stats = %+v: want both overflow and retirement exercised", s)
		}
		checkWindows(t, "victim", p, victim)
		if len(victim) > 10+11 {
			t.Errorf("the drained victim was admitted %d times, want at most Burst + Rate×T = 21", len(victim))
		}
	})
}

func heapAlloc() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// TestMemoryPerKey measures the heap held per tracked key at a million
// keys (the README's figure) and holds it to 160 bytes.
func TestMemoryPerKey(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("measures the heap at a million keys: not under -short or -race")
	}
	const n = 1_000_000
	keys := benchKeys(n) // allocated before the baseline: the caller owns them
	before := heapAlloc()
	l := mustNew(t, PerHour(10), WithMaxKeys(n)) // nothing refills, so nothing is swept
	for _, k := range keys {
		l.Allow(ctx, k)
	}
	perKey := float64(heapAlloc()-before) / n
	t.Logf("%.1f bytes per tracked key at %d keys", perKey, n)
	if s := l.Stats(); s.Keys != n {
		t.Fatalf("tracking %d keys, want %d", s.Keys, n)
	}
	if perKey > 160 {
		t.Errorf("%.1f bytes per tracked key, want at most 160", perKey)
	}
	runtime.KeepAlive(keys)
}

// TestMemoryReturnsAfterSpray: once sprayed keys have refilled and been
// swept, the table is empty and the heap is back where it started.
func TestMemoryReturnsAfterSpray(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("measures the heap: not under -short or -race")
	}
	synctest.Test(t, func(t *testing.T) {
		const n = 200_000
		keys := benchKeys(n)
		l := mustNew(t, PerSecond(10), WithMaxKeys(n), WithSweepInterval(time.Second))
		before := heapAlloc()
		for _, k := range keys {
			l.Allow(ctx, k)
		}
		during := heapAlloc()
		time.Sleep(1500 * time.Millisecond) // refilled after 100ms; swept at 1s
		after := heapAlloc()
		t.Logf("heap: %d before, %d with %d keys, %d after the sweep", before, during, n, after)
		if s := l.Stats(); s.Keys != 0 || s.Retired != n {
			t.Fatalf("after the sweep: %+v, want Keys 0, Retired %d", s, n)
		}
		if grown := int64(after) - int64(before); grown > int64(during-before)/20 {
			t.Errorf("heap still %d bytes above its start after the sweep, want under 5%% of the spray's %d", grown, during-before)
		}
		runtime.KeepAlive(keys)
	})
}
