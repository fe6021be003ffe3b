package bench

import (
	"flag"
	"regexp"
	"testing"
	"time"
)

var (
	memKeys   = flag.Int("memkeys", 1_000_000, "keys tracked by BenchmarkBytesPerKey")
	sprayKeys = flag.Int("spraykeys", 10_000_000, "keys sprayed by BenchmarkSprayMemory")
)

// benchName is an implementation's name as it appears in benchmark names.
var benchName = regexp.MustCompile(`\s`)

func forEachImpl(b *testing.B, f func(b *testing.B, im Impl)) {
	for _, im := range Impls() {
		b.Run(benchName.ReplaceAllString(im.Name, "_"), func(b *testing.B) { f(b, im) })
	}
}

func benchWorkload(b *testing.B, name string) {
	w := workload(b, name)
	forEachImpl(b, func(b *testing.B, im Impl) {
		l, err := im.New(w.Config)
		if err != nil {
			b.Fatal(err)
		}
		defer l.Close()
		loop, check, err := w.Prepare(l, b.N)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		b.ResetTimer()
		cpu0 := cpuTime()
		start := time.Now()
		timed(b, func() {
			if w.Parallel {
				b.RunParallel(func(pb *testing.PB) { loop(pb) })
			} else {
				n := Countdown(b.N)
				loop(&n)
			}
		})
		elapsed := time.Since(start)
		cpu := cpuTime() - cpu0
		b.StopTimer()
		m, err := check(elapsed)
		if err != nil {
			b.Fatalf("%s/%s: %v", name, im.Name, err)
		}
		if cpu > 0 {
			// CPU time of the whole process per decision: unlike ns/op, it
			// does not grow when other processes take the machine's cores.
			b.ReportMetric(float64(cpu)/float64(b.N), "cpu-ns/op")
		}
		for unit, v := range m {
			b.ReportMetric(v, unit)
		}
	})
}

func workload(tb testing.TB, name string) Workload {
	for _, w := range Workloads() {
		if w.Name == name {
			return w
		}
	}
	tb.Fatalf("no workload %q", name)
	return Workload{}
}

func BenchmarkHotKeySerial(b *testing.B)          { benchWorkload(b, "HotKeySerial") }
func BenchmarkHotKeyParallel(b *testing.B)        { benchWorkload(b, "HotKeyParallel") }
func BenchmarkHotKeyFloodedParallel(b *testing.B) { benchWorkload(b, "HotKeyFloodedParallel") }
func BenchmarkManyKeysParallel(b *testing.B)      { benchWorkload(b, "ManyKeysParallel") }
func BenchmarkNewKeyEveryCall(b *testing.B)       { benchWorkload(b, "NewKeyEveryCall") }

// BenchmarkBytesPerKey measures the live heap per tracked key at -memkeys
// keys. Run it with -benchtime=1x: each iteration tracks all the keys.
func BenchmarkBytesPerKey(b *testing.B) {
	forEachImpl(b, func(b *testing.B, im Impl) {
		var sum float64
		for range b.N {
			v, err := BytesPerKey(im, MemoryConfig, *memKeys)
			if err != nil {
				b.Fatal(err)
			}
			sum += v
		}
		b.ReportMetric(sum/float64(b.N), "B/key")
		b.ReportMetric(float64(*memKeys), "keys")
	})
}

// BenchmarkSprayMemory measures the live heap left after one request from
// each of -spraykeys new keys. Run it with -benchtime=1x.
func BenchmarkSprayMemory(b *testing.B) {
	forEachImpl(b, func(b *testing.B, im Impl) {
		var heap uint64
		var admitted int
		for range b.N {
			h, a, err := Spray(im, MemoryConfig, *sprayKeys)
			if err != nil {
				b.Fatal(err)
			}
			heap, admitted = heap+h, admitted+a
		}
		b.ReportMetric(float64(heap)/float64(b.N)/(1<<20), "heap-MiB")
		b.ReportMetric(float64(admitted)/float64(b.N), "admitted")
		b.ReportMetric(float64(*sprayKeys), "keys")
	})
}
