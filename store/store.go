// Package store is the contract between a Limiter and a remote tier that
// keeps each key's token bucket where every instance of a service can see
// it, so that a limit holds across instances: the [Store] interface a
// remote tier implements, the [Config] that puts one behind a Limiter (see
// limiter.WithStore), and the [Stats] a Limiter reports about it.
//
// The package has no dependencies beyond golang.org/x/time/rate, so a
// Limiter that never uses a remote tier links no client library, in the
// way database/sql/driver separates a driver's contract from its drivers.
// Package [github.com/floodgate-go/floodgate/store/redisstore] is the Redis
// implementation; package [github.com/floodgate-go/floodgate/store/storetest]
// is the conformance suite every Store passes.
//
// # What a Limiter with a Store guarantees
//
// In front of the Store, the Limiter keeps three things per instance, none
// of which can make it more lenient than the Store:
//
//   - A deny cache: once the Store denies a key (or admits the request that
//     spent its last token), the instance answers that key locally until
//     the moment the Store would next admit it, measured from when the
//     request was sent. A flooding client costs about one round trip per
//     retry window and instance, not one per request.
//   - Prefetch leases ([Config].Prefetch): for a key this instance alone
//     requests at about its full rate, one round trip takes several tokens
//     and spends them locally. Tokens never come back; they lapse so that
//     no interval over-admits; the cost is a little under-admission.
//   - A timeout on the whole wait for the Store and a circuit breaker
//     ([Config] Timeout, default 100 ms; BreakerFailures and
//     BreakerCooldown, default 5 failures and 1 s). A failed or timed-out
//     call, and every call while the breaker is open, is decided by the
//     failure mode, and the Decision says so (Fallback; there is no error,
//     an error means no decision): failing open admits from per-instance
//     local buckets scaled by LocalShare; with FailClosed it denies, with
//     RetryAfter the rest of the cooldown. After the cooldown one probe
//     call goes to the Store; if it succeeds, decisions come from the
//     Store again.
//
// Across instances, admissions for a key in any interval T stay within
// Burst + Rate×T while the Store answers (one atomic Take per decision, on
// the Store's clock), refunds included. While failing open, each instance
// enforces its local share on its own; while failing closed, nothing is
// admitted.
package store

import (
	"context"
	"errors"
	"time"

	"golang.org/x/time/rate"
)

// A Store keeps one token bucket per key for many Limiters at once
// (several instances of a service).
//
// Concurrency contract: a Store's methods are safe for concurrent use, from
// any number of goroutines and processes. Each Take and Peek is atomic
// with respect to every other Take, Refund and Reset on the same key,
// wherever it runs, and uses the store's own clock, never the caller's. Every method must
// return promptly (with ctx's error, possibly wrapped) once ctx is done; the
// Limiter relies on that to bound the time a request can wait
// ([Config].Timeout).
type Store interface {
	// Take applies one request to key's bucket with the semantics of
	// rate.Limiter.AllowN at the store's current time: if the bucket holds
	// req.Cost tokens (under rate.Limiter's rule), it takes them and, if
	// req.Extra > 0, also takes up to req.Extra more whole tokens that the
	// bucket holds beyond the cost (a prefetch). A key never seen before,
	// or idle long enough to refill, has a full bucket.
	//
	// The error is non-nil when the store could not decide (unreachable,
	// timed out, corrupt state); the result is then meaningless.
	Take(ctx context.Context, key string, req Request) (Result, error)
	// Peek returns the Result that Take(ctx, key, req) with req.Extra 0
	// would return at the store's current time, and changes nothing: it
	// takes no tokens, creates no bucket for a key it does not hold, and
	// leaves a bucket's state and expiry as they were. req.Extra is
	// ignored; Result.Extra and Result.Hold are 0. The limiter calls it for
	// limiter.Limiter.Peek. The error is as for Take.
	Peek(ctx context.Context, key string, req Request) (Result, error)
	// Refund gives back the tokens of an admitted request that did not go
	// ahead (a limiter.AllowAll another limit denied); at is the Result.At
	// of the Take that took them. It gives back req.Cost less what the
	// policy refills between at and the refund (nothing before at), on the
	// store's clock, capped at Burst: tokens the bucket may have regained
	// on its own are not given twice, so a refund never lets any interval
	// exceed Burst + Rate×T, however late it comes. A key with no bucket is
	// full already and is left as it is. req.Extra is ignored.
	Refund(ctx context.Context, key string, req Request, at int64) error
	// Reset deletes key's bucket: its next request starts with a full one.
	Reset(ctx context.Context, key string) error
}

