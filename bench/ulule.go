package bench

import (
	"context"

	ulimiter "github.com/ulule/limiter/v3"
	"github.com/ulule/limiter/v3/drivers/store/memory"
)

var ululeImpl = Impl{
	Name:      "ulule",
	Library:   "github.com/ulule/limiter/v3 v3.11.2, drivers/store/memory",
	Algorithm: "fixed window: Burst requests per Burst/Rate seconds, windows aligned to each key's first request; denied requests are counted too",
	Cap:       "none",
	Cleanup:   "every CleanUpInterval (default 30 s) deletes keys whose window has ended",
	Notes:     "no Close: the cleaner goroutine stops only when a finalizer runs (so on a fake clock it runs without one, which changes no decision); keys are stored with a \"limiter:\" prefix",
	New:       newUlule,
}

type ululeLimiter struct{ l *ulimiter.Limiter }

func newUlule(c Config) (Limiter, error) {
	cleanup := c.Cleanup
	switch {
	case c.Bubble:
		// No cleaner: it only deletes ended windows, which are counted as
		// empty anyway, so decisions are the same without it.
		cleanup = 0
	case cleanup == 0:
		cleanup = ulimiter.DefaultCleanUpInterval
	}
	store := memory.NewStoreWithOptions(ulimiter.StoreOptions{
		Prefix:          ulimiter.DefaultPrefix,
		CleanUpInterval: cleanup,
	})
	rate := ulimiter.Rate{Period: c.Window(), Limit: int64(c.Burst)}
	return ululeLimiter{ulimiter.New(store, rate)}, nil
}

func (u ululeLimiter) Allow(key string) bool {
	ctx, err := u.l.Get(context.Background(), key)
	return err == nil && !ctx.Reached
}

// Close does nothing: the memory store has no Close.
func (u ululeLimiter) Close() {}
