package limiter

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"golang.org/x/time/rate"
)

// A Store is a remote tier that keeps one token bucket per key for many
// Limiters at once (several instances of a service), so that a key's limit
// holds across all of them. Package
// [github.com/floodgate-go/floodgate/store] has the Redis implementation.
//
// Concurrency contract: a Store's methods are safe for concurrent use, from
// any number of goroutines and processes. Each Take is atomic with respect to
// every other Take and Reset on the same key, wherever it runs, and uses the
// store's own clock, never the caller's. Take and Reset must return promptly
// (with ctx's error, possibly wrapped) once ctx is done; the Limiter relies
// on that to bound the time a request can wait (see [StoreConfig].Timeout).
type Store interface {
	// Take applies one request to key's bucket with the semantics of
	// rate.Limiter.AllowN at the store's current time: if the bucket holds
	// req.Cost tokens (under rate.Limiter's rule), it takes them and, if
	// req.Extra > 0, also takes up to req.Extra more whole tokens that the
	// bucket holds beyond the cost (a prefetch). A key never seen before, or
	// idle long enough to refill, has a full bucket.
	//
	// The error is non-nil when the store could not decide (unreachable,
	// timed out, corrupt state); the result is then meaningless.
	Take(ctx context.Context, key string, req StoreRequest) (StoreResult, error)
	// Reset deletes key's bucket: its next request starts with a full one.
	Reset(ctx context.Context, key string) error
	// Refund gives back the tokens of an admitted request that did not go
	// ahead (see AllowAll); at is the StoreResult.At of the Take that took
	// them. It gives back req.Cost less what the policy refills between at
	// and the refund (nothing before at), on the store's clock, capped at
	// Burst: tokens the bucket may have regained on its own are not given
	// twice, so a refund never lets any interval exceed Burst + Rate×T,
	// however late it comes. A key with no bucket is full already and is
	// left as it is. req.Extra is ignored.
	Refund(ctx context.Context, key string, req StoreRequest, at int64) error
}

// A StoreRequest is one decision asked of a [Store].
type StoreRequest struct {
	Policy Policy // the bucket's shape; the same for every request on a key
	Cost   int    // tokens the request needs, in [1, Policy.Burst]
	Extra  int    // whole tokens to take in addition, if available (0: none)
}

// A StoreResult is a [Store]'s answer to a [StoreRequest].
type StoreResult struct {
	// Decision is the outcome for the request's Cost. Remaining counts the
	// tokens left after Cost and Extra were taken.
	Decision Decision
	// Extra is the number of extra tokens taken: 0 when denied, otherwise
	// at most the request's Extra.
	Extra int
	// Hold is how long the Extra tokens may be spent in full, measured from
	// the moment the request was sent. After Hold they lapse at the
	// policy's Rate (see [StoreConfig].Prefetch). Hold is (Burst − level + Cost) /
	// Rate, where level is the bucket's level just before the request,
	// rounded down.
	Hold time.Duration
	// At is, for an admission, the time on the store's clock before which
	// the bucket could not have been full again had the take not happened
	// (the decision's time plus (Burst − level before it) / Rate, rounded
	// down), in the store's own unit (microseconds of Redis TIME for the
	// Redis store). The Limiter hands it back to Refund.
	At int64
}

// ErrStoreUnavailable is wrapped by Reset's error when the Store failed or
// timed out. Decisions never come with it: when the Store cannot decide,
// the failure mode ([StoreConfig].FailClosed) does, and the Decision says so (Decision.Fallback).
var ErrStoreUnavailable = errors.New("limiter: store unavailable")

