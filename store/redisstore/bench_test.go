package redisstore_test

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/floodgate-go/floodgate/internal/redistest"
	"github.com/floodgate-go/floodgate/limiter"
	"github.com/floodgate-go/floodgate/store"
	"github.com/floodgate-go/floodgate/store/redisstore"
)

// Benchmarks against a real redis-server on loopback, started here. Each
// reports round trips per admitted request (rt/admit, from the limiter's
// own Stats, which TestDenyCacheRoundTrips checks against Redis's command
// counter) and checks that its workload did what its name says.
//
//	go test -run '^$' -bench . -benchmem ./store/

// generous never denies within a benchmark: every decision is a round trip.
var generous = limiter.Policy{Rate: 1e9, Burst: 1 << 30}

var benchKeys = func() []string {
	keys := make([]string, 1024)
	for i := range keys {
		keys[i] = "10.0." + strconv.Itoa(i/256) + "." + strconv.Itoa(i%256)
	}
	return keys
}()

func BenchmarkRedis(b *testing.B) {
	srv := redistest.Start(b)
	client := newClient(b, srv.Addr())
	ctx := context.Background()

	b.Run("Take/serial", func(b *testing.B) {
		s := freshStore(b, client)
		req := store.Request{Rate: generous.Rate, Burst: generous.Burst, Cost: 1}
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			res, err := s.Take(ctx, benchKeys[i%len(benchKeys)], req)
			if err != nil || !res.Allowed {
				b.Fatalf("Take: %+v, %v", res, err)
			}
			i++
		}
	})
	// What the Limiter's per-call timeout context adds to a round trip.
	b.Run("Take/serial/deadline", func(b *testing.B) {
		s := freshStore(b, client)
		req := store.Request{Rate: generous.Rate, Burst: generous.Burst, Cost: 1}
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			cctx, cancel := context.WithTimeout(ctx, time.Second)
			res, err := s.Take(cctx, benchKeys[i%len(benchKeys)], req)
			cancel()
			if err != nil || !res.Allowed {
				b.Fatalf("Take: %+v, %v", res, err)
			}
			i++
		}
	})
	b.Run("Take/parallel", func(b *testing.B) {
		s := freshStore(b, client)
		req := store.Request{Rate: generous.Rate, Burst: generous.Burst, Cost: 1}
		var next atomic.Int64
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			i := int(next.Add(1)) * 97
			for pb.Next() {
				res, err := s.Take(ctx, benchKeys[i%len(benchKeys)], req)
				if err != nil || !res.Allowed {
					b.Errorf("Take: %+v, %v", res, err)
					return
				}
				i++
			}
		})
	})
	// conc goroutines making decisions on distinct keys through a Limiter,
	// with coalescing (the default) and without: ns/op is the wall time
	// per decision, so the ratio of two runs is their throughput ratio.
	for _, conc := range []int{1, 16, 64, 256} {
		for _, coalesce := range []bool{false, true} {
			b.Run(fmt.Sprintf("Allow/conc=%d/coalesce=%v", conc, coalesce), func(b *testing.B) {
				var opts []redisstore.Option
				if !coalesce {
					opts = append(opts, redisstore.WithoutCoalescing())
				}
				// a generous timeout: the benchmark measures throughput, and
				// hundreds of goroutines on a loaded machine can queue
				l := newLimiter(b, generous, store.Config{Store: freshStore(b, client, opts...), Timeout: time.Second})
				b.ReportAllocs()
				var next atomic.Int64
				var wg sync.WaitGroup
				for g := range conc {
					wg.Go(func() {
						for i := g; next.Add(1) <= int64(b.N); i += conc {
							allow(b, l, benchKeys[i%len(benchKeys)])
						}
					})
				}
				wg.Wait()
				report(b, l, 1, 1)
			})
		}
	}
	for _, par := range []bool{false, true} {
		name := "Allow/serial"
		if par {
			name = "Allow/parallel"
		}
		b.Run(name, func(b *testing.B) {
			l := newLimiter(b, generous, store.Config{Store: freshStore(b, client)})
			run(b, par, func(i int) bool { return allow(b, l, benchKeys[i%len(benchKeys)]) })
			report(b, l, 1, 1)
		})
	}
	// One client flooding at far above its rate of 100/s: the deny cache
	// answers almost everything.
	b.Run("Allow/flood", func(b *testing.B) {
		l := newLimiter(b, limiter.Policy{Rate: 100, Burst: 10}, store.Config{Store: freshStore(b, client)})
		run(b, true, func(int) bool { return allow(b, l, "flooder") })
		report(b, l, 0, 2)
	})
	// One hot key at 10^5/s, requested by every goroutine: without prefetch,
	// each admission is a round trip; with it, the round trip that finds
	// tokens accumulated takes up to 64 of them at once.
	for _, prefetch := range []int{0, 64} {
		b.Run("Allow/hot-key/prefetch="+strconv.Itoa(prefetch), func(b *testing.B) {
			l := newLimiter(b, limiter.Policy{Rate: 1e5, Burst: 100}, store.Config{Store: freshStore(b, client), Prefetch: prefetch})
			run(b, true, func(int) bool { return allow(b, l, "hot") })
			want := 2.0
			if prefetch > 0 {
				want = 0.5
			}
			report(b, l, 0, want)
		})
	}
}

func allow(b *testing.B, l *limiter.Limiter, key string) bool {
	d, err := l.Allow(context.Background(), key)
	if err != nil {
		b.Error(err)
	}
	return d.Allowed
}

// run calls f b.N times, in parallel or not.
func run(b *testing.B, parallel bool, f func(i int) bool) {
	b.ReportAllocs()
	if !parallel {
		i := 0
		for b.Loop() {
			f(i)
			i++
		}
		return
	}
	var next atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		i := int(next.Add(1)) * 97
		for pb.Next() {
			f(i)
			i++
		}
	})
}

// report adds rt/admit and checks the workload: at least minAdmit of the
// decisions admitted, at most maxRT round trips per admitted request.
func report(b *testing.B, l *limiter.Limiter, minAdmit, maxRT float64) {
	st := l.Stats()
	decisions := float64(st.Allowed + st.Denied)
	if decisions < 1000 {
		return // a calibration run: too short to judge
	}
	// A timeout now and then on a loaded shared machine is tolerated; the
	// benchmark measures the Redis path, so many would break it.
	if st.Allowed == 0 || float64(st.Store.Errors) > 0.001*decisions {
		b.Fatalf("workload broken: %+v", st)
	}
	rt := float64(st.Store.RoundTrips) / float64(st.Allowed)
	b.ReportMetric(rt, "rt/admit")
	b.ReportMetric(float64(st.Allowed)/decisions, "admit/op")
	if float64(st.Allowed) < minAdmit*decisions || rt > maxRT {
		b.Fatalf("workload not as named: %+v (%.3f round trips per admission)", st, rt)
	}
}
