package limiter

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/time/rate"
)

// benchImpl is one implementation under benchmark: floodgate, or the floor
// it is measured against.
type benchImpl struct {
	name string
	new  func(p Policy, maxKeys int) benchLimiter
}

type benchLimiter interface {
	allow(key string) bool
	close()
}

var benchImpls = []benchImpl{
	{"impl=floodgate", func(p Policy, maxKeys int) benchLimiter {
		l, err := New(p, WithMaxKeys(maxKeys))
		if err != nil {
			panic(err)
		}
		return floodgateBench{l}
	}},
	// The floor from the issue: a bare sync.Map of *rate.Limiter, Load then
	// AllowN, LoadOrStore on a miss. No cap, no sweeping, no stats.
	{"impl=syncmap-rate", func(p Policy, _ int) benchLimiter { return &syncMapRate{p: p} }},
}

type floodgateBench struct{ l *Limiter }

func (f floodgateBench) allow(key string) bool {
	d, err := f.l.Allow(context.Background(), key)
	if err != nil {
		panic(err)
	}
	return d.Allowed
}
func (f floodgateBench) close() { f.l.Close() }

type syncMapRate struct {
	p Policy
	m sync.Map
}

func (s *syncMapRate) allow(key string) bool {
	v, ok := s.m.Load(key)
	if !ok {
		v, _ = s.m.LoadOrStore(key, rate.NewLimiter(s.p.Rate, s.p.Burst))
	}
	return v.(*rate.Limiter).AllowN(time.Now(), 1)
}
func (s *syncMapRate) close() {}

// benchKeys returns n distinct IPv4-like keys.
func benchKeys(n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("10.%d.%d.%d", i>>16&0xff, i>>8&0xff, i&0xff)
	}
	return keys
}

// benchWorkload drives allow over keys in parallel (-cpu 1 makes it serial)
// and checks afterwards that the workload was the intended one.
func benchWorkload(b *testing.B, p Policy, keys []string, want denials) {
	for _, impl := range benchImpls {
		b.Run(impl.name, func(b *testing.B) {
			lim := impl.new(p, max(len(keys), 1))
			defer lim.close()
			for _, k := range keys { // warm: every key tracked before timing
				lim.allow(k)
			}
			var allowed, denied atomic.Int64
			var next atomic.Uint64
			b.ReportAllocs()
			b.ResetTimer()
			cpu := cpuTime()
			b.RunParallel(func(pb *testing.PB) {
				i := int(next.Add(1) * 7919)
				var a, d int64
				for pb.Next() {
					if lim.allow(keys[i%len(keys)]) {
						a++
					} else {
						d++
					}
					i++
				}
				allowed.Add(a)
				denied.Add(d)
			})
			b.StopTimer()
			reportCPU(b, cpu)
			if n := allowed.Load() + denied.Load(); n != int64(b.N) {
				b.Fatalf("made %d decisions, want b.N = %d", n, b.N)
			}
			if want == someDenied && b.N > 100*p.Burst && denied.Load() == 0 {
				b.Fatalf("no denials in %d calls on a policy of %v: not limiting", b.N, p)
			}
			if want == allDenied && allowed.Load() != 0 {
				b.Fatalf("%d of %d calls admitted, want every one denied", allowed.Load(), b.N)
			}
		})
	}
}

// denials is what a workload expects of its decisions.
type denials int

const (
	anyDenied  denials = iota // nothing to check
	someDenied                // a workload on a hot key: the limiter must limit
	allDenied                 // a flooded key: every timed call denied
)

// reportCPU reports the process CPU time per operation since start (a
// cpuTime reading): on a loaded machine, a steadier figure than ns/op,
// which counts the time other processes held the cores.
func reportCPU(b *testing.B, start time.Duration) {
	if end := cpuTime(); start > 0 && end > start {
		b.ReportMetric(float64(end-start)/float64(b.N), "cpu-ns/op")
	}
}

// BenchmarkHotKey: every call on one key, mostly denied (the flooding client).
func BenchmarkHotKey(b *testing.B) {
	benchWorkload(b, PerSecond(100), []string{"203.0.113.7"}, someDenied)
}

