// Package bench measures floodgate side by side with the rate limiters users
// compare it with, on one harness: every implementation is wrapped in the
// same small [Limiter] interface, configured from the same [Config], and
// driven by the same workloads and correctness scenarios.
//
// The benchmarks live in bench_test.go; `go run ./cmd/report` runs them all
// within a time budget and writes README.md. The package is its own module so
// that the peers never enter floodgate's go.mod.
package bench

import (
	"fmt"
	"math"
	"time"
)

// A Limiter is one implementation under test, reduced to the decision every
// rate limiter makes: may this key spend one token now?
// Implementations must be safe for concurrent use.
type Limiter interface {
	// Allow reports whether one request for key is admitted now. An error
	// from the underlying library counts as a denial (see Impl.Notes).
	Allow(key string) bool
	// Close releases the implementation's background goroutines, if it
	// lets its caller do that.
	Close()
}

// Config is the policy and the memory settings every implementation is given.
type Config struct {
	// Rate is the sustained rate in tokens per second.
	Rate float64
	// Burst is the most a key may spend at once. Window-based peers get a
	// window of Burst/Rate seconds holding Burst requests.
	Burst int
	// MaxKeys caps the tracked keys, for implementations that have a cap;
	// 0 means the implementation's default.
	MaxKeys int
	// Cleanup is how often idle state is retired, for implementations that
	// let it be set; 0 means the implementation's default.
	Cleanup time.Duration
	// Bubble is set when the implementation runs inside a testing/synctest
	// bubble, where no goroutine may outlive the test: an implementation
	// whose background goroutine only a finalizer stops must not start it.
	Bubble bool
}

// Window is the window length window-based peers are given: the time a token
// bucket with this Config takes to refill from empty.
func (c Config) Window() time.Duration {
	return time.Duration(float64(c.Burst) / c.Rate * float64(time.Second))
}

// Max is the most a token bucket with this Config admits for one key over an
// interval of length t: Burst + Rate×t, rounded down.
func (c Config) Max(t time.Duration) int {
	return c.Burst + int(c.Rate*t.Seconds())
}

// String formats c for tables, e.g. "1000/s, burst 100" or
// "100/h, burst 100".
func (c Config) String() string {
	if h := c.Rate * 3600; c.Rate < 1 && math.Abs(h-math.Round(h)) < 1e-6 {
		return fmt.Sprintf("%g/h, burst %d", math.Round(h), c.Burst)
	}
	return fmt.Sprintf("%g/s, burst %d", c.Rate, c.Burst)
}

// Impl describes one implementation: how to build it and how it deviates
// from the token-bucket policy in Config.
type Impl struct {
	// Name is the short name used in benchmark names and tables.
	Name string
	// Library is the module path and pinned version.
	Library string
	// Algorithm is the limiting algorithm as the library implements it.
	Algorithm string
	// Cap says whether and how the tracked keys are bounded.
	Cap string
	// Cleanup says how idle state is retired.
	Cleanup string
	// Notes lists every other deviation from the shared Config.
	Notes string
	// Baseline is true for the hand-written reference loops.
	Baseline bool
	// New builds the implementation for c.
	New func(c Config) (Limiter, error)
}

// Impls returns every implementation, floodgate first and the floor
// (the exact lock-free baseline every run measures the distance to) second.
func Impls() []Impl {
	return []Impl{
		floodgateImpl,
		floorImpl,
		echoImpl,
		sethvargoImpl,
		ululeImpl,
		throttledImpl,
		httprateImpl,
		mutexMapImpl,
		syncMapImpl,
	}
}

// Lookup returns the implementation called name.
func Lookup(name string) (Impl, bool) {
	for _, im := range Impls() {
		if im.Name == name {
			return im, true
		}
	}
	return Impl{}, false
}
