package limiter

import (
	"fmt"
	"math"
	"time"

	"golang.org/x/time/rate"

	"github.com/floodgate-go/floodgate/store"
)

// Defaults for the zero fields of a store.Config.
const (
	defaultStoreTimeout    = 100 * time.Millisecond
	defaultBreakerFailures = 5
	defaultBreakerCooldown = time.Second
)

type remoteConfig struct {
	store      store.Store
	failClosed bool
	timeout    time.Duration
	failures   int
	cooldown   time.Duration
	share      float64
	prefetch   int
}

// WithStore makes the Limiter decide through c.Store, a remote tier shared
// with other Limiters, instead of in local buckets (default: no Store,
// every decision is local). [store.Config] says what the Limiter does when
// the Store cannot decide, and package store what the Limiter guarantees
// with one. The deny cache, prefetch leases and fail-open buckets each
// hold at most MaxKeys keys. An invalid Config is an error wrapping
// ErrInvalidOption.
func WithStore(c store.Config) Option {
	return func(cfg *config) error {
		rc, err := resolve(c)
		if err != nil {
			return err
		}
		cfg.remote = rc
		return nil
	}
}

// resolve checks c and fills in the defaults.
func resolve(c store.Config) (remoteConfig, error) {
	switch {
	case c.Store == nil:
		return remoteConfig{}, fmt.Errorf("%w: store.Config.Store is nil", ErrInvalidOption)
	case c.Timeout < 0 || c.BreakerFailures < 0 || c.BreakerCooldown < 0:
		return remoteConfig{}, fmt.Errorf("%w: store.Config Timeout %v, BreakerFailures %d, BreakerCooldown %v: none may be negative",
			ErrInvalidOption, c.Timeout, c.BreakerFailures, c.BreakerCooldown)
	case !(c.LocalShare >= 0 && c.LocalShare <= 1):
		return remoteConfig{}, fmt.Errorf("%w: store.Config.LocalShare %v: must be in (0, 1]", ErrInvalidOption, c.LocalShare)
	case c.Prefetch < 0 || c.Prefetch > 1000:
		return remoteConfig{}, fmt.Errorf("%w: store.Config.Prefetch %d: must be in [0, 1000]", ErrInvalidOption, c.Prefetch)
	}
	or := func(v, def time.Duration) time.Duration {
		if v == 0 {
			return def
		}
		return v
	}
	rc := remoteConfig{store: c.Store, failClosed: c.FailClosed, timeout: or(c.Timeout, defaultStoreTimeout),
		failures: c.BreakerFailures, cooldown: or(c.BreakerCooldown, defaultBreakerCooldown), share: c.LocalShare, prefetch: c.Prefetch}
	if rc.failures == 0 {
		rc.failures = defaultBreakerFailures
	}
	if rc.share == 0 {
		rc.share = 1
	}
	return rc, nil
}

// localPolicy is p scaled by share for the fail-open buckets.
func localPolicy(p Policy, share float64) Policy {
	burst := int(math.Floor(float64(p.Burst) * share))
	return Policy{Rate: p.Rate * rate.Limit(share), Burst: max(burst, 1)}
}
