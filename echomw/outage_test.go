package echomw_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/floodgate-go/floodgate/echomw"
	"github.com/floodgate-go/floodgate/internal/storetesting"
	"github.com/floodgate-go/floodgate/limiter"
	"github.com/floodgate-go/floodgate/store"
)

// With its Store down, the failure mode's decision is applied, as in
// nethttpmw: failing open limits locally, failing closed denies.
func TestStoreOutageFollowsTheFailureMode(t *testing.T) {
	for _, tc := range []struct {
		mode string
		want []int
	}{
		{"fail open", []int{200, 200, 429}},
		{"fail closed", []int{429, 429}},
	} {
		l, err := limiter.New(limiter.PerMinute(2), limiter.WithStore(store.Config{Store: storetesting.Down{}, FailClosed: tc.mode == "fail closed"}))
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		e := echo.New()
		e.Use(echomw.New(l))
		e.GET("/", func(c echo.Context) error { return c.NoContent(http.StatusOK) })
		for i, want := range tc.want {
			rec := httptest.NewRecorder()
			e.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
			if rec.Code != want || rec.Header().Get("RateLimit") == "" {
				t.Errorf("mode %v, request %d: status %d, RateLimit %q; want %d with the field", tc.mode, i, rec.Code, rec.Header().Get("RateLimit"), want)
			}
		}
	}
}
