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
//	if err != nil { … }       // closed limiter, invalid cost, nil ctx: not a denial
//	if !d.Allowed { … }       // reject; d.RetryAfter says when to come back
//
// # Buckets and their lifetime
//
// Buckets live in a typed [sync.Map]; a request for a tracked key is one map
// lookup, one clock read and one bucket update under the bucket's own lock,
// with no allocation. A request that will be denied takes no lock and writes
// nothing to the bucket: it is decided exactly on a consistent snapshot of
// the bucket (rate.Limiter changes nothing on a denial either), so a flooded
// key's requests do not contend. A sweeper goroutine retires buckets that have refilled
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
// to Burst. When nothing can be retired, a key that is not tracked is
// decided on its cells: a fixed array of 8-byte states (128 per key of
// MaxKeys, at most 2^24), of which each key maps to two by a hash with a
// random seed. A cell is never less restrictive than any key that maps to
// it, so a key decided on its cells is never admitted where its own bucket
// would deny it; it is denied only where it, or keys sharing both its
// cells, have spent. Locking out a first-time client takes a spray of
// about C × Rate requests a second (C the cells), not one client's rate,
// and tracked clients keep their own buckets. A key that later gets a
// bucket of its own starts from its cells' level, never from a full bucket,
// so no key can exceed Burst + Rate×T by moving between the two. Keys
// longer than 64 bytes are stored as a fixed-size digest.
//
// # Differences from rate.Limiter
//
// The bucket arithmetic is rate.Limiter's, operation for operation, and the
// package's model tests check every public call against one rate.Limiter
// per key: AllowN, WaitN and its cancellation (rate.Reservation.CancelAt),
// AllowAll's refunds, Reset, SetPolicy and Plans.Update, sweeps and key-cap
// pressure. The differences, all deliberate:
//
//   - When two concurrent requests read the clock in one order and reach the
//     bucket in the other, the later arrival is treated as happening at the
//     later time. rate.Limiter would move its clock backwards and count the
//     overlap's refill twice, which over-admits.
//   - A cost below 1 or above Burst is an error wrapping [ErrInvalidCost]
//     (rate.Limiter admits a cost of 0 and denies one above Burst), and so
//     is a nil context (rate.Limiter panics in Wait).
//   - Undoing an admission — a cancelled WaitN, an AllowAll refund — gives
//     back what rate.Reservation.CancelAt would: the tokens no later
//     reservation counts on. Where CancelAt gives nothing back because the
//     reservation's time has passed (an AllowAll refund after a slow
//     limit), floodgate gives back the whole cost until the bucket could
//     have been full again without it, and after that what it could not
//     have regained since: a late refund never mints tokens. And when
//     SetPolicy raised the rate while a WaitN reserved under the old one is
//     pending, a request admitted meanwhile and then undone gives back only
//     what that waiter does not count on (rate.Limiter forgets the waiter),
//     and a bucket full again while that waiter is still due is not
//     retired. A reservation made before a SetPolicy and undone after it
//     gives nothing back: the new policy may have refilled the bucket
//     sooner than the old one's rule assumes, so its tokens may have been
//     regained already (CancelAt gives them back, which can admit more
//     than Burst + Rate×T).
//   - SetPolicy is rate.Limiter's SetLimitAt and SetBurstAt at the same
//     instant on every key, except that a bucket full at the change is full
//     under the new policy too, as a key without a bucket is: a new or idle
//     client gets a raised Burst at once, and whether the sweeper had
//     retired its bucket changes nothing.
//   - WaitN without a deadline refuses, with [ErrWouldExceedDeadline], a wait
//     longer than a time.Duration holds (about 292 years), where rate.Limiter
//     would sleep that long.
//   - Burst is at most 2^53: above it a float64 level cannot
//     count single tokens.
//   - Decision.RetryAfter is rounded up to the nanosecond (rate's
//     Reservation.Delay is truncated), so that waiting it is always enough;
//     Remaining is whole tokens.
//   - Keys the table cannot hold are decided on their cells (see Bounded
//     memory above): only ever stricter than their own bucket. Undoing an
//     admission made on the cells (a cancelled WaitN, an AllowAll denied
//     elsewhere) gives nothing back, and Reset does not clear them.
//
// With a Store ([github.com/floodgate-go/floodgate/store]), decisions are
// made on the Store's clock, shared by every instance, and add these:
// WaitN asks again after each RetryAfter instead of queueing (the Store
// holds no reservations); a refund to the Store gives
// back the cost less what the bucket refilled since it was taken; and the
// Store's buckets adopt a new policy at their next decision, as if it had
// been in force since their last one (the Store does not know when
// SetPolicy was called). Prefetched leases are meant to under-admit, never
// over-admit ([store.Config].Prefetch).
//
// # Stats
//
// [Limiter.Stats] reports tracked keys and cumulative counts of allowed,
// denied, overflowed and retired. Admissions are counted in their buckets,
// under the lock each holds anyway, and denials in counters striped by
// goroutine, so counting adds no write that cores share; Stats sums them.
package limiter
