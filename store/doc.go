// Package store holds floodgate's remote tiers: implementations of
// [limiter.Store] that keep each key's token bucket where every instance of
// a service can see it, so that a limit holds across instances.
//
// [Redis] is the Redis implementation, for a single node, Sentinel or
// Cluster through go-redis's UniversalClient:
//
//	client := redis.NewClient(&redis.Options{Addr: addr, ContextTimeoutEnabled: true})
//	s, err := store.NewRedis(client)
//	if err != nil { … }
//	l, err := limiter.New(limiter.PerSecond(100), limiter.WithStore(s),
//		limiter.WithFailureMode(limiter.FailOpen), limiter.WithLocalShare(1.0/3))
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
// script (after a restart or SCRIPT FLUSH).
//
// Package [github.com/floodgate-go/floodgate/store/storetest] is the
// conformance suite every Store passes.
package store
