package bench

import (
	"github.com/labstack/echo/v4/middleware"
	"golang.org/x/time/rate"
)

var echoImpl = Impl{
	Name:      "echo",
	Library:   "github.com/labstack/echo/v4 v4.16.0, middleware.RateLimiterMemoryStore",
	Algorithm: "token bucket (x/time/rate.Limiter per key)",
	Cap:       "none",
	Cleanup:   "on a request, at most every ExpiresIn (default 3 min), deletes keys not seen for ExpiresIn, whatever their bucket holds",
	Notes:     "one store-wide mutex around every decision",
	New:       newEcho,
}

type echoLimiter struct {
	s *middleware.RateLimiterMemoryStore
}

func newEcho(c Config) (Limiter, error) {
	s := middleware.NewRateLimiterMemoryStoreWithConfig(middleware.RateLimiterMemoryStoreConfig{
		Rate:      rate.Limit(c.Rate),
		Burst:     c.Burst,
		ExpiresIn: c.Cleanup, // 0 selects the default
	})
	return echoLimiter{s}, nil
}

func (e echoLimiter) Allow(key string) bool {
	ok, err := e.s.Allow(key)
	return err == nil && ok
}

// Close does nothing: the store has no goroutine and no Close.
func (e echoLimiter) Close() {}
