package echomw

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"github.com/floodgate-go/floodgate/limiter"
	"github.com/floodgate-go/floodgate/nethttpmw"
)

// BenchmarkMiddleware measures the middleware overhead over a bare handler,
// for net/http and Echo, against Echo's own middleware.RateLimiter with the
// same policy, serially and with b.RunParallel (GOMAXPROCS goroutines, as a
// server would run requests). Requests come from 1,000 clients (RemoteAddr), and every
// client has been seen before the timer starts, so the steady state is
// measured. Each benchmark checks its workload: on the allowed path every
// response must be 200, on the denied path every limited response 429.
//
//	go test -run '^$' -bench Middleware -count 6 ./echomw | tee new.txt
//	go run golang.org/x/perf/cmd/benchstat@latest -col /impl -row /path,/mode new.txt
func BenchmarkMiddleware(b *testing.B) {
	reqs := benchRequests()
	for _, path := range benchPaths {
		for _, impl := range benchImpls {
			b.Run(fmt.Sprintf("path=%s/mode=parallel/impl=%s", path.name, impl.name), func(b *testing.B) {
				h, _, want := impl.prepare(b, path, reqs)
				var bad, next atomic.Int64
				b.ReportAllocs()
				b.RunParallel(func(pb *testing.PB) {
					w := &discardWriter{h: http.Header{}}
					i := int(next.Add(clients / 7)) // goroutines start at different clients
					for pb.Next() {
						clear(w.h)
						w.code = 0
						h.ServeHTTP(w, reqs[i%clients])
						if w.code != want {
							bad.Add(1)
						}
						i++
					}
				})
				if n := bad.Load(); n > 0 {
					b.Fatalf("%d of %d responses were not %d", n, b.N, want)
				}
			})
			b.Run(fmt.Sprintf("path=%s/mode=serial/impl=%s", path.name, impl.name), func(b *testing.B) {
				h, w, want := impl.prepare(b, path, reqs)
				bad := 0
				b.ReportAllocs()
				for i := 0; b.Loop(); i++ {
					clear(w.h)
					w.code = 0
					h.ServeHTTP(w, reqs[i%clients])
					if w.code != want {
						bad++
					}
				}
				if bad > 0 {
					b.Fatalf("%d of %d responses were not %d", bad, b.N, want)
				}
			})
		}
	}
}

// BenchmarkPaired measures the same five handlers as BenchmarkMiddleware,
// but interleaved: each round times 256 requests through every handler, in
// a rotating order, so that all of them see the same machine load, and it
// times them with the thread's CPU clock (see threadCPU), so that time spent
// descheduled by other processes does not count. On a shared, noisy machine
// this is what makes their overheads comparable. It reports each
// middleware's overhead over its bare handler in CPU ns per request, and the
// ratio of each to Echo's RateLimiter overhead.
//
//	go test -run '^$' -bench Paired -count 6 ./echomw | tee paired.txt
//	go run golang.org/x/perf/cmd/benchstat@latest paired.txt
func BenchmarkPaired(b *testing.B) {
	reqs := benchRequests()
	for _, path := range benchPaths {
		b.Run("path="+path.name, func(b *testing.B) {
			type prepared struct {
				h    http.Handler
				w    *discardWriter
				want int
				ns   time.Duration
				bad  int
			}
			ps := make([]*prepared, len(benchImpls))
			for i, impl := range benchImpls {
				h, w, want := impl.prepare(b, path, reqs)
				ps[i] = &prepared{h: h, w: w, want: want}
			}
			const round = 256
			n, next := 0, 0
			defer lockThread()()
			for b.Loop() {
				for k := range ps {
					p := ps[(k+n)%len(ps)]
					start := threadCPU()
					for j := range round {
						clear(p.w.h)
						p.w.code = 0
						p.h.ServeHTTP(p.w, reqs[(next+j)%clients])
						if p.w.code != p.want {
							p.bad++
						}
					}
					p.ns += threadCPU() - start
				}
				next += round
				n++
			}
			per := func(i int) float64 { return float64(ps[i].ns) / float64(n*round) }
			for i, p := range ps {
				if p.bad > 0 {
					b.Fatalf("%s: %d of %d responses were not %d", benchImpls[i].name, p.bad, n*round, p.want)
				}
			}
			// Indexes into benchImpls.
			const netBare, netMW, echoBare, echoMW, echoRL = 0, 1, 2, 3, 4
			rl := per(echoRL) - per(echoBare)
			b.ReportMetric(per(netMW)-per(netBare), "nethttpmw-ns/req")
			b.ReportMetric(per(echoMW)-per(echoBare), "echomw-ns/req")
			b.ReportMetric(rl, "echoRL-ns/req")
			b.ReportMetric((per(netMW)-per(netBare))/rl, "nethttpmw/echoRL")
			b.ReportMetric((per(echoMW)-per(echoBare))/rl, "echomw/echoRL")
		})
	}
}

