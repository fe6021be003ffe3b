// Package redisstore is floodgate's Redis tier: a [store.Store] that keeps
// each key's token bucket in Redis, where every instance of a service can
// see it, so that a limit holds across instances. It works with a single
// node, Sentinel or Cluster through go-redis's UniversalClient:
//
//	client := redis.NewClient(&redis.Options{Addr: addr, ContextTimeoutEnabled: true})
//	s, err := redisstore.New(client)
//	if err != nil { … }
//	l, err := limiter.New(limiter.PerSecond(100),
//		limiter.WithStore(store.Config{Store: s, LocalShare: 1.0 / 3}))
//
// Package [github.com/floodgate-go/floodgate/store] says what a Limiter
// guarantees with a Store in front of it (deny cache, prefetch leases,
// timeout, breaker and failure mode); this package is how Redis keeps its
// side.
//
// # The script
//
// Each decision is one call of one Lua script on one key. The script reads
// Redis's TIME (the only clock: instances' clocks never matter), advances
// the bucket with the float arithmetic of golang.org/x/time/rate, takes the
// cost (and, for a prefetch, extra whole tokens) and writes the bucket back
// with a TTL equal to the time it needs to refill, so idle clients cost
// Redis nothing. A denial, as in rate.Limiter, changes nothing: the script
// writes no state, and only extends the key's TTL when the request's policy
// (after a SetPolicy) refills the bucket later than the one it was last
// written under. The bucket is stored as 16 bytes, its level's float split
// exactly into mantissa and exponent and the time of its last update, so
// the decisions match a local rate.Limiter's decision for decision
// (tested).
// Calls use EVALSHA and fall back to EVAL when Redis does not know the
// script (after a restart or SCRIPT FLUSH). The TTL is at most 285 years,
// which only the slowest policies with the largest bursts (up to
// 2^53, the largest Burst a Policy may have) ever reach.
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
// # Coalescing
//
// Concurrent decisions on one Store share round trips. When no round trip
// is in flight (or one, since two may be), a decision goes straight out on
// its caller's goroutine, exactly as it would alone; decisions that arrive
// while two are in flight queue, and when one returns they all go out
// together as the next pipeline of EVALSHA calls (up to 128 at once, EVAL
// for any Redis answers NOSCRIPT). Nothing ever waits for a timer. Each
// decision keeps its own context and timeout: one whose context ends while
// it is queued leaves at once with the context's error, without touching
// the others; each gets its own reply and its own error. Take, Peek and
// Refund all go this way, so a Limiter's deny cache, prefetch leases,
// refunds and breaker work as before. With a Redis Cluster, each master has
// a queue of its own, and go-redis sends each pipeline to the key's master,
// following MOVED and ASK. Pipelining saves most of the per-call system
// calls on both sides: Redis's CPU per decision, and with it what one
// Redis serves, grows with the concurrency (bench/results/fleet.md). Turn
// it off with [WithoutCoalescing].
//
// # The client
//
// New needs to know that the client honours context deadlines
// (ContextTimeoutEnabled), or a Redis that stops answering would hold each
// request for the client's ReadTimeout instead of the Limiter's store
// timeout. It reads that from the client's options: *redis.Client,
// *redis.ClusterClient, *redis.Ring, or a type that embeds one. Any other
// UniversalClient is refused.
//
// # Redis Cluster
//
// Each decision touches one key, so the script runs on Cluster unchanged
// through a *redis.ClusterClient. Client keys cannot carry a hash tag (see
// [Store.Key]), so buckets spread over all slots.
//
// Each master has a circuit breaker of its own ([WithNodeBreaker]), with
// the Limiter's rules applied to that node alone: after 5 consecutive
// failed calls on a master (refused, broken or timed out; an error reply
// is an answer), calls for its keys fail at once with an error wrapping
// [store.ErrUnavailable] for a cooldown of 1 s, so the Limiter's failure
// mode decides them without waiting for its timeout; then one call probes
// the master, and a success closes its breaker. Keys on the other masters
// are not affected. The Limiter's own breaker, which counts consecutive
// failures over all keys, cannot do this: successes on the live masters
// keep resetting its count.
//
// Package [github.com/floodgate-go/floodgate/store/storetest] is the
// conformance suite every Store passes.
package redisstore
