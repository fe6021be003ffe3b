// Package store holds floodgate's remote tiers: implementations of
// [store.Store] that keep each key's token bucket where every instance of
// a service can see it, so that a limit holds across instances.
//
// [Redis] is the Redis implementation, for a single node, Sentinel or
// Cluster through go-redis's UniversalClient:
//
//	client := redis.NewClient(&redis.Options{Addr: addr, ContextTimeoutEnabled: true})
//	s, err := store.New(client)
//	if err != nil { … }
//	l, err := limiter.New(limiter.PerSecond(100),
//		limiter.WithStore(store.Config{Store: s, LocalShare: 1.0 / 3}))
//
// # The script
//
// Each decision is one call of one Lua script on one key. The script reads
// Redis's TIME (the only clock: instances' clocks never matter), advances
// the bucket with the float arithmetic of golang.org/x/time/rate, takes the
// cost (and, for a prefetch, extra whole tokens) and writes the bucket back
// with a TTL equal to the time it needs to refill, so idle clients cost
// Redis nothing. The bucket is stored as the text of its two floats written
// with 17 significant digits, which parse back to the same floats, so the
// decisions match a local rate.Limiter's decision for decision (tested).
// Calls use EVALSHA and fall back to EVAL when Redis does not know the
// script (after a restart or SCRIPT FLUSH). The TTL is at most 285 years,
// which only the slowest policies with the largest bursts (up to
// [limiter.MaxBurst]) ever reach.
//
// An admission also returns, in microseconds of Redis TIME
// ([store.Result].At), when its bucket could first have been full
// again had the take not happened: the decision's time plus what the
// bucket lacked before it, at Rate, rounded down. A refund (see
// [limiter.AllowAll]: a request admitted by one limit and denied by a
// later one gives its tokens back) is the same script in its refund mode,
// given the At of the take it undoes: it gives back the whole cost before
// At, and after it the cost less what the bucket could have regained on
// its own since, Rate × (now − At) on Redis's clock, if anything is left,
// capped at Burst; it writes nothing otherwise. So a refund that comes
// late, after a slow second limit, never hands out tokens the bucket has
// already regained, and one from a bucket far from full gives all back.
//
// # The client
//
// NewRedis needs to know that the client honours context deadlines
// (ContextTimeoutEnabled), or a Redis that stops answering would hold each
// request for the client's ReadTimeout instead of the Limiter's store
// timeout. It reads that from the client's options: *redis.Client,
// *redis.ClusterClient, *redis.Ring, or a type that embeds one. Any other
// UniversalClient is refused.
//
// # What a Limiter with a Store guarantees
//
// In front of the Store, the Limiter (see [limiter.WithStore]) keeps three
// things per instance, none of which can make it more lenient than Redis:
//
//   - A deny cache: once Redis denies a key (or admits the request that
//     spent its last token), the instance answers that key locally until
//     the moment Redis would next admit it, measured from when the request
//     was sent. A flooding client costs about one round trip per retry
//     window and instance, not one per request.
//   - Prefetch leases ([store.Config].Prefetch): for a key this
//     instance alone requests at about its full rate, one round trip takes
//     several tokens and spends them locally. Tokens never come back; they
//     lapse so no interval over-admits; the cost is a little
//     under-admission, never over-admission.
//   - A timeout on the whole wait for Redis and a circuit breaker
//     ([store.Config] Timeout, default 100 ms; BreakerFailures and
//     BreakerCooldown, default 5 failures and 1 s). A failed or timed-out
//     call, and every call while the breaker is open, is decided by the
//     failure mode, and the Decision says so (Fallback; there is no error,
//     an error means no decision): failing open admits from per-instance
//     local buckets scaled by LocalShare; with FailClosed it denies, with
//     RetryAfter the rest of the cooldown. After the cooldown one probe call goes to Redis; if
//     it succeeds, decisions come from Redis again.
//
// Across instances, admissions for a key in any interval T stay within
// Burst + Rate×T while Redis answers (one script call per decision, atomic
// in Redis, on Redis's clock), refunds included. While failing open, each instance enforces
// its local share on its own; while failing closed, nothing is admitted.
//
// # Redis Cluster
//
// Each decision touches one key, so the script runs on Cluster unchanged
// through a *redis.ClusterClient. Client keys cannot carry a hash tag (see
// [Store.Key]), so buckets spread over all slots.
//
// Package [github.com/floodgate-go/floodgate/store/storetest] is the
// conformance suite every Store passes.
package redisstore