// A Request is one decision asked of a [Store]: the bucket's shape (the
// same for every request on a key) and what to take from it.
type Request struct {
	Rate  rate.Limit // tokens per second, finite and > 0
	Burst int        // the bucket's size, in [1, 2^53]
	Cost  int        // tokens the request needs, in [1, Burst]
	Extra int        // whole tokens to take in addition, if available (0: none)
}

// A Result is a [Store]'s answer to a [Request].
type Result struct {
	// Allowed reports whether the Cost was taken.
	Allowed bool
	// Remaining is the number of whole tokens left after Cost and Extra
	// were taken, at most Burst.
	Remaining int
	// RetryAfter is, for a denial, how long until Cost tokens will be
	// available (0 when allowed).
	RetryAfter time.Duration
	// ResetAfter is how long until the bucket is full again.
	ResetAfter time.Duration
	// Extra is the number of extra tokens taken: 0 when denied, otherwise
	// at most the request's Extra.
	Extra int
	// Hold is how long the Extra tokens may be spent in full, measured
	// from the moment the request was sent. After Hold they lapse at the
	// policy's Rate (see [Config].Prefetch). Hold is (Burst − level +
	// Cost) / Rate, where level is the bucket's level just before the
	// request, rounded down.
	Hold time.Duration
	// At is, for an admission, the time on the store's clock before which
	// the bucket could not have been full again had the take not happened
	// (the decision's time plus (Burst − level before it) / Rate, rounded
	// down), in the store's own unit (microseconds of Redis TIME for the
	// Redis store). The Limiter hands it back to Refund. Rounded down, At
	// makes a late refund give back up to Rate × one unit less than the
	// exact time would (Rate×1µs tokens with Redis): it can under-admit by
	// that much, never over-admit.
	At int64
}

// ErrUnavailable is wrapped by limiter.Limiter.Reset's error when the Store
// failed or timed out. Decisions never come with it: when the Store cannot
// decide, the failure mode ([Config].FailClosed) does, and the Decision
// says so (Decision.Fallback). A Store may wrap it in its own errors when
// it knows without trying that it cannot answer (redisstore does for the
// keys of a Cluster node whose breaker is open).
var ErrUnavailable = errors.New("store: unavailable")

// Config puts a Limiter's buckets in a [Store] shared with other Limiters
// (typically one per instance of a service), and says what the Limiter
// does when the Store cannot decide. Pass it to limiter.WithStore. Each
// zero field means the default written on it.
type Config struct {
	// Store keeps the buckets. Required. All Limiters sharing a Store must
	// use the same Policy, or distinct key namespaces.
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
	// instance holds them for a limited time: in full for the Result.Hold
	// the Store reported, then lapsing at the policy's Rate. Seen globally,
	// the tokens held by instances plus the tokens in the Store then never
	// exceed Burst, so admissions in any interval T stay within Burst +
	// Rate×T. A refund of the cost of the round trip that took the tokens
	// (limiter.AllowAll) shortens their hold by the cost's refill time,
	// since the Store, given the cost back, refills that much sooner.
	// SetPolicy drops every prefetched token.
	Prefetch int
}

// Stats are a Limiter's counters for its remote tier (limiter.Stats.Store),
// all zero without a Store. The counts are cumulative since the Limiter was
// created; BreakerOpen and CachedKeys are current.
type Stats struct {
	// RoundTrips counts Store calls that returned a decision, or for
	// limiter.Limiter.Peek, an answer (Store.Peek).
	RoundTrips uint64
	// Errors counts Store calls that failed or timed out (including Reset,
	// refunds and peeks); a decision that needed the Store was then made
	// by the failure mode (Decision.Fallback).
	Errors uint64
	// Fallbacks counts decisions made by the failure mode because the Store
	// failed or the breaker was open.
	Fallbacks uint64
	// DenyCacheHits counts denials answered locally from an earlier Store
	// denial, without a round trip.
	DenyCacheHits uint64
	// PrefetchHits counts admissions paid for by prefetched tokens, without
	// a round trip.
	PrefetchHits uint64
	// BreakerOpens counts times the circuit breaker opened.
	BreakerOpens uint64
	// BreakerOpen reports whether the breaker is open (or half-open) now.
	BreakerOpen bool
	// CachedKeys is the number of keys with a deny-cache or prefetch entry
	// (at most the Limiter's MaxKeys).
	CachedKeys int
}
