package echomw

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"github.com/floodgate-go/floodgate/limiter"
	"github.com/floodgate-go/floodgate/nethttpmw"
)

// BenchmarkMiddleware measures the middleware overhead over a bare handler,
// for net/http and Echo, against Echo's own middleware.RateLimiter with the
// same policy. Requests come from 1,000 clients (RemoteAddr), and every
// client has been seen before the timer starts, so the steady state is
// measured. Each benchmark checks its workload: on the allowed path every
// response must be 200, on the denied path every limited response 429.
//
//	go test -run '^$' -bench Middleware -count 6 ./echomw | tee new.txt
//	go run golang.org/x/perf/cmd/benchstat@latest -col /impl new.txt
func BenchmarkMiddleware(b *testing.B) {
	const clients = 1000
	reqs := make([]*http.Request, clients)
	for i := range reqs {
		r := httptest.NewRequest("GET", "/hello", nil)
		r.RemoteAddr = netip.AddrPortFrom(netip.AddrFrom4([4]byte{203, 0, byte(i >> 8), byte(i)}), uint16(40000+i)).String()
		reqs[i] = r
	}
	paths := []struct {
		name   string
		policy limiter.Policy
		want   int // status of a limited response in the steady state
	}{
		{"allowed", limiter.Policy{Rate: 1e9, Burst: 1000}, http.StatusOK},
		{"denied", limiter.Policy{Rate: 1e-3, Burst: 1}, http.StatusTooManyRequests},
	}
	hello := func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) }
	echoHello := func(c echo.Context) error { return c.NoContent(http.StatusOK) }
	echoWith := func(m ...echo.MiddlewareFunc) http.Handler {
		e := echo.New()
		e.Use(m...)
		e.GET("/hello", echoHello)
		return e
	}
	impls := []struct {
		name    string
		limited bool
		handler func(b *testing.B, p limiter.Policy) http.Handler
	}{
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
	for _, path := range paths {
		for _, impl := range impls {
			b.Run(fmt.Sprintf("path=%s/impl=%s", path.name, impl.name), func(b *testing.B) {
				h := impl.handler(b, path.policy)
				w := &discardWriter{h: http.Header{}}
				for _, r := range reqs { // every client is known: the steady state
					clear(w.h)
					h.ServeHTTP(w, r)
				}
				want := http.StatusOK
				if impl.limited {
					want = path.want
				}
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
