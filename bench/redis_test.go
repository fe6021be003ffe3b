package bench

import (
	"context"
	"flag"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/floodgate-go/floodgate/internal/redistest"
)

var redisPeriod = flag.Duration("redis.period", time.Second, "length of one period of a paced Redis scenario (one benchmark iteration)")

// redisParallelism × GOMAXPROCS goroutines run BenchmarkRedisParallel.
const redisParallelism = 8

// namespace gives every implementation built in this process its own key
// prefix on the shared server.
var namespace atomic.Int64

func newRedisImpl(tb testing.TB, im RedisImpl, addr string, c Config, prefetch int) (RedisLimiter, *RoundTrips) {
	tb.Helper()
	client, rt := NewRedisClient(addr)
	tb.Cleanup(func() { client.Close() })
	l, err := im.New(client, RedisConfig{Config: c, Prefix: fmt.Sprintf("b%d", namespace.Add(1)), Prefetch: prefetch})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(l.Close)
	return l, rt
}

func redisKeys(tb testing.TB) []string {
	keys, err := Keys(RedisKeys)
	if err != nil {
		tb.Fatal(err)
	}
	return keys
}

// benchRedis measures decisions against one real redis-server, started
// for the benchmark (skipped without redis-server on PATH, failed then
// under FLOODGATE_REQUIRE_REDIS=1). Every decision must be admitted, with
// no error; rt/op is the round trips the client sent per decision.
func benchRedis(b *testing.B, parallel bool) {
	srv := redistest.Start(b)
	keys := redisKeys(b)
	admin := redis.NewClient(&redis.Options{Addr: srv.Addr(), Protocol: 2})
	defer admin.Close()
	for _, im := range RedisImpls() {
		b.Run(im.Name, func(b *testing.B) {
			l, rt := newRedisImpl(b, im, srv.Addr(), RedisStandard, 0)
			ctx := context.Background()
			var admitted, errs atomic.Int64
			var next atomic.Int64
			loop := func(pb Nexter) {
				var a, e int64
				for i := int(next.Add(1)) * 131; pb.Next(); i++ {
					ok, err := l.Allow(ctx, keys[i%len(keys)])
					switch {
					case err != nil:
						e++
					case ok:
						a++
					}
				}
				admitted.Add(a)
				errs.Add(e)
			}
			srv0, err := ResetServerStats(ctx, admin)
			if err != nil {
				b.Fatal(err)
			}
			rt0 := rt.Load()
			b.ReportAllocs()
			b.ResetTimer()
			cpu0 := cpuTime()
			timed(b, func() {
				if parallel {
					// A server has many requests waiting on Redis at once.
					b.SetParallelism(redisParallelism)
					b.RunParallel(func(pb *testing.PB) { loop(pb) })
				} else {
					n := Countdown(b.N)
					loop(&n)
				}
			})
			cpu := cpuTime() - cpu0
			b.StopTimer()
			if e, a := errs.Load(), admitted.Load(); e > 0 || a != int64(b.N) {
				b.Fatalf("%d decisions: %d admitted, %d errors; want all admitted", b.N, a, e)
			}
			srv1, err := ReadServerStats(ctx, admin)
			if err != nil {
				b.Fatal(err)
			}
			sm := serverMetrics(srv0, srv1, b.N)
			// The policy must make every implementation write its state on
			// every decision, or the comparison of server time is not fair
			// (at 1e9/s redis_rate's script skips its SET).
			if sm["writes/op"] < 1 {
				b.Fatalf("%d decisions wrote state %.3f times each (%v), want at least once", b.N, sm["writes/op"], sm)
			}
			for unit, v := range sm {
				b.ReportMetric(v, unit)
			}
			if cpu > 0 {
				b.ReportMetric(float64(cpu)/float64(b.N), "cpu-ns/op")
			}
			b.ReportMetric(float64(rt.Load()-rt0)/float64(b.N), "rt/op")
		})
	}
}

func BenchmarkRedisSerial(b *testing.B)   { benchRedis(b, false) }
func BenchmarkRedisParallel(b *testing.B) { benchRedis(b, true) }

