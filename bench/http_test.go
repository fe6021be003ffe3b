package bench

import (
	"sync"
	"testing"
	"time"
)

func httpWorkload(tb testing.TB, name string) HTTPWorkload {
	for _, w := range HTTPWorkloads() {
		if w.Name == name {
			return w
		}
	}
	tb.Fatalf("no HTTP workload %q", name)
	return HTTPWorkload{}
}

// benchHTTP runs one HTTP workload on every bare handler and middleware,
// from every core (b.RunParallel), as a server runs requests. The report
// subtracts each bare handler's ns/op from its middlewares' in the same
// round to get the middleware overhead.
func benchHTTP(b *testing.B, name string) {
	wl := httpWorkload(b, name)
	for _, im := range HTTPImpls() {
		b.Run(im.Name, func(b *testing.B) {
			loop, check, closeFn, err := PrepareHTTP(im, wl, b.N)
			if err != nil {
				b.Fatal(err)
			}
			defer closeFn()
			b.ReportAllocs()
			b.ResetTimer()
			cpu0 := cpuTime()
			timed(b, func() { b.RunParallel(func(pb *testing.PB) { loop(pb) }) })
			cpu := cpuTime() - cpu0
			b.StopTimer()
			m, err := check()
			if err != nil {
				b.Fatal(err)
			}
			if cpu > 0 {
				b.ReportMetric(float64(cpu)/float64(b.N), "cpu-ns/op")
			}
			for unit, v := range m {
				b.ReportMetric(v, unit)
			}
		})
	}
}

func BenchmarkHTTPAllowed(b *testing.B) { benchHTTP(b, "HTTPAllowed") }
func BenchmarkHTTPDenied(b *testing.B)  { benchHTTP(b, "HTTPDenied") }

// TestHTTPSmoke runs every HTTP workload on every handler at a small size,
// from 4 goroutines, with the benchmarks' checks.
func TestHTTPSmoke(t *testing.T) {
	for _, im := range HTTPImpls() {
		for _, wl := range HTTPWorkloads() {
			t.Run(im.Name+"/"+wl.Name, func(t *testing.T) {
				const ops, goroutines = 2000, 4
				loop, check, closeFn, err := PrepareHTTP(im, wl, ops)
				if err != nil {
					t.Fatal(err)
				}
				defer closeFn()
				var wg sync.WaitGroup
				for range goroutines {
					wg.Go(func() {
						n := Countdown(ops / goroutines)
						loop(&n)
					})
				}
				wg.Wait()
				if _, err := check(); err != nil {
					t.Fatal(err)
				}
			})
		}
	}
}

// TestHTTPLimits checks each middleware's configuration: per client, a
// burst of Burst admitted, then 429.
func TestHTTPLimits(t *testing.T) {
	c := Config{Rate: 1, Burst: 10}
	for _, im := range HTTPImpls() {
		if im.Bare == "" {
			continue
		}
		t.Run(im.Name, func(t *testing.T) {
			h, closeFn, err := im.New(c)
			if err != nil {
				t.Fatal(err)
			}
			defer closeFn()
			w := &DiscardWriter{H: map[string][]string{}}
			for _, r := range HTTPRequests()[:2] {
				for i := range c.Burst + 1 {
					want := 200
					if i == c.Burst {
						want = 429
					}
					if got := w.serve(h, r); got != want {
						t.Fatalf("request %d from %s: status %d, want %d", i+1, r.RemoteAddr, got, want)
					}
				}
			}
		})
	}
}

// TestSpoofSmoke runs the header-spoofing scenario on every middleware:
// floodgate's must admit exactly Burst; the peers' numbers are recorded
// (TestCorrectness writes them for the report), not judged.
func TestSpoofSmoke(t *testing.T) {
	for _, im := range HTTPImpls() {
		if im.Bare == "" {
			continue
		}
		o, err := Spoof(im, 200)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%-10s admitted %d of 200 spoofed requests, max %d", im.Name, o.Admitted, o.Max)
		if isFloodgateHTTP(im) && o.Admitted != SpoofConfig.Burst {
			t.Errorf("%s: admitted %d spoofed requests in %v, want exactly Burst %d", im.Name, o.Admitted, o.Elapsed.Round(time.Millisecond), SpoofConfig.Burst)
		}
	}
}