// BenchmarkHotKeyFlooded: every call on one key, and every one denied (the
// warm-up took its one token, which takes an hour to come back).
func BenchmarkHotKeyFlooded(b *testing.B) {
	benchWorkload(b, PerHour(1), []string{"203.0.113.7"}, allDenied)
}

// BenchmarkKeys100k: calls spread over 100,000 tracked keys, mostly allowed.
func BenchmarkKeys100k(b *testing.B) {
	benchWorkload(b, PerSecond(1000), benchKeys(100_000), anyDenied)
}

// BenchmarkNewKey: every call is a key never seen before (a key spray below
// the cap, so every call inserts).
func BenchmarkNewKey(b *testing.B) {
	for _, impl := range benchImpls {
		b.Run(impl.name, func(b *testing.B) {
			keys := benchKeys(b.N)
			lim := impl.new(PerSecond(10), b.N+1)
			defer lim.close()
			var next atomic.Int64
			var denied atomic.Int64
			b.ReportAllocs()
			b.ResetTimer()
			cpu := cpuTime()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if !lim.allow(keys[next.Add(1)-1]) {
						denied.Add(1)
					}
				}
			})
			b.StopTimer()
			reportCPU(b, cpu)
			if got := next.Load(); got != int64(b.N) {
				b.Fatalf("visited %d keys, want %d", got, b.N)
			}
			if denied.Load() != 0 {
				b.Fatalf("%d first requests of fresh keys denied", denied.Load())
			}
		})
	}
}

// BenchmarkCounters compares the striped decision counters with a single
// shared atomic, under parallel increments: the case Stats must not turn
// into a contended hot spot.
func BenchmarkCounters(b *testing.B) {
	b.Run("striped", func(b *testing.B) {
		c := newCounters()
		buckets := make([]bucket, 1024)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for i := 0; pb.Next(); i++ {
				c.count(spreadOf(&buckets[i%len(buckets)]), true, false)
			}
		})
		var s Stats
		c.sum(&s)
		if s.Allowed != uint64(b.N) {
			b.Fatalf("counted %d, want %d", s.Allowed, b.N)
		}
	})
	b.Run("single-atomic", func(b *testing.B) {
		var n atomic.Uint64
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				n.Add(1)
			}
		})
		if n.Load() != uint64(b.N) {
			b.Fatalf("counted %d, want %d", n.Load(), b.N)
		}
	})
}

// BenchmarkPeek: Peek on a tracked key (one goroutine and in parallel, on
// one key and over 100,000), and on keys that are not tracked, which it
// answers without creating anything. Nothing is taken, so the decisions
// never change during the run.
func BenchmarkPeek(b *testing.B) {
	keys := benchKeys(100_000)
	for _, bc := range []struct {
		name     string
		keys     []string
		tracked  bool
		parallel bool
	}{
		{"tracked/serial", keys[:1], true, false},
		{"tracked/parallel", keys[:1], true, true},
		{"keys100k/parallel", keys, true, true},
		{"untracked/parallel", keys, false, true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			l, err := New(PerSecond(1000))
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()
			if bc.tracked {
				for _, k := range bc.keys {
					l.Allow(context.Background(), k)
				}
			}
			peek := func(k string) {
				if d, err := l.Peek(context.Background(), k, 1); err != nil || !d.Allowed {
					panic(fmt.Sprint("Peek: ", d, err))
				}
			}
			b.ReportAllocs()
			b.ResetTimer()
			if !bc.parallel {
				for i := 0; b.Loop(); i++ {
					peek(bc.keys[i%len(bc.keys)])
				}
				return
			}
			var next atomic.Uint64
			b.RunParallel(func(pb *testing.PB) {
				i := next.Add(7919)
				for pb.Next() {
					i++
					peek(bc.keys[i%uint64(len(bc.keys))])
				}
			})
			b.StopTimer()
			if !bc.tracked && l.Stats().Keys != 0 {
				b.Fatalf("Peek at untracked keys tracked %d", l.Stats().Keys)
			}
		})
	}
}
