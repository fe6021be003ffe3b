package limiter

import (
	"errors"
	"fmt"
	"math"

	"golang.org/x/time/rate"
)

// A Policy is a token bucket: it holds at most Burst tokens, refills at Rate
// tokens per second, and each admitted request takes its cost in tokens.
// Rate and Burst mean exactly what they mean to [rate.NewLimiter].
//
// Rate may be [rate.Inf], which admits everything and tracks nothing; Burst is
// then only reported. Otherwise Rate must be positive and finite and Burst at
// least 1.
type Policy struct {
	Rate  rate.Limit
	Burst int
}

// PerSecond returns a policy of n requests per second with a burst of n.
func PerSecond(n int) Policy { return Policy{Rate: rate.Limit(n), Burst: n} }

// PerMinute returns a policy of n requests per minute with a burst of n.
func PerMinute(n int) Policy { return Policy{Rate: rate.Limit(float64(n) / 60), Burst: n} }

// PerHour returns a policy of n requests per hour with a burst of n.
func PerHour(n int) Policy { return Policy{Rate: rate.Limit(float64(n) / 3600), Burst: n} }

// maxBurst is the largest Burst a Policy may have: 2^53, the largest
// integer up to which float64 (the bucket level, here, in rate.Limiter and
// in the Redis script) and a Redis integer reply represent every whole
// number of tokens exactly.
const maxBurst = 1 << 53

// ErrInvalidPolicy is wrapped by every error New returns for a bad Policy.
var ErrInvalidPolicy = errors.New("limiter: invalid policy")

// Validate reports whether p can be enforced: Rate is rate.Inf (no limit)
// or finite and positive with Burst in [1, 2^53]. The error wraps
// [ErrInvalidPolicy] and names the offending field.
func (p Policy) Validate() error {
	r := float64(p.Rate)
	switch {
	case p.Rate == rate.Inf:
		if p.Burst < 0 {
			return fmt.Errorf("%w: burst %d is negative", ErrInvalidPolicy, p.Burst)
		}
		return nil
	case math.IsNaN(r):
		return fmt.Errorf("%w: rate is NaN", ErrInvalidPolicy)
	case r <= 0 || math.IsInf(r, 0):
		return fmt.Errorf("%w: rate %v must be positive (use rate.Inf for no limit)", ErrInvalidPolicy, r)
	case p.Burst < 1:
		return fmt.Errorf("%w: burst %d must be at least 1 with a finite rate", ErrInvalidPolicy, p.Burst)
	case p.Burst > maxBurst:
		return fmt.Errorf("%w: burst %d is above 2^53: a token more or less would not change the level", ErrInvalidPolicy, p.Burst)
	}
	return nil
}

// String formats p for logs, for example "5/s, burst 10".
func (p Policy) String() string {
	if p.Rate == rate.Inf {
		return "unlimited"
	}
	return fmt.Sprintf("%g/s, burst %d", float64(p.Rate), p.Burst)
}
