package bench

import (
	"net/http"

	"github.com/go-chi/httprate"
)

var httprateImpl = Impl{
	Name:      "httprate",
	Library:   "github.com/go-chi/httprate v0.16.1, local counter",
	Algorithm: "sliding window counter (estimate from two fixed windows of Burst/Rate seconds)",
	Cap:       "none, but only the current and previous windows are kept",
	Cleanup:   "both windows' counters are dropped as windows pass",
	Notes: "keys are stored as 64-bit xxh3 hashes, so colliding keys share a counter; " +
		"one limiter-wide mutex around every decision; decided with RateLimiter.OnLimit " +
		"(its only non-HTTP entry point) with response headers disabled and a reused request",
	New: newHTTPRate,
}

type httprateLimiter struct {
	l   *httprate.RateLimiter
	req *http.Request
}

func newHTTPRate(c Config) (Limiter, error) {
	l := httprate.NewRateLimiter(c.Burst, c.Window(), httprate.WithResponseHeaders(httprate.ResponseHeaders{}))
	req, err := http.NewRequest(http.MethodGet, "/", nil)
	if err != nil {
		return nil, err
	}
	return httprateLimiter{l, req}, nil
}

func (h httprateLimiter) Allow(key string) bool {
	// With every header name empty, OnLimit never touches the writer.
	return !h.l.OnLimit(noWriter{}, h.req, key)
}

// Close does nothing: the local counter has no goroutine.
func (h httprateLimiter) Close() {}

// noWriter is an http.ResponseWriter that must never be written to.
type noWriter struct{}

func (noWriter) Header() http.Header        { panic("bench: httprate wrote a header") }
func (noWriter) Write([]byte) (int, error)  { panic("bench: httprate wrote a body") }
func (noWriter) WriteHeader(statusCode int) { panic("bench: httprate wrote a status") }
