package bench

import (
	"fmt"
	"math/bits"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// Standard is the policy of every speed benchmark: a token bucket of 100
// refilling at 1000/s (window-based peers: 100 requests per 100 ms). A hot
// key is denied almost always; each of 100,000 keys is admitted almost
// always.
var Standard = Config{Rate: 1000, Burst: 100}

// Flooded is the policy of the flooded-key workload: one request per 1,000
// seconds, burst 1. The key spends its burst before the timer starts, so
// every timed call must be denied.
var Flooded = Config{Rate: 1e-3, Burst: 1}

// HotKey is the key of the hot-key workloads.
const HotKey = "203.0.113.7"

// ManyKeys is how many keys the many-keys workload spreads requests over.
const ManyKeys = 100_000

// chunk is how many consecutive key indices a goroutine claims at once.
const chunk = 256

// goroutineLimit bounds the goroutines of a parallel run of
// NewKeyEveryCall: testing.B.RunParallel's GOMAXPROCS, or up to 64 of a
// smoke test.
func goroutineLimit() int { return runtime.GOMAXPROCS(0) + 64 }

// A Nexter hands out iterations: *testing.PB, or a Countdown.
type Nexter interface{ Next() bool }

// Countdown is a Nexter for exactly its value's iterations.
type Countdown int

// Next reports whether an iteration remains, and consumes it.
func (c *Countdown) Next() bool {
	*c--
	return *c >= 0
}

// A Workload is one benchmark body, run the same way for every
// implementation. Prepare (not timed) builds the loop for ops operations on
// l; the loop is run once serially or from every goroutine of a parallel
// run; check then verifies that the loop did what the workload claims.
type Workload struct {
	Name     string
	Doc      string
	Parallel bool
	Config   Config
	Prepare  func(l Limiter, ops int) (loop func(Nexter), check func(elapsed time.Duration) (Metrics, error), err error)
}

// Metrics are extra per-run figures a workload reports besides ns/op.
type Metrics map[string]float64

// Workloads returns the speed workloads.
func Workloads() []Workload {
	return []Workload{
		{Name: "HotKeySerial", Doc: "one key, one goroutine: a client hammering (almost all denied)", Config: Standard, Prepare: prepareHotKey},
		{Name: "HotKeyParallel", Doc: "one key, every core: a client hammering from many connections", Parallel: true, Config: Standard, Prepare: prepareHotKey},
		{Name: "HotKeyFloodedParallel", Doc: "one key that spent its burst before the timer started, every core: a client flooding far over its rate, every call denied (checked)", Parallel: true, Config: Flooded, Prepare: prepareFlooded},
		{Name: "ManyKeysParallel", Doc: "100,000 tracked keys, every core: normal traffic (almost all admitted)", Parallel: true, Config: Standard, Prepare: prepareManyKeys},
		{Name: "NewKeyEveryCall", Doc: "every request from a new key, every core: a key spray", Parallel: true, Config: Standard, Prepare: prepareNewKeys},
	}
}

// tally accumulates decisions from the goroutines of a run.
type tally struct {
	allowed, denied atomic.Int64
	goroutines      atomic.Int64
}

func (t *tally) add(allowed, denied int64) {
	t.allowed.Add(allowed)
	t.denied.Add(denied)
	t.goroutines.Add(1)
}

func (t *tally) checkOps(ops int) error {
	if got := t.allowed.Load() + t.denied.Load(); got != int64(ops) {
		return fmt.Errorf("made %d decisions, want %d", got, ops)
	}
	return nil
}

// hotKeyLoop is the loop of the hot-key workloads: every call on HotKey,
// decisions tallied in t.
func hotKeyLoop(l Limiter, t *tally) func(Nexter) {
	return func(pb Nexter) {
		var a, d int64
		for pb.Next() {
			if l.Allow(HotKey) {
				a++
			} else {
				d++
			}
		}
		t.add(a, d)
	}
}

func prepareHotKey(l Limiter, ops int) (func(Nexter), func(time.Duration) (Metrics, error), error) {
	var t tally
	loop := hotKeyLoop(l, &t)
	check := func(elapsed time.Duration) (Metrics, error) {
		if err := t.checkOps(ops); err != nil {
			return nil, err
		}
		a, d := t.allowed.Load(), t.denied.Load()
		switch {
		case a < 1:
			return nil, fmt.Errorf("hot key: nothing admitted in %d requests", ops)
		case ops > 2*Standard.Burst && d < 1:
			return nil, fmt.Errorf("hot key: all %d requests admitted: the limiter is not limiting", ops)
		case elapsed > 3*Standard.Window() && a <= int64(Standard.Burst):
			return nil, fmt.Errorf("hot key: only %d admitted in %v: the clock is not moving", a, elapsed)
		}
		return Metrics{"admit/op": float64(a) / float64(ops)}, nil
	}
	return loop, check, nil
}

// prepareFlooded drains the hot key's burst before the timer starts; the
// check fails unless every timed call was denied.
func prepareFlooded(l Limiter, ops int) (func(Nexter), func(time.Duration) (Metrics, error), error) {
	denied := false
	for range 4*Flooded.Burst + 4 {
		if !l.Allow(HotKey) {
			denied = true
			break
		}
	}
	if !denied {
		return nil, nil, fmt.Errorf("flooded key: %d requests in a row admitted with burst %d: the limiter is not limiting", 4*Flooded.Burst+4, Flooded.Burst)
	}
	var t tally
	loop := hotKeyLoop(l, &t)
	check := func(time.Duration) (Metrics, error) {
		if err := t.checkOps(ops); err != nil {
			return nil, err
		}
		if a := t.allowed.Load(); a != 0 {
			return nil, fmt.Errorf("flooded key: %d of %d calls admitted, want every call denied", a, ops)
		}
		return Metrics{"admit/op": 0}, nil
	}
	return loop, check, nil
}

// bitset records which key indices a goroutine visited.
type bitset []uint64

func (s bitset) set(i int) { s[i>>6] |= 1 << (i & 63) }

func (s bitset) or(o bitset) {
	for i := range s {
		s[i] |= o[i]
	}
}

func (s bitset) count() (n int) {
	for _, w := range s {
		n += bits.OnesCount64(w)
	}
	return n
}

// cover merges the bitsets of a run's goroutines.
type cover struct {
	mu  sync.Mutex
	all bitset
}

func (c *cover) merge(s bitset) {
	c.mu.Lock()
	c.all.or(s)
	c.mu.Unlock()
}

func prepareManyKeys(l Limiter, ops int) (func(Nexter), func(time.Duration) (Metrics, error), error) {
	keys, err := SharedKeys(ManyKeys)
	if err != nil {
		return nil, nil, err
	}
	for i, k := range keys { // track every key before timing
		if !l.Allow(k) {
			return nil, nil, fmt.Errorf("many keys: first request of key %d (%s) denied", i, k)
		}
	}
	var t tally
	var next atomic.Int64 // next chunk of key indices to claim
	c := cover{all: make(bitset, (len(keys)+63)/64)}
	loop := func(pb Nexter) {
		seen := make(bitset, len(c.all))
		var a, d int64
		for i, end := 0, 0; pb.Next(); i++ {
			if i == end {
				i = int(next.Add(1)-1) * chunk % len(keys)
				end = min(i+chunk, len(keys))
			}
			seen.set(i)
			if l.Allow(keys[i]) {
				a++
			} else {
				d++
			}
		}
		t.add(a, d)
		c.merge(seen)
	}
	check := func(time.Duration) (Metrics, error) {
		if err := t.checkOps(ops); err != nil {
			return nil, err
		}
		distinct := c.all.count()
		// Each goroutine may leave the tail of its last chunk unvisited.
		if want := min(len(keys), ops) - chunk*int(t.goroutines.Load()); distinct < want {
			return nil, fmt.Errorf("many keys: %d distinct keys hit in %d requests, want at least %d", distinct, ops, want)
		}
		if t.allowed.Load() < 1 {
			return nil, fmt.Errorf("many keys: nothing admitted")
		}
		return Metrics{"keys": float64(distinct), "admit/op": float64(t.allowed.Load()) / float64(ops)}, nil
	}
	return loop, check, nil
}

func prepareNewKeys(l Limiter, ops int) (func(Nexter), func(time.Duration) (Metrics, error), error) {
	// Goroutines claim disjoint chunks of indices; each leaves at most one
	// chunk unfinished, so ops+chunk×maxGoroutines keys are enough.
	keys, err := Keys(ops + chunk*goroutineLimit())
	if err != nil {
		return nil, nil, err
	}
	var t tally
	var next atomic.Int64
	c := cover{all: make(bitset, (len(keys)+63)/64)}
	loop := func(pb Nexter) {
		seen := make(bitset, len(c.all))
		var a, d int64
		for i, end := 0, 0; pb.Next(); i++ {
			if i == end {
				i = int(next.Add(1)-1) * chunk
				end = i + chunk
			}
			seen.set(i)
			if l.Allow(keys[i]) {
				a++
			} else {
				d++
			}
		}
		t.add(a, d)
		c.merge(seen)
	}
	check := func(time.Duration) (Metrics, error) {
		if err := t.checkOps(ops); err != nil {
			return nil, err
		}
		if g := t.goroutines.Load(); g > int64(goroutineLimit()) {
			return nil, fmt.Errorf("new keys: %d goroutines, at most %d supported", g, goroutineLimit())
		}
		if distinct := c.all.count(); distinct != ops {
			return nil, fmt.Errorf("new keys: %d distinct keys in %d requests, want all distinct", distinct, ops)
		}
		if a := t.allowed.Load(); a < int64(min(ops, Standard.Burst)) {
			return nil, fmt.Errorf("new keys: only %d of %d new keys admitted", a, ops)
		}
		return Metrics{"admit/op": float64(t.allowed.Load()) / float64(ops)}, nil
	}
	return loop, check, nil
}
