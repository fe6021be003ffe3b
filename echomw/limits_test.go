package echomw

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"testing/synctest"

	"github.com/labstack/echo/v4"

	"github.com/floodgate-go/floodgate/limiter"
	"github.com/floodgate-go/floodgate/nethttpmw"
)

// TestLimitsEcho runs the per-request limits through Echo: an Echo group
// for POST /auth/login at 5/min per IP, the API group at 100/s per IP with
// an API key's plan on top (nethttpmw.WithLimits), so no route is charged
// twice and a denial costs nothing on the limit that admitted it.
func TestLimitsEcho(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		general, login, pro := newLimiter(t, limiter.PerSecond(100)), newLimiter(t, limiter.PerMinute(5)), newLimiter(t, limiter.PerMinute(3))
		plan := nethttpmw.WithLimits(func(r *http.Request, client string) []limiter.Limit {
			perIP := limiter.Limit{Name: "per-ip", Limiter: general, Key: client}
			if k := r.Header.Get("X-API-Key"); k == "k-pro" {
				return []limiter.Limit{perIP, {Name: "pro", Limiter: pro, Key: k}}
			}
			return nil
		})
		e := echo.New()
		ok := func(c echo.Context) error { return c.String(http.StatusOK, "ok") }
		e.Group("/auth", New(login)).POST("/login", ok)
		e.Group("/api", New(general, plan)).GET("/items", ok)
		do := func(method, path, key string) *httptest.ResponseRecorder {
			r := httptest.NewRequest(method, path, nil)
			r.RemoteAddr = "192.0.2.1:1"
			if key != "" {
				r.Header.Set("X-API-Key", key)
			}
			w := httptest.NewRecorder()
			e.ServeHTTP(w, r)
			return w
		}
		for i := range 6 {
			if w := do("POST", "/auth/login", ""); (i < 5) != (w.Code == 200) {
				t.Fatalf("login %d: %d", i, w.Code)
			}
		}
		codes := []int{}
		for range 4 {
			codes = append(codes, do("GET", "/api/items", "k-pro").Code)
		}
		if codes[2] != 200 || codes[3] != 429 {
			t.Fatalf("pro key: %v, want 3 admitted then 429", codes)
		}
		w := do("GET", "/api/items", "")
		if w.Code != 200 || w.Header().Get("RateLimit") != `"default";r=96;t=1` {
			t.Fatalf("anonymous after 3 admitted pro requests and 1 denied: %d %q; want r=96 (login's requests and the denial cost nothing here)",
				w.Code, w.Header().Get("RateLimit"))
		}
		if got := do("GET", "/api/items", "k-pro").Header().Values("RateLimit-Policy"); len(got) != 2 || got[1] != `"pro";q=3;w=60` {
			t.Fatalf("pro's fields: %q", got)
		}
	})
}
