// Package ratemodel is the reference that floodgate's model tests compare
// limiters with: golang.org/x/time/rate's Limiter arithmetic, transcribed so
// that it can also take a refund after the reservation's time to act
// (which rate.Limiter cannot), and the exactness bound over every window
// (Ledger). It is for tests only.
package ratemodel

import (
	"math"
	"time"

	"golang.org/x/time/rate"
)

// A Bucket is rate.Limiter's state and arithmetic, with the same float64
// operations in the same order, so that its levels equal rate.Limiter's
// exactly on every call rate.Limiter has. The zero time for last means a
// full bucket, as in rate.NewLimiter.
type Bucket struct {
	limit     rate.Limit
	burst     int
	tokens    float64
	last      time.Time
	lastEvent time.Time // the latest time to act of a reservation
	lastAhead time.Time // the latest time to act of a reservation made ahead (a wait)
	policies  int       // SetPolicy calls so far

	grain time.Duration // a reservation's Full is rounded down to a multiple of it (0: none; see Oracle.RoundFull)
}

// A Reservation is rate.Reservation's state.
type Reservation struct {
	OK        bool
	Tokens    int
	TimeToAct time.Time
	Full      time.Time // when the bucket could be full again had it not been made
	limit     rate.Limit
	policy    int // the bucket's policies when it was made
}

// NewBucket is rate.NewLimiter(limit, burst).
func NewBucket(limit rate.Limit, burst int) *Bucket {
	return &Bucket{limit: limit, burst: burst, tokens: float64(burst)}
}

// Policy returns the bucket's rate and burst.
func (b *Bucket) Policy() (rate.Limit, int) { return b.limit, b.burst }

func (b *Bucket) advance(t time.Time) float64 {
	last := b.last
	if t.Before(last) {
		last = t
	}
	tokens := b.tokens + t.Sub(last).Seconds()*float64(b.limit)
	return min(tokens, float64(b.burst))
}

// durationFromTokens is rate.Limit.durationFromTokens (truncated).
func durationFromTokens(limit rate.Limit, tokens float64) time.Duration {
	d := (tokens / float64(limit)) * float64(time.Second)
	if d > float64(math.MaxInt64) {
		return rate.InfDuration
	}
	return time.Duration(d)
}

// tokensFromDuration is rate.Limit.tokensFromDuration.
func tokensFromDuration(limit rate.Limit, d time.Duration) float64 {
	return d.Seconds() * float64(limit)
}

// TokensAt is rate.Limiter.TokensAt.
func (b *Bucket) TokensAt(t time.Time) float64 { return b.advance(t) }

// WaitFor is the delay a reservation of n tokens at t would get, without
// making it (0 if the tokens are there).
func (b *Bucket) WaitFor(t time.Time, n int) time.Duration {
	if left := b.advance(t) - float64(n); left < 0 {
		return durationFromTokens(b.limit, -left)
	}
	return 0
}

// Reserve is rate.Limiter's reserveN(t, n, maxFuture): ReserveN with
// maxFuture rate.InfDuration, AllowN with 0, WaitN with the time to the
// context's deadline.
func (b *Bucket) Reserve(t time.Time, n int, maxFuture time.Duration) Reservation {
	level := b.advance(t)
	tokens := level - float64(n)
	var wait time.Duration
	if tokens < 0 {
		wait = durationFromTokens(b.limit, -tokens)
	}
	if n > b.burst || wait > maxFuture {
		return Reservation{}
	}
	r := Reservation{OK: true, Tokens: n, TimeToAct: t.Add(wait), limit: b.limit, policy: b.policies}
	r.Full = t.Add(durationFromTokens(b.limit, float64(b.burst)-level))
	if b.grain > 0 {
		r.Full = r.Full.Truncate(b.grain)
	}
	b.last, b.tokens, b.lastEvent = t, tokens, r.TimeToAct
	if wait > 0 {
		b.lastAhead = r.TimeToAct
	}
	return r
}

// AllowN is rate.Limiter.AllowN.
func (b *Bucket) AllowN(t time.Time, n int) bool { return b.Reserve(t, n, 0).OK }

// Cancel gives back r's tokens at t by the refund rule: n less what later
// reservations count on, Rate×(lastEvent − T), less, once t is past
// r.Full (when the bucket could have been full again without r), what it
// could have regained since, Rate×(t − Full); if positive, capped at
// Burst. Full is never before T, so for t ≤ T it is exactly
// rate.Reservation.CancelAt(t), which gives nothing back for t > T.
// lastEvent counts only reservations made ahead (an immediate one after r
// counts on no token of r's); for t ≤ T that is rate.Limiter's lastEvent.
//
// A reservation made under an earlier policy gives nothing back: its Full
// was computed under that policy, and a faster rate or a smaller burst
// since may have refilled the bucket earlier, so its tokens may already
// have been regained (rate.Limiter gives them back, and can then admit
// more than Burst + Rate×T).
func (b *Bucket) Cancel(r Reservation, t time.Time) {
	if !r.OK || r.Tokens == 0 || r.policy != b.policies {
		return
	}
	lastEvent := b.lastAhead
	if lastEvent.Before(r.TimeToAct) {
		lastEvent = r.TimeToAct
	}
	restore := float64(r.Tokens) - tokensFromDuration(r.limit, lastEvent.Sub(r.TimeToAct))
	if late := t.Sub(r.Full); late > 0 {
		restore -= tokensFromDuration(r.limit, late)
	}
	if restore <= 0 {
		return
	}
	b.tokens = min(b.advance(t)+restore, float64(b.burst))
	b.last = t
	if r.TimeToAct.Equal(b.lastAhead) {
		prev := r.TimeToAct.Add(-durationFromTokens(r.limit, float64(r.Tokens)))
		if !prev.Before(t) {
			b.lastAhead, b.lastEvent = prev, prev
		} else {
			// None is outstanding now, so the next reservation's own time
			// is lastEvent (rate.Limiter keeps r's until then; it only
			// matters if something taken before is undone after, which
			// rate.Limiter then under-refunds).
			b.lastAhead = time.Time{}
		}
	}
}

// SetPolicy is rate.Limiter's SetLimitAt(t, limit) then SetBurstAt(t,
// burst), except that a bucket full at t is full under the new policy too,
// as a fresh one is: floodgate's rule, so that whether the sweeper had
// retired the bucket changes nothing. It reports whether that rule made a
// difference (a full bucket whose Burst grew), and whether a reservation
// is still ahead of t.
func (b *Bucket) SetPolicy(t time.Time, limit rate.Limit, burst int) (refilled, ahead bool) {
	if limit != b.limit || burst != b.burst {
		b.policies++
	}
	b.tokens, b.last, b.limit = b.advance(t), t, limit
	refilled = b.tokens >= float64(b.burst) && burst > b.burst
	b.tokens, b.last, b.burst = b.advance(t), t, burst
	if refilled {
		b.tokens = float64(burst)
	}
	return refilled, b.lastEvent.After(t)
}
