package bench

import (
	"context"
	"time"

	"github.com/throttled/throttled/v2"
	"github.com/throttled/throttled/v2/store/memstore"
)

var throttledImpl = Impl{
	Name:      "throttled",
	Library:   "github.com/throttled/throttled/v2 v2.15.0, store/memstore",
	Algorithm: "GCRA (equivalent to a token bucket of Burst at Rate)",
	Cap:       "LRU of maxKeys (no default: given Config.MaxKeys, else 2^20); evicting a key forgets what it spent",
	Cleanup:   "none besides LRU eviction",
	Notes:     "MaxBurst = Burst-1 (throttled admits MaxBurst+1 at once); a compare-and-swap that fails 10 times returns an error, counted as a denial",
	New:       newThrottled,
}

// throttledDefaultKeys is the LRU size used when Config.MaxKeys is 0:
// memstore has no default, so it gets floodgate's.
const throttledDefaultKeys = 1 << 20

type throttledLimiter struct{ l *throttled.GCRARateLimiterCtx }

func newThrottled(c Config) (Limiter, error) {
	maxKeys := c.MaxKeys
	if maxKeys == 0 {
		maxKeys = throttledDefaultKeys
	}
	st, err := memstore.NewCtx(maxKeys)
	if err != nil {
		return nil, err
	}
	period := time.Duration(float64(time.Second) / c.Rate)
	l, err := throttled.NewGCRARateLimiterCtx(st, throttled.RateQuota{
		MaxRate:  throttled.PerDuration(1, period),
		MaxBurst: c.Burst - 1,
	})
	if err != nil {
		return nil, err
	}
	return throttledLimiter{l}, nil
}

func (t throttledLimiter) Allow(key string) bool {
	limited, _, err := t.l.RateLimitCtx(context.Background(), key, 1)
	return err == nil && !limited
}

// Close does nothing: memstore has no goroutine.
func (t throttledLimiter) Close() {}
