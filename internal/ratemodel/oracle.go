package ratemodel

import (
	"fmt"
	"os"
	"strconv"
	"time"

	"golang.org/x/time/rate"
)

// An Oracle is what a model test knows about one key: the reference
// Bucket, a rate.Limiter the reference is cross-checked against after every
// call that rate.Limiter has an equivalent for, and the key's Ledger.
type Oracle struct {
	ref    *Bucket
	shadow *rate.Limiter // nil once a late refund (no rate.Limiter equivalent) set them apart
	Ledger *Ledger
}

// A Grant is an admission an Oracle may have to refund.
type Grant struct {
	r Reservation
	s *rate.Reservation // nil without a shadow
}

// OK reports whether the take was admitted.
func (g Grant) OK() bool { return g.r.OK }

// NewOracle returns the oracle of a fresh key under the policy limit, burst.
func NewOracle(limit rate.Limit, burst int) *Oracle {
	return &Oracle{ref: NewBucket(limit, burst), shadow: rate.NewLimiter(limit, burst), Ledger: NewLedger(limit, burst)}
}

// RoundFull makes the reference round each reservation's Full (when the
// bucket could have been full again without it) down to a multiple of d
// (times since the zero time), as a Store does on a clock of resolution d:
// the Redis Store's store.Result.At is whole microseconds of Redis TIME,
// rounded down. A refund later than Full then gives back up to Rate×d
// tokens less than at the exact Full: the rounding that can only
// under-admit, never mint.
func (o *Oracle) RoundFull(d time.Duration) { o.ref.grain = d }

// Shadow is the rate.Limiter, or nil once it has been set apart; a WaitN
// on it reserves in it, and must be mirrored by Reserve.
func (o *Oracle) Shadow() *rate.Limiter { return o.shadow }

// TokensAt is the reference's level at t.
func (o *Oracle) TokensAt(t time.Time) float64 { return o.ref.TokensAt(t) }

// Remaining is a Decision's Remaining for the level at t.
func (o *Oracle) Remaining(t time.Time) int { return max(int(o.ref.TokensAt(t)), 0) }

// WaitFor is the wait a reservation of n at t would get (see Bucket.WaitFor).
func (o *Oracle) WaitFor(t time.Time, n int) time.Duration { return o.ref.WaitFor(t, n) }

// Take is AllowN(t, n), made so that it can be refunded.
func (o *Oracle) Take(t time.Time, n int) (Grant, error) {
	g := Grant{r: o.ref.Reserve(t, n, 0)}
	if o.shadow == nil {
		return g, nil
	}
	if !g.r.OK {
		if o.shadow.AllowN(t, n) {
			return g, fmt.Errorf("rate.Limiter.AllowN(%d) admits, the reference denies", n)
		}
		return g, o.Check(t)
	}
	g.s = o.shadow.ReserveN(t, n) // what AllowN does when the reservation needs no wait
	if d := g.s.DelayFrom(t); !g.s.OK() || d != 0 {
		return g, fmt.Errorf("rate.Limiter.ReserveN(%d) waits %v, the reference admits now", n, d)
	}
	return g, o.Check(t)
}

// Refund gives g back at t by the refund rule (Bucket.Cancel). At g's own
// instant it is rate.Reservation.CancelAt; later, rate.Limiter has no
// equivalent and the shadow is dropped (as it is in the case below).
func (o *Oracle) Refund(g Grant, t time.Time) error {
	o.ref.Cancel(g.r, t)
	if o.shadow == nil || g.s == nil {
		return nil
	}
	if t.After(g.r.TimeToAct) || o.ref.lastAhead.After(g.r.TimeToAct) || g.r.policy != o.ref.policies {
		// Late, or undoing an admission made while a WaitN reserved under
		// a slower policy is still pending (SetPolicy raised the rate):
		// floodgate keeps that waiter's claim, rate.Limiter forgets it.
		o.shadow = nil
		return nil
	}
	g.s.CancelAt(t)
	return o.Check(t)
}

// Reserve mirrors a WaitN at t with the context deadline maxFuture away
// (rate.InfDuration for none) in the reference; the shadow's own WaitN
// reserves in it.
func (o *Oracle) Reserve(t time.Time, n int, maxFuture time.Duration) Reservation {
	return o.ref.Reserve(t, n, maxFuture)
}

// CancelWait mirrors a WaitN cancelled at t in the reference (the shadow's
// WaitN cancels its own reservation).
func (o *Oracle) CancelWait(r Reservation, t time.Time) error {
	switch {
	case r.policy != o.ref.policies:
		// Made before a SetPolicy: the reference gives nothing back (see
		// Bucket.Cancel), rate.Limiter gives back by CancelAt.
		o.shadow = nil
	case r.OK && !t.After(r.TimeToAct) && o.ref.lastEvent.Before(r.TimeToAct):
		// An admission after r moved rate.Limiter's lastEvent before r's
		// time to act, so CancelAt would give back more than r took; the
		// reference, like floodgate, gives back at most r's tokens.
		o.shadow = nil
	}
	o.ref.Cancel(r, t)
	return o.Check(t)
}

// SetPolicy applies a policy change at t (SetLimitAt then SetBurstAt; a
// full bucket becomes a fresh one, see Bucket.SetPolicy) and starts a new
// ledger segment, checking the one it closes. Where the fresh-bucket rule
// differs from rate.Limiter, the shadow becomes a fresh rate.Limiter, or
// is dropped if a WaitN still holds a reservation in the old one.
func (o *Oracle) SetPolicy(t time.Time, limit rate.Limit, burst int) error {
	refilled, ahead := o.ref.SetPolicy(t, limit, burst)
	switch {
	case o.shadow == nil:
	case refilled && ahead:
		o.shadow = nil
	case refilled:
		o.shadow = rate.NewLimiter(limit, burst)
	default:
		o.shadow.SetLimitAt(t, limit)
		o.shadow.SetBurstAt(t, burst)
		if err := o.Check(t); err != nil {
			return err
		}
	}
	return o.Ledger.Next(limit, burst)
}

// Check compares the reference's level with the shadow's at t.
func (o *Oracle) Check(t time.Time) error {
	if o.shadow == nil {
		return nil
	}
	if got, want := o.ref.TokensAt(t), o.shadow.TokensAt(t); got != want {
		return fmt.Errorf("reference bucket holds %v tokens, rate.Limiter %v", got, want)
	}
	return nil
}

// Seeds is how many seeds a model test runs: def, or more for a deep run,
// as the environment variable FLOODGATE_MODEL_SEEDS says
// (FLOODGATE_MODEL_SEEDS=2000 go test -run Model ./...).
func Seeds(def uint64) uint64 {
	if n, err := strconv.ParseUint(os.Getenv("FLOODGATE_MODEL_SEEDS"), 10, 64); err == nil && n > 0 {
		return n
	}
	return def
}
