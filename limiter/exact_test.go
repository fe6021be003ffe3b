package limiter

import (
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// checkWindows fails if any interval between two admissions holds more than
// Burst + Rate×T admissions: the exactness invariant, over every window, not
// only the whole run.
func checkWindows(t *testing.T, who string, p Policy, admitted []time.Duration) {
	t.Helper()
	slices.Sort(admitted)
	for i := range admitted {
		for j := i; j < len(admitted); j++ {
			span := admitted[j] - admitted[i]
			// rate.Limiter truncates a reservation's wait to the nanosecond,
			// so a waiter may go up to 1 ns early: that much slack.
			bound := float64(p.Burst) + float64(p.Rate)*(span+time.Nanosecond).Seconds()
			if count := float64(j - i + 1); count > bound+1e-9 {
				t.Fatalf("%s: %v admitted in [%v, %v], want at most Burst + Rate×T = %.3f", who, count, admitted[i], admitted[j], bound)
			}
		}
	}
}

// hammer runs goroutines that call Allow(key) in fake time until the
// deadline, sleeping between requests as pause says, and returns the
// instants of the admitted requests.
func hammer(l *Limiter, key string, goroutines int, run time.Duration, pause func(rng *rand.Rand, now time.Duration) time.Duration) []time.Duration {
	start := time.Now()
	var (
		mu       sync.Mutex
		admitted []time.Duration
		wg       sync.WaitGroup
	)
	for g := range goroutines {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 1))
			var mine []time.Duration
			for at := time.Since(start); at < run; at = time.Since(start) {
				if d, _ := l.Allow(ctx, key); d.Allowed {
					mine = append(mine, at)
				}
				time.Sleep(pause(rng, at))
			}
			mu.Lock()
			admitted = append(admitted, mine...)
			mu.Unlock()
		})
	}
	wg.Wait()
	return admitted
}

// TestExactnessConcurrent: many goroutines on one key admit at most
// Burst + Rate×T in every window and at least 99% of it over the run, with
// the default sweeper, a sweeper every millisecond, and a client that goes
// idle long enough for its bucket to be retired and re-created mid-run.
func TestExactnessConcurrent(t *testing.T) {
	p := Policy{Rate: 100, Burst: 20}
	busy := func(rng *rand.Rand, _ time.Duration) time.Duration {
		return time.Duration(1+rng.IntN(20)) * time.Millisecond
	}
	for _, tc := range []struct {
		name  string
		opts  []Option
		pause func(*rand.Rand, time.Duration) time.Duration
		// want is the most the run could admit: Burst + Rate×T over each
		// busy phase (the bucket is full at the start of each).
		want    float64
		retired bool
	}{
		{"default sweeper", nil, busy, 20 + 100*10, false},
		{"sweeper every 1ms", []Option{WithSweepInterval(time.Millisecond)}, busy, 20 + 100*10, false},
		{"idle phases, retired and re-created", []Option{WithSweepInterval(time.Millisecond)},
			func(rng *rand.Rand, now time.Duration) time.Duration {
				// Busy in the first second of every two; idle in the second,
				// when the bucket refills and is retired.
				next := now + busy(rng, now)
				if next%(2*time.Second) >= time.Second {
					next = (next/(2*time.Second) + 1) * 2 * time.Second
				}
				return next - now
			},
			5 * (20 + 100*1), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				l := mustNew(t, p, tc.opts...)
				admitted := hammer(l, "client", 32, 10*time.Second, tc.pause)
				checkWindows(t, "client", p, admitted)
				if got := float64(len(admitted)); got < 0.99*tc.want || got > tc.want {
					t.Errorf("admitted %v, want between 99%% of %v and %v", got, tc.want, tc.want)
				}
				if s := l.Stats(); tc.retired && s.Retired < 4 {
					t.Errorf("retired %d buckets, want one per idle phase (4)", s.Retired)
				}
			})
		})
	}
}
