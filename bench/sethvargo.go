package bench

import (
	"context"

	golimiter "github.com/sethvargo/go-limiter"
	"github.com/sethvargo/go-limiter/memorystore"
)

var sethvargoImpl = Impl{
	Name:      "sethvargo",
	Library:   "github.com/sethvargo/go-limiter v1.1.0, memorystore",
	Algorithm: "fixed window: Burst tokens per Burst/Rate seconds, windows aligned to each key's first request",
	Cap:       "none",
	Cleanup:   "every SweepInterval (default 6 h) deletes keys idle for SweepMinTTL (default 12 h), whatever their window holds; its docs ask for SweepMinTTL ≥ the interval but do not enforce it",
	Notes:     "Cleanup sets both SweepInterval and SweepMinTTL",
	New:       newSethvargo,
}

type sethvargoLimiter struct{ s golimiter.Store }

func newSethvargo(c Config) (Limiter, error) {
	s, err := memorystore.New(&memorystore.Config{
		Tokens:        uint64(c.Burst),
		Interval:      c.Window(),
		SweepInterval: c.Cleanup, // 0 selects the default
		SweepMinTTL:   c.Cleanup,
	})
	if err != nil {
		return nil, err
	}
	return sethvargoLimiter{s}, nil
}

func (s sethvargoLimiter) Allow(key string) bool {
	_, _, _, ok, err := s.s.Take(context.Background(), key)
	return err == nil && ok
}

func (s sethvargoLimiter) Close() { s.s.Close(context.Background()) }
