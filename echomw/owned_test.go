package echomw

import (
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"

	"github.com/labstack/echo/v4"

	"github.com/floodgate-go/floodgate/limiter"
	"github.com/floodgate-go/floodgate/nethttpmw"
)

// editInPlace overwrites every header value of a response in place, as a
// handler or a later middleware may: the values are the response's own.
func editInPlace(h http.Header) (edited int) {
	for _, vs := range h {
		for i := range vs {
			if strings.Contains(vs[i], "edited") {
				edited++
			}
			vs[i] = "edited"
		}
	}
	return edited
}

// TestHeadersOwnedByResponse: editing one response's header values in
// place changes nothing in a later response, admitted or denied.
func TestHeadersOwnedByResponse(t *testing.T) {
	for _, tt := range []struct {
		name string
		p    limiter.Policy
		code int
	}{
		{"allowed", limiter.PerSecond(1000), 200},
		{"denied", limiter.Policy{Rate: 1e-3, Burst: 1}, 429},
	} {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				e := newEcho(New(newLimiter(t, tt.p)))
				serve(e, get("192.0.2.1:1")) // spends the burst of 1
				for i := range 3 {
					w := serve(e, get("192.0.2.1:1"))
					if w.Code != tt.code {
						t.Fatalf("response %d: %d, want %d", i, w.Code, tt.code)
					}
					if n := editInPlace(w.Header()); n > 0 {
						t.Fatalf("response %d: %d values carried an earlier response's in-place edit: %v", i, n, w.Header())
					}
				}
			})
		})
	}
}

// TestHeadersOwnedAcrossResponses: responses that are all still alive do
// not share header values, on the allowed path and on the denial written
// directly (with Content-Type): every other response's values are edited in
// place and appended to, and the responses between them keep exactly the
// values they were given.
func TestHeadersOwnedAcrossResponses(t *testing.T) {
	for _, tt := range []struct {
		name string
		p    limiter.Policy
		opts []nethttpmw.Option
	}{
		{"allowed", limiter.PerSecond(1000), nil},
		{"allowed recent values", limiter.Policy{Rate: 1e9, Burst: 1_000_000}, nil},
		{"denied", limiter.Policy{Rate: 1e-3, Burst: 1}, nil},
		{"denied legacy problem", limiter.Policy{Rate: 1e-3, Burst: 1}, []nethttpmw.Option{nethttpmw.WithLegacyHeaders(), nethttpmw.WithProblemDetails()}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEcho(New(newLimiter(t, tt.p), tt.opts...))
			var hs, want []http.Header
			for range 200 { // more than a block of values holds
				h := serve(e, get("192.0.2.1:1")).Header()
				hs, want = append(hs, h), append(want, h.Clone())
			}
			for i := 0; i < len(hs); i += 2 {
				for k, vs := range hs[i] {
					editInPlace(http.Header{k: vs})
					hs[i][k] = append(vs, "appended")
				}
			}
			for i := 1; i < len(hs); i += 2 {
				if !maps.EqualFunc(hs[i], want[i], slices.Equal) {
					t.Fatalf("response %d: %q, want %q: its neighbours' edits and appends leaked into it", i, hs[i], want[i])
				}
			}
		})
	}
}

// TestHeadersConcurrentEdits: handlers that edit their responses' header
// values in place while other requests are served do not race (run with
// -race) and never see each other's edits.
func TestHeadersConcurrentEdits(t *testing.T) {
	var leaked atomic.Int64
	e := echo.New()
	e.Use(New(newLimiter(t, limiter.PerSecond(1000))))
	e.GET("/", func(c echo.Context) error {
		leaked.Add(int64(editInPlace(c.Response().Header())))
		return c.NoContent(http.StatusOK)
	})
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for range 200 {
				serve(e, get("192.0.2."+string(rune('1'+g))+":1"))
			}
		})
	}
	wg.Wait()
	if n := leaked.Load(); n > 0 {
		t.Fatalf("%d header values carried another response's in-place edit", n)
	}
}

// TestNethttpmwOptions: New takes nethttpmw's options as they are, and the
// ones that decide or respond (skip, key, cost, denied and error handlers)
// act through Echo as through net/http.
func TestNethttpmwOptions(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLimiter(t, limiter.Policy{Rate: 1e-3, Burst: 2})
		e := newEcho(New(l,
			nethttpmw.WithSkip(func(r *http.Request) bool { return r.URL.Path == "/healthz" }),
			nethttpmw.WithKeyFunc(func(r *http.Request) (string, error) { return r.Header.Get("X-Key"), nil }),
			nethttpmw.WithCost(func(*http.Request) int { return 2 }),
			nethttpmw.WithDeniedHandler(func(w http.ResponseWriter, _ *http.Request, _ limiter.Decision) { w.WriteHeader(http.StatusTeapot) }),
		))
		for range 3 {
			if w := serve(e, httptest.NewRequest("GET", "/healthz", nil)); w.Code != 200 || w.Header().Get("RateLimit") != "" {
				t.Fatalf("skipped: %d %v", w.Code, w.Header())
			}
		}
		r := get("192.0.2.1:1")
		r.Header.Set("X-Key", "a")
		if w := serve(e, r); w.Code != 200 || !strings.Contains(w.Header().Get("RateLimit"), "r=0") {
			t.Fatalf("first request of cost 2: %d %v", w.Code, w.Header())
		}
		r = get("192.0.2.2:1") // another address, the same key
		r.Header.Set("X-Key", "a")
		if w := serve(e, r); w.Code != http.StatusTeapot {
			t.Fatalf("denied with nethttpmw.WithDeniedHandler: %d, want 418", w.Code)
		}
		l.Close()
		e = newEcho(New(l, nethttpmw.WithErrorHandler(func(w http.ResponseWriter, _ *http.Request, err error) { w.WriteHeader(599) })))
		if w := serve(e, get("192.0.2.1:1")); w.Code != 599 {
			t.Fatalf("closed limiter with nethttpmw.WithErrorHandler: %d, want 599", w.Code)
		}
	})
}
