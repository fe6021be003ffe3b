package bench

import (
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/time/rate"
)

// TestFloorMatchesRateLimiter drives the floor and rate.Limiter with the
// same random requests at the same instants and wants the same decision
// every time. Rates of 1, 2 and 4 per second at instants on a 1/4 s grid
// keep rate.Limiter's float64 arithmetic exact, so the two must agree at
// every boundary (a bucket holding exactly 1 token, or 1 - 1/4).
func TestFloorMatchesRateLimiter(t *testing.T) {
	for seed := range uint64(200) {
		rng := rand.New(rand.NewPCG(seed, 14))
		c := Config{Rate: float64(int(1) << rng.IntN(3)), Burst: 1 + rng.IntN(6)}
		fl, err := newFloor(c)
		if err != nil {
			t.Fatal(err)
		}
		keys := []string{"a", "b"}
		oracle := map[string]*rate.Limiter{}
		for _, k := range keys {
			oracle[k] = rate.NewLimiter(rate.Limit(c.Rate), c.Burst)
		}
		t0 := time.Unix(1_000_000, 0)
		var now time.Duration
		for step := range 300 {
			now += time.Duration(rng.IntN(5)) * time.Second / 4
			k := keys[rng.IntN(len(keys))]
			want := oracle[k].AllowN(t0.Add(now), 1)
			if got := fl.allowAt(k, int64(now)); got != want {
				t.Fatalf("seed %d (%v), step %d: allowAt(%q, %v) = %v, rate.Limiter says %v", seed, c, step, k, now, got, want)
			}
		}
	}
}

// TestFloorRoundsUp checks a rate whose interval is not a whole number of
// nanoseconds: at 3/s the interval rounds up to 333,333,334 ns, so the
// floor admits a request at most as early as an exact token bucket would,
// never before (rounding down would admit at 333,333,333 ns, when the
// bucket holds 0.999999999 tokens).
func TestFloorRoundsUp(t *testing.T) {
	fl, err := newFloor(Config{Rate: 3, Burst: 1})
	if err != nil {
		t.Fatal(err)
	}
	for _, step := range []struct {
		now  int64
		want bool
	}{
		{0, true}, {333_333_333, false}, {333_333_334, true},
		{666_666_667, false}, {666_666_668, true},
		{1_000_000_001, false}, {1_000_000_002, true},
	} {
		if got := fl.allowAt("k", step.now); got != step.want {
			t.Fatalf("allowAt(%d ns) = %v, want %v", step.now, got, step.want)
		}
	}
}

// TestFloorConcurrent races 8 goroutines on one key: at one instant
// exactly Burst are admitted, and with time moving the admissions never
// exceed Burst + Rate×T, however the compare-and-swaps interleave.
func TestFloorConcurrent(t *testing.T) {
	c := Config{Rate: 1000, Burst: 50}
	for _, moving := range []bool{false, true} {
		fl, err := newFloor(c)
		if err != nil {
			t.Fatal(err)
		}
		var clock, admitted atomic.Int64
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				for range 20_000 {
					now := clock.Load()
					if moving {
						now = clock.Add(int64(time.Microsecond))
					}
					if fl.allowAt(HotKey, now) {
						admitted.Add(1)
					}
				}
			})
		}
		wg.Wait()
		elapsed := time.Duration(clock.Load())
		if got, max := int(admitted.Load()), c.Max(elapsed); got > max || (!moving && got != c.Burst) {
			t.Errorf("moving clock %v: admitted %d in %v, want at most Burst + Rate×T = %d (exactly Burst %d on a stopped clock)", moving, got, elapsed, max, c.Burst)
		}
	}
}

func TestFloorConfig(t *testing.T) {
	for _, c := range []Config{{Rate: 0, Burst: 1}, {Rate: 1, Burst: 0}, {Rate: -1, Burst: 1}, {Rate: 1e-9, Burst: 1 << 30}} {
		if _, err := newFloor(c); err == nil {
			t.Errorf("newFloor(%+v) = nil error, want one", c)
		}
	}
}
