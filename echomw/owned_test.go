package echomw

import (
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"

	"github.com/labstack/echo/v4"

	"github.com/floodgate-go/floodgate/limiter"
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
