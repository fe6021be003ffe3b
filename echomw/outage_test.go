package echomw_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/floodgate-go/floodgate/echomw"
	"github.com/floodgate-go/floodgate/internal/storetesting"
	"github.com/floodgate-go/floodgate/limiter"
)

// With its Store down, the FailureMode's decision is applied, as in
// nethttpmw: FailOpen limits locally, FailClosed denies.
func TestStoreOutageFollowsTheFailureMode(t *testing.T) {
	for _, tc := range []struct {
		mode limiter.FailureMode
		want []int
	}{
		{limiter.FailOpen, []int{200, 200, 429}},
		{limiter.FailClosed, []int{429, 429}},
	} {
		l, err := limiter.New(limiter.PerMinute(2), limiter.WithStore(storetesting.Down{}), limiter.WithFailureMode(tc.mode))
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
