package nethttpmw_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/floodgate-go/floodgate/internal/storetesting"
	"github.com/floodgate-go/floodgate/limiter"
	"github.com/floodgate-go/floodgate/nethttpmw"
	"github.com/floodgate-go/floodgate/store"
)

// With its Store down, the limiter's failure mode decides, and the
// middleware applies that decision: failing open limits with the instance's own
// buckets, failing closed denies; neither leaks the error.
func TestStoreOutageFollowsTheFailureMode(t *testing.T) {
	for _, tc := range []struct {
		mode string
		want []int
	}{
		{"fail open", []int{200, 200, 429}},
		{"fail closed", []int{429, 429, 429}},
	} {
		l, err := limiter.New(limiter.PerMinute(2), limiter.WithStore(store.Config{Store: storetesting.Down{}, FailClosed: tc.mode == "fail closed"}))
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		h := nethttpmw.New(l)(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
		for i, want := range tc.want {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
			if rec.Code != want {
				t.Errorf("mode %v, request %d: status %d, want %d", tc.mode, i, rec.Code, want)
			}
			if rec.Header().Get("RateLimit") == "" {
				t.Errorf("mode %v, request %d: no RateLimit field", tc.mode, i)
			}
			if want == 429 && rec.Header().Get("Retry-After") == "" {
				t.Errorf("mode %v, request %d: 429 without Retry-After", tc.mode, i)
			}
			if body := rec.Body.String(); len(body) > 0 && (strings.Contains(body, "refused") || strings.Contains(body, "store")) {
				t.Errorf("mode %v: the error leaked to the client: %q", tc.mode, body)
			}
		}
	}
}
