package bench

import (
	"fmt"
	"runtime"
)

// MemoryConfig is the policy of the memory measurements, with the
// implementations' default caps and cleanup: 100 per hour, burst 100. Its
// slow refill keeps every key's state alive for the whole measurement: no
// bucket refills (floodgate's sweeper could retire it) and no window ends
// (httprate and ulule would drop it) before the heap is read.
var MemoryConfig = Config{Rate: 100.0 / 3600, Burst: 100}

// heapAlloc returns the live heap after a full collection. Two cycles let
// finalizers that free memory (ulule's cleaner) run first.
func heapAlloc() uint64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// BytesPerKey tracks n new keys (one request each, every one of which must
// be admitted) in a fresh implementation and returns the live heap it holds
// per key, key strings included.
func BytesPerKey(im Impl, c Config, n int) (float64, error) {
	before := heapAlloc()
	l, err := im.New(c)
	if err != nil {
		return 0, err
	}
	defer l.Close()
	for i := range n {
		if !l.Allow(IPv4Key(i)) {
			return 0, fmt.Errorf("%s: first request of key %d of %d denied: keys are not tracked separately", im.Name, i, n)
		}
	}
	after := heapAlloc()
	runtime.KeepAlive(l)
	if after <= before {
		return 0, fmt.Errorf("%s: heap did not grow with %d keys (%d -> %d bytes)", im.Name, n, before, after)
	}
	return float64(after-before) / float64(n), nil
}

// Spray sends one request from each of n new keys and returns the live heap
// the implementation holds afterwards and how many requests it admitted.
// A bounded implementation holds the same memory whatever n is.
func Spray(im Impl, c Config, n int) (heapBytes uint64, admitted int, err error) {
	before := heapAlloc()
	l, err := im.New(c)
	if err != nil {
		return 0, 0, err
	}
	defer l.Close()
	for i := range n {
		if l.Allow(IPv4Key(i)) {
			admitted++
		}
	}
	after := heapAlloc()
	runtime.KeepAlive(l)
	if admitted < min(n, c.Burst) {
		return 0, 0, fmt.Errorf("%s: only %d of %d sprayed keys admitted", im.Name, admitted, n)
	}
	if after < before {
		return 0, admitted, nil
	}
	return after - before, admitted, nil
}