const clients = 1000

func benchRequests() []*http.Request {
	reqs := make([]*http.Request, clients)
	for i := range reqs {
		r := httptest.NewRequest("GET", "/hello", nil)
		r.RemoteAddr = netip.AddrPortFrom(netip.AddrFrom4([4]byte{203, 0, byte(i >> 8), byte(i)}), uint16(40000+i)).String()
		reqs[i] = r
	}
	return reqs
}

type benchPath struct {
	name   string
	policy limiter.Policy
	want   int // status of a limited response in the steady state
}

var benchPaths = []benchPath{
	{"allowed", limiter.Policy{Rate: 1e9, Burst: 1000}, http.StatusOK},
	{"denied", limiter.Policy{Rate: 1e-3, Burst: 1}, http.StatusTooManyRequests},
}

func hello(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) }

func echoWith(m ...echo.MiddlewareFunc) http.Handler {
	e := echo.New()
	e.Use(m...)
	e.GET("/hello", func(c echo.Context) error { return c.NoContent(http.StatusOK) })
	return e
}

type benchImpl struct {
	name    string
	limited bool
	handler func(b *testing.B, p limiter.Policy) http.Handler
}

// The order matters to BenchmarkPaired.
var benchImpls = []benchImpl{
	{"nethttp-bare", false, func(*testing.B, limiter.Policy) http.Handler { return http.HandlerFunc(hello) }},
	{"nethttpmw", true, func(b *testing.B, p limiter.Policy) http.Handler {
		return nethttpmw.New(benchLimiter(b, p))(http.HandlerFunc(hello))
	}},
	{"echo-bare", false, func(*testing.B, limiter.Policy) http.Handler { return echoWith() }},
	{"echomw", true, func(b *testing.B, p limiter.Policy) http.Handler { return echoWith(New(benchLimiter(b, p))) }},
	{"echo-RateLimiter", true, func(_ *testing.B, p limiter.Policy) http.Handler {
		store := middleware.NewRateLimiterMemoryStoreWithConfig(middleware.RateLimiterMemoryStoreConfig{
			Rate: p.Rate, Burst: p.Burst, ExpiresIn: time.Hour,
		})
		return echoWith(middleware.RateLimiter(store))
	}},
}

// prepare builds the handler for path, shows it every client once (the
// steady state is measured), and returns it with a writer and the status
// every timed response must have.
func (impl benchImpl) prepare(b *testing.B, path benchPath, reqs []*http.Request) (http.Handler, *discardWriter, int) {
	h := impl.handler(b, path.policy)
	w := &discardWriter{h: http.Header{}}
	for _, r := range reqs {
		clear(w.h)
		h.ServeHTTP(w, r)
	}
	if impl.limited {
		return h, w, path.want
	}
	return h, w, http.StatusOK
}

func benchLimiter(b *testing.B, p limiter.Policy) *limiter.Limiter {
	l, err := limiter.New(p)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { l.Close() })
	return l
}

// discardWriter is a ResponseWriter that keeps only its header map and
// status, the same for every implementation.
type discardWriter struct {
	h    http.Header
	code int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *discardWriter) WriteHeader(code int)        { w.code = code }
