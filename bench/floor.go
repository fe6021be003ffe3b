package bench

import (
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"
)

var floorImpl = Impl{
	Name: "floor",
	Library: "baseline: one atomic int64 per key in a sync.Map (Load, then LoadOrStore on a miss): " +
		"GCRA in integer nanoseconds, a compare-and-swap on admit, no write on deny (floor.go)",
	Algorithm: "GCRA (equivalent to a token bucket of Burst at Rate), exact: the emission interval is rounded up to a whole nanosecond",
	Cap:       "none",
	Cleanup:   "none: keys are kept forever",
	Notes: "answers a bool only (no Remaining, RetryAfter or ResetAfter), counts nothing; " +
		"it is the least an exact per-key limiter does: one clock read, one map lookup and one compare-and-swap",
	Baseline: true,
	New:      func(c Config) (Limiter, error) { return newFloor(c) },
}

// floorLimiter is the floor the other implementations are measured
// against: an exact per-key limiter that does nothing but decide.
//
// Each key holds its theoretical arrival time (TAT): the instant, in
// nanoseconds since epoch, at which its bucket will be full again. A
// request at now is admitted if, after adding one emission interval,
// the TAT runs at most Burst intervals ahead of now; that is exactly a
// token bucket holding Burst - (TAT-now)/interval tokens. An admission
// publishes the new TAT with a compare-and-swap and retries if another
// admission got there first; a denial writes nothing.
//
// Exactness under concurrency: an admission moves the TAT forward by
// exactly one interval from the value it read, so n admissions move it n
// intervals, and each checked TAT ≤ now + Burst×interval against a now
// read before the CAS (a stale now only makes the check stricter). Over
// any interval of length T at most Burst + T/interval requests are
// admitted, and interval ≥ 1/Rate.
type floorLimiter struct {
	m        sync.Map // string → *atomic.Int64 (the key's TAT)
	epoch    time.Time
	interval int64 // ns per token, rounded up
	tau      int64 // Burst × interval: how far the TAT may run ahead of now
}

func newFloor(c Config) (*floorLimiter, error) {
	if !(c.Rate > 0) || c.Burst < 1 {
		return nil, fmt.Errorf("floor: rate %g and burst %d: want both positive", c.Rate, c.Burst)
	}
	iv := math.Ceil(float64(time.Second) / c.Rate)
	if iv*float64(c.Burst) >= 1<<62 {
		return nil, fmt.Errorf("floor: rate %g with burst %d: Burst/Rate must stay below 146 years", c.Rate, c.Burst)
	}
	interval := max(int64(iv), 1)
	return &floorLimiter{epoch: time.Now(), interval: interval, tau: interval * int64(c.Burst)}, nil
}

// Allow decides one request for key now.
func (l *floorLimiter) Allow(key string) bool {
	return l.allowAt(key, int64(time.Since(l.epoch)))
}

// allowAt decides one request for key at now (ns since epoch, never
// negative). A new key's TAT is 0: a full bucket.
func (l *floorLimiter) allowAt(key string, now int64) bool {
	v, ok := l.m.Load(key)
	if !ok {
		v, _ = l.m.LoadOrStore(key, new(atomic.Int64))
	}
	tat := v.(*atomic.Int64)
	for {
		t := tat.Load()
		next := max(t, now) + l.interval
		if next-now > l.tau {
			return false
		}
		if tat.CompareAndSwap(t, next) {
			return true
		}
	}
}

// Close does nothing: the floor has no goroutine.
func (l *floorLimiter) Close() {}
