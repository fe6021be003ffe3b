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
// on that to bound the time a request can wait (see [WithStoreTimeout]).
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
	// policy's Rate (see [WithPrefetch]). Hold is (Burst − level + Cost) /
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
// the [FailureMode] does, and the Decision says so (Decision.Fallback).
var ErrStoreUnavailable = errors.New("limiter: store unavailable")

// A FailureMode says what a Limiter with a Store decides when the Store
// cannot (see [WithFailureMode]).
type FailureMode int

const (
	// FailOpen decides with per-instance local buckets (a share of the
	// policy, see [WithLocalShare]) while the Store is unavailable. Clients
	// stay limited, per instance instead of globally.
	FailOpen FailureMode = iota
	// FailClosed denies every request that the Store cannot decide.
	FailClosed
)

// String returns "FailOpen" or "FailClosed".
func (m FailureMode) String() string {
	switch m {
	case FailOpen:
		return "FailOpen"
	case FailClosed:
		return "FailClosed"
	}
	return fmt.Sprintf("FailureMode(%d)", int(m))
}

// Defaults for the Store options.
const (
	// DefaultStoreTimeout bounds each Store call. A local Redis answers in
	// well under a millisecond; 100 ms leaves room for a remote one and a
	// slow moment without letting an outage stall requests for long.
	DefaultStoreTimeout = 100 * time.Millisecond
	// DefaultBreakerFailures is how many consecutive Store failures open
	// the circuit breaker.
	DefaultBreakerFailures = 5
	// DefaultBreakerCooldown is how long the breaker stays open before it
	// lets one probe request through to the Store.
	DefaultBreakerCooldown = time.Second
	// DefaultLocalShare is the share of the policy each instance enforces
	// on its own while failing open: the whole policy.
	DefaultLocalShare = 1.0
)

type remoteConfig struct {
	store    Store
	mode     FailureMode
	timeout  time.Duration
	failures int
	cooldown time.Duration
	share    float64
	prefetch int
}

func defaultRemoteConfig() remoteConfig {
	return remoteConfig{
		mode:     FailOpen,
		timeout:  DefaultStoreTimeout,
		failures: DefaultBreakerFailures,
		cooldown: DefaultBreakerCooldown,
		share:    DefaultLocalShare,
	}
}

// WithStore makes the Limiter decide through s, shared with other Limiters
// (typically one per instance of a service), instead of in local buckets
// (default: none, every decision is local). See [Store], and package
// [github.com/floodgate-go/floodgate/store] for the Redis store and what a
// Limiter with a Store guarantees when Redis fails. All Limiters sharing a
// Store must use the same Policy, or distinct key namespaces.
//
// With a Store, a decision made by the [FailureMode] instead of the Store
// has Decision.Fallback set. The deny cache, prefetch leases and
// fail-open buckets each hold at most MaxKeys keys.
func WithStore(s Store) Option {
	return func(c *config) error {
		if s == nil {
			return fmt.Errorf("%w: WithStore(nil)", ErrInvalidOption)
		}
		c.remote.store = s
		return nil
	}
}

// WithFailureMode sets what happens while the Store cannot decide (default
// FailOpen). It only matters with [WithStore].
func WithFailureMode(m FailureMode) Option {
	return func(c *config) error {
		if m != FailOpen && m != FailClosed {
			return fmt.Errorf("%w: WithFailureMode(%v)", ErrInvalidOption, m)
		}
		c.remote.mode = m
		return nil
	}
}

// WithStoreTimeout bounds each Store call to d (default
// DefaultStoreTimeout). A call that takes longer counts as a failure. d
// must be positive.
func WithStoreTimeout(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return fmt.Errorf("%w: WithStoreTimeout(%v): must be positive", ErrInvalidOption, d)
		}
		c.remote.timeout = d
		return nil
	}
}

// WithBreaker sets the circuit breaker in front of the Store: it opens
// after failures consecutive failed calls (default
// DefaultBreakerFailures), then for cooldown (default
// DefaultBreakerCooldown) decides without calling the Store, then lets one
// probe call through; a successful probe closes it, a failed one reopens it
// for another cooldown. failures must be at least 1 and cooldown positive.
func WithBreaker(failures int, cooldown time.Duration) Option {
	return func(c *config) error {
		if failures < 1 || cooldown <= 0 {
			return fmt.Errorf("%w: WithBreaker(%d, %v): need failures >= 1 and a positive cooldown",
				ErrInvalidOption, failures, cooldown)
		}
		c.remote.failures, c.remote.cooldown = failures, cooldown
		return nil
	}
}

// WithLocalShare sets the share of the policy that each instance enforces
// locally while failing open (default DefaultLocalShare). With N instances,
// a share of 1/N keeps the global limit close to the policy during an
// outage. The local policy is Rate×share and Burst×share rounded down, at
// least 1. share must be in (0, 1].
func WithLocalShare(share float64) Option {
	return func(c *config) error {
		if !(share > 0 && share <= 1) {
			return fmt.Errorf("%w: WithLocalShare(%v): must be in (0, 1]", ErrInvalidOption, share)
		}
		c.remote.share = share
		return nil
	}
}

// WithPrefetch lets the Limiter take up to n extra tokens from the Store in
// the same round trip when a key is hot, and spend them locally (default 0:
// no prefetch). A key is hot when this instance made a round trip for it
// within the time the policy takes to refill n+1 tokens.
//
// Prefetched tokens are never returned: tokens a client does not spend are
// lost, which can under-admit a little; nothing is ever spent twice. So that
// no interval can over-admit, an instance holds prefetched tokens for a
// limited time: in full for the StoreResult.Hold the Store reported (the
// time the bucket needs to refill what the request found missing), then
// lapsing at the policy's Rate. Seen globally, the tokens held by instances
// plus the tokens in the Store then never exceed Burst, so admissions in
// any interval T stay within Burst + Rate×T. n must be in [0, 1000].
func WithPrefetch(n int) Option {
	return func(c *config) error {
		if n < 0 || n > 1000 {
			return fmt.Errorf("%w: WithPrefetch(%d): must be in [0, 1000]", ErrInvalidOption, n)
		}
		c.remote.prefetch = n
		return nil
	}
}

// localPolicy is p scaled by share for the fail-open buckets.
func localPolicy(p Policy, share float64) Policy {
	burst := int(math.Floor(float64(p.Burst) * share))
	return Policy{Rate: p.Rate * rate.Limit(share), Burst: max(burst, 1)}
}
