// Package limiter rate-limits each client of a service with its own token
// bucket.
//
// A Limiter enforces one [Policy] (Rate tokens per second, at most Burst at
// once) separately for every key: a client IP, an API key, a user, a route.
// Its decisions are those of a [golang.org/x/time/rate.Limiter] private to
// the key:
//
//	l, err := limiter.New(limiter.PerSecond(10))
//	if err != nil { … }
//	defer l.Close()
//	d, err := l.Allow(ctx, clientIP)
//	if err != nil { … }       // closed limiter or invalid cost: not a denial
//	if !d.Allowed { … }       // reject; d.RetryAfter says when to come back
//
// # Buckets and their lifetime
//
// Buckets live in a typed [sync.Map]; a request for a tracked key is one map
// lookup, one clock read and one bucket update under the bucket's own lock,
// with no allocation. A sweeper goroutine retires buckets that have refilled
// to Burst. A full bucket is indistinguishable from a new one, so sweeping
// never changes a decision, however often it runs; see package
// [github.com/floodgate-go/floodgate/sweeper] for the retire protocol that
// keeps a request racing the sweeper from spending tokens in a bucket that is
// then thrown away.
//
// # Bounded memory
//
// At most MaxKeys keys are tracked ([WithMaxKeys]; the cap is exact). When
// the table is full, a new key takes the slot of a bucket that has refilled
// to Burst. When nothing can be retired, keys that are not tracked share a
// single overflow bucket with the same Policy, so a client rotating source
// addresses faster than its buckets refill gets one client's worth of
// capacity in total, and tracked clients keep their own buckets. A key that later gets a bucket of its own
// starts from the overflow bucket's level, never from a full bucket, so no
// key can exceed Burst + Rate×T by moving between the two. Keys longer than
// [MaxKeyLen] are stored as a fixed-size digest.
//
// # Differences from rate.Limiter
//
// The bucket arithmetic is rate.Limiter's, operation for operation, and the
// package's model test checks every decision against rate.Limiter. There is
// one deliberate difference: when two concurrent requests read the clock in
// one order and reach the bucket in the other, the later arrival is treated
// as happening at the later time. rate.Limiter would move its clock
// backwards and count the overlap's refill twice, which over-admits.
//
// # Stats
//
// [Limiter.Stats] reports tracked keys and cumulative counts of allowed,
// denied, overflowed and retired. Decisions are counted in their buckets,
// under the lock each decision holds anyway, so counting adds no write that
// cores share; Stats sums the buckets.
package limiter
