package bench

import (
	"context"

	"golang.org/x/time/rate"

	"github.com/floodgate-go/floodgate/limiter"
)

var floodgateImpl = Impl{
	Name:      "floodgate",
	Library:   "github.com/floodgate-go/floodgate (this repository)",
	Algorithm: "token bucket (x/time/rate arithmetic)",
	Cap:       "exact cap, WithMaxKeys (default 2^17, plus 128 8-byte cells per key of the cap); over the cap new keys are decided on their hashed cells",
	Cleanup:   "sweeper retires buckets refilled to burst, WithSweepInterval (default 30 s)",
	New:       newFloodgate,
}

type floodgateLimiter struct{ l *limiter.Limiter }

func newFloodgate(c Config) (Limiter, error) {
	var opts []limiter.Option
	if c.MaxKeys > 0 {
		opts = append(opts, limiter.WithMaxKeys(c.MaxKeys))
	}
	if c.Cleanup > 0 {
		opts = append(opts, limiter.WithSweepInterval(c.Cleanup))
	}
	l, err := limiter.New(limiter.Policy{Rate: rate.Limit(c.Rate), Burst: c.Burst}, opts...)
	if err != nil {
		return nil, err
	}
	return floodgateLimiter{l}, nil
}

func (f floodgateLimiter) Allow(key string) bool {
	d, err := f.l.Allow(context.Background(), key)
	return err == nil && d.Allowed
}

func (f floodgateLimiter) Close() { f.l.Close() }