// benchPaced runs a paced scenario: each iteration is one period of
// -redis.period on a new key. It reports round trips per admitted request
// and admitted against the policy maximum; floodgate must not exceed it.
func benchPaced(b *testing.B, name string) {
	p := pacedScenario(b, name)
	srv := redistest.Start(b)
	for _, im := range RedisImpls() {
		b.Run(im.Name, func(b *testing.B) {
			l, rt := newRedisImpl(b, im, srv.Addr(), p.Config, p.Prefetch)
			var sum PacedResult
			for i := 0; b.Loop(); i++ {
				r, err := RunPaced(context.Background(), l, rt, p, fmt.Sprintf("client-%d", i), *redisPeriod)
				if err != nil {
					b.Fatal(err)
				}
				if im.Name == "floodgate" && r.Admitted > r.Max {
					b.Fatalf("floodgate admitted %d in %v, over the maximum %d", r.Admitted, r.Elapsed, r.Max)
				}
				sum.Requests, sum.Admitted, sum.Max = sum.Requests+r.Requests, sum.Admitted+r.Admitted, sum.Max+r.Max
				sum.RoundTrips += r.RoundTrips
			}
			b.ReportMetric(float64(sum.RoundTrips)/float64(sum.Admitted), "rt/admit")
			b.ReportMetric(float64(sum.RoundTrips)/float64(sum.Requests), "rt/req")
			b.ReportMetric(float64(sum.Admitted)/float64(b.N), "admitted")
			b.ReportMetric(float64(sum.Max)/float64(b.N), "max")
			b.ReportMetric(float64(sum.Requests)/float64(b.N), "requests")
		})
	}
}

func pacedScenario(tb testing.TB, name string) Paced {
	for _, p := range PacedScenarios() {
		if p.Name == name {
			return p
		}
	}
	tb.Fatalf("no paced scenario %q", name)
	return Paced{}
}

func BenchmarkRedisFlood(b *testing.B)  { benchPaced(b, "RedisFlood") }
func BenchmarkRedisHotKey(b *testing.B) { benchPaced(b, "RedisHotKey") }

// TestRedisSmoke runs every Redis implementation through its limits, a few
// decisions from 4 goroutines, and both paced scenarios for 200 ms, against
// a real redis-server (skipped without one, unless FLOODGATE_REQUIRE_REDIS=1).
func TestRedisSmoke(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	for _, im := range RedisImpls() {
		t.Run(im.Name, func(t *testing.T) {
			c := Config{Rate: 1, Burst: 10}
			l, _ := newRedisImpl(t, im, srv.Addr(), c, 0)
			for i := range c.Burst + 1 {
				ok, err := l.Allow(ctx, "k")
				if err != nil || ok != (i < c.Burst) {
					t.Fatalf("Allow #%d = %v, %v; want %v, nil (burst %d)", i+1, ok, err, i < c.Burst, c.Burst)
				}
			}
			for _, p := range PacedScenarios() {
				l, rt := newRedisImpl(t, im, srv.Addr(), p.Config, p.Prefetch)
				r, err := RunPaced(ctx, l, rt, p, "client", 200*time.Millisecond)
				if err != nil {
					t.Fatal(err)
				}
				t.Logf("%s: %d requests, %d admitted (max %d), %d round trips", p.Name, r.Requests, r.Admitted, r.Max, r.RoundTrips)
				if im.Name != "floodgate" {
					continue
				}
				if r.Admitted > r.Max {
					t.Errorf("%s: floodgate admitted %d, over the maximum %d", p.Name, r.Admitted, r.Max)
				}
				// The deny cache answers a flooding client locally; prefetch
				// serves a hot key from leases: both far below one round trip
				// per request.
				if r.RoundTrips*4 > uint64(r.Requests) {
					t.Errorf("%s: floodgate made %d round trips for %d requests, want under a quarter", p.Name, r.RoundTrips, r.Requests)
				}
			}
		})
	}
}