// StoreConfig puts a Limiter's buckets in a [Store] shared with other
// Limiters (typically one per instance of a service), and says what the
// Limiter does when the Store cannot decide. Each zero field means the
// default written on it.
type StoreConfig struct {
	// Store keeps the buckets. Required. Package
	// [github.com/floodgate-go/floodgate/store] has the Redis Store. All
	// Limiters sharing a Store must use the same Policy, or distinct key
	// namespaces.
	Store Store

	// FailClosed makes the Limiter deny every request the Store cannot
	// decide (it failed, timed out, or the breaker is open), with
	// RetryAfter the rest of the breaker's cooldown. By default (false) it
	// fails open: it decides with per-instance local buckets enforcing
	// LocalShare of the policy, so clients stay limited, per instance
	// instead of globally. Either way the Decision says so
	// (Decision.Fallback), and there is no error.
	FailClosed bool

	// Timeout bounds the whole wait for the Store per decision (waits for
	// another request's prefetch included); a call that takes longer
	// counts as a failure. Default 100 ms: a local Redis answers in well
	// under a millisecond; 100 ms leaves room for a remote one without
	// letting an outage stall requests for long.
	Timeout time.Duration

	// BreakerFailures consecutive failed calls open the circuit breaker
	// (default 5); it then decides without calling the Store for
	// BreakerCooldown (default 1 s), then lets one probe call through; a
	// successful probe closes it, a failed one reopens it.
	BreakerFailures int
	BreakerCooldown time.Duration

	// LocalShare is the share of the policy each instance enforces on its
	// own while failing open, in (0, 1] (default 1, the whole policy). With
	// N instances, 1/N keeps the global limit close to the policy during an
	// outage. The local policy is Rate×share and Burst×share rounded down,
	// at least 1.
	LocalShare float64

	// Prefetch lets a hot key take up to this many extra tokens from the
	// Store in the same round trip and spend them locally, in [0, 1000]
	// (default 0: no prefetch). A key is hot when this instance made a
	// round trip for it within the time the policy takes to refill
	// Prefetch+1 tokens. Prefetched tokens are never returned: tokens a
	// client does not spend are lost, which can under-admit a little;
	// nothing is ever spent twice. So that no interval can over-admit, an
	// instance holds them for a limited time: in full for the
	// StoreResult.Hold the Store reported, then lapsing at the policy's
	// Rate. Seen globally, the tokens held by instances plus the tokens in
	// the Store then never exceed Burst, so admissions in any interval T
	// stay within Burst + Rate×T. SetPolicy drops every prefetched token.
	Prefetch int
}

// Defaults for the zero fields of a StoreConfig.
const (
	defaultStoreTimeout    = 100 * time.Millisecond
	defaultBreakerFailures = 5
	defaultBreakerCooldown = time.Second
)

type remoteConfig struct {
	store      Store
	failClosed bool
	timeout    time.Duration
	failures   int
	cooldown   time.Duration
	share      float64
	prefetch   int
}

// WithStore makes the Limiter decide through c.Store instead of in local
// buckets (default: no Store, every decision is local). See [StoreConfig]
// and [Store]. The deny cache, prefetch leases and fail-open buckets each
// hold at most MaxKeys keys. An invalid StoreConfig is an error wrapping
// ErrInvalidOption.
func WithStore(c StoreConfig) Option {
	return func(cfg *config) error {
		rc, err := c.resolve()
		if err != nil {
			return err
		}
		cfg.remote = rc
		return nil
	}
}

// resolve checks c and fills in the defaults.
func (c StoreConfig) resolve() (remoteConfig, error) {
	switch {
	case c.Store == nil:
		return remoteConfig{}, fmt.Errorf("%w: StoreConfig.Store is nil", ErrInvalidOption)
	case c.Timeout < 0 || c.BreakerFailures < 0 || c.BreakerCooldown < 0:
		return remoteConfig{}, fmt.Errorf("%w: StoreConfig Timeout %v, BreakerFailures %d, BreakerCooldown %v: none may be negative",
			ErrInvalidOption, c.Timeout, c.BreakerFailures, c.BreakerCooldown)
	case !(c.LocalShare >= 0 && c.LocalShare <= 1):
		return remoteConfig{}, fmt.Errorf("%w: StoreConfig.LocalShare %v: must be in (0, 1]", ErrInvalidOption, c.LocalShare)
	case c.Prefetch < 0 || c.Prefetch > 1000:
		return remoteConfig{}, fmt.Errorf("%w: StoreConfig.Prefetch %d: must be in [0, 1000]", ErrInvalidOption, c.Prefetch)
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
