package bench

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync/atomic"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"
	ulimiter "github.com/ulule/limiter/v3"
	ulredis "github.com/ulule/limiter/v3/drivers/store/redis"

	"github.com/floodgate-go/floodgate/limiter"
	"github.com/floodgate-go/floodgate/store"
	"github.com/floodgate-go/floodgate/store/redisstore"
)

// A RedisLimiter is one Redis-backed implementation under test. Unlike
// Limiter it returns its errors: a Redis benchmark fails on any error
// instead of counting it as a denial.
type RedisLimiter interface {
	Allow(ctx context.Context, key string) (bool, error)
	Close()
}

// RedisConfig is the policy, the key namespace and floodgate's prefetch.
type RedisConfig struct {
	Config
	// Prefix namespaces the implementation's keys, so runs never share
	// state.
	Prefix string
	// Prefetch is floodgate's store.Config.Prefetch; the peers have no equivalent
	// and ignore it.
	Prefetch int
	// NoCoalesce turns floodgate's coalescing of concurrent decisions into
	// pipelines off (redisstore.WithoutCoalescing); the peers ignore it.
	NoCoalesce bool
}

// A RedisImpl is one Redis-backed implementation.
type RedisImpl struct {
	Name      string
	Library   string
	Algorithm string
	Notes     string
	New       func(client *redis.Client, c RedisConfig) (RedisLimiter, error)
}

// RedisImpls returns the Redis implementations, floodgate first.
func RedisImpls() []RedisImpl {
	return []RedisImpl{
		{
			Name: "floodgate", Library: "floodgate limiter.New with WithStore(redisstore.New(client, redisstore.WithPrefix(…)))",
			Algorithm: "token bucket in one Lua script, Redis TIME as the clock; a local deny cache; prefetch leases for hot keys",
			Notes:     "a store Timeout of 1s instead of the default 100 ms, so that a descheduled process on this loaded machine does not fall back to the failure mode; any error fails the benchmark",
			New:       newFloodgateRedis,
		},
		{
			Name: "redis_rate", Library: "github.com/go-redis/redis_rate/v10 v10.0.1",
			Algorithm: "GCRA in one Lua script (Redis TIME as the clock), equivalent to a token bucket of Burst at Rate",
			Notes:     "Limit{Rate, Burst, Period}: Rate per 1 s for an integer rate, else 1 per 1/Rate s",
			New:       newRedisRate,
		},
		{
			Name: "ulule", Library: "github.com/ulule/limiter/v3 v3.11.2, drivers/store/redis",
			Algorithm: "fixed window of Burst requests per Burst/Rate seconds (a Lua script: INCR and expiry); denied requests are counted too",
			Notes:     "the window starts at a key's first request",
			New:       newUluleRedis,
		},
	}
}

type floodgateRedis struct{ l *limiter.Limiter }

func newFloodgateRedis(client *redis.Client, c RedisConfig) (RedisLimiter, error) {
	opts := []redisstore.Option{redisstore.WithPrefix(c.Prefix)}
	if c.NoCoalesce {
		opts = append(opts, redisstore.WithoutCoalescing())
	}
	s, err := redisstore.New(client, opts...)
	if err != nil {
		return nil, err
	}
	l, err := limiter.New(floodgatePolicy(c.Config),
		limiter.WithStore(store.Config{Store: s, Prefetch: c.Prefetch, Timeout: time.Second}))
	if err != nil {
		return nil, err
	}
	return floodgateRedis{l}, nil
}

func (f floodgateRedis) Allow(ctx context.Context, key string) (bool, error) {
	d, err := f.l.Allow(ctx, key)
	return d.Allowed, err
}

func (f floodgateRedis) Close() { f.l.Close() }

// Fallbacks returns the decisions floodgate's failure mode made so far
// (Redis failed or timed out, or the breaker was open): admissions that
// are not Redis's.
func (f floodgateRedis) Fallbacks() uint64 { return f.l.Stats().Store.Fallbacks }

type redisRate struct {
	l      *redis_rate.Limiter
	limit  redis_rate.Limit
	prefix string
}

func newRedisRate(client *redis.Client, c RedisConfig) (RedisLimiter, error) {
	limit := redis_rate.Limit{Rate: int(c.Rate), Burst: c.Burst, Period: time.Second}
	if c.Rate != math.Trunc(c.Rate) || c.Rate < 1 {
		limit = redis_rate.Limit{Rate: 1, Burst: c.Burst, Period: time.Duration(float64(time.Second) / c.Rate)}
	}
	return redisRate{redis_rate.NewLimiter(client), limit, c.Prefix + ":"}, nil
}

func (r redisRate) Allow(ctx context.Context, key string) (bool, error) {
	res, err := r.l.Allow(ctx, r.prefix+key, r.limit)
	if err != nil {
		return false, err
	}
	return res.Allowed > 0, nil
}

// Close does nothing: redis_rate has no state besides the client.
func (redisRate) Close() {}

type ululeRedis struct{ l *ulimiter.Limiter }

func newUluleRedis(client *redis.Client, c RedisConfig) (RedisLimiter, error) {
	s, err := ulredis.NewStoreWithOptions(client, ulimiter.StoreOptions{Prefix: c.Prefix, MaxRetry: ulimiter.DefaultMaxRetry})
	if err != nil {
		return nil, err
	}
	return ululeRedis{ulimiter.New(s, ulimiter.Rate{Period: c.Window(), Limit: int64(c.Burst)})}, nil
}

func (u ululeRedis) Allow(ctx context.Context, key string) (bool, error) {
	c, err := u.l.Get(ctx, key)
	return err == nil && !c.Reached, err
}

// Close does nothing: the Redis store has no goroutine.
func (ululeRedis) Close() {}

// RoundTrips counts the commands and pipelines a go-redis client sends:
// each is one round trip to Redis. It is a redis.Hook.
type RoundTrips struct{ n atomic.Uint64 }

// Load returns the round trips so far.
func (c *RoundTrips) Load() uint64 { return c.n.Load() }

// DialHook leaves dialing alone.
func (c *RoundTrips) DialHook(next redis.DialHook) redis.DialHook { return next }

// ProcessHook counts a command.
func (c *RoundTrips) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		c.n.Add(1)
		return next(ctx, cmd)
	}
}

// ProcessPipelineHook counts a pipeline as one round trip.
func (c *RoundTrips) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		c.n.Add(1)
		return next(ctx, cmds)
	}
}

// NewRedisClient returns a client for addr that counts its round trips.
// ContextTimeoutEnabled is set, as redisstore.New requires (and as every
// peer gets too); RESP2 for every implementation.
func NewRedisClient(addr string) (*redis.Client, *RoundTrips) {
	c := redis.NewClient(&redis.Options{Addr: addr, ContextTimeoutEnabled: true, Protocol: 2})
	rt := &RoundTrips{}
	c.AddHook(rt)
	return c, rt
}

// RedisStandard is the policy of the Redis speed benchmarks: far above what
// any run reaches, so every decision is an admission and a round trip, and
// slow enough that every implementation writes its state on every decision
// (at 1e9/s redis_rate's GCRA step, 1e-9 s, is below the float resolution
// of its clock in seconds, so its script skips its SET; the benchmarks
// check the writes in INFO commandstats).
var RedisStandard = Config{Rate: 1e6, Burst: 1000}

// RedisKeys is how many keys the Redis speed benchmarks cycle through.
const RedisKeys = 1024

// A Paced scenario sends one client's requests at a fixed rate for a period
// and counts round trips per admitted request.
type Paced struct {
	Name     string
	Doc      string
	Config   Config
	Prefetch int
	// Rate is the client's request rate per second.
	Rate float64
}

// PacedScenarios returns the round-trip scenarios.
func PacedScenarios() []Paced {
	return []Paced{
		{Name: "RedisFlood", Doc: "one client flooding at 100× its rate (5,000 requests/s against 50/s, burst 10)", Config: Config{Rate: 50, Burst: 10}, Rate: 5000},
		{Name: "RedisHotKey", Doc: "one hot key at half its rate (2,000 requests/s against 4,000/s, burst 100); floodgate with Prefetch 64", Config: Config{Rate: 4000, Burst: 100}, Prefetch: 64, Rate: 2000},
	}
}

// PacedResult is what one period of a Paced scenario measured.
type PacedResult struct {
	Requests, Admitted, Max int
	RoundTrips              uint64
	Elapsed                 time.Duration
}

// RunPaced sends p.Rate requests per second on key through l for d,
// counting rt's round trips. Requests fall due at fixed times; a late
// client catches up, so the count is p.Rate×d unless the limiter is slower
// than the rate.
func RunPaced(ctx context.Context, l RedisLimiter, rt *RoundTrips, p Paced, key string, d time.Duration) (PacedResult, error) {
	interval := time.Duration(float64(time.Second) / p.Rate)
	rt0 := rt.Load()
	t0 := time.Now()
	var r PacedResult
	for {
		el := time.Since(t0)
		if el >= d {
			break
		}
		if due := time.Duration(r.Requests) * interval; due > el {
			time.Sleep(due - el)
			continue
		}
		ok, err := l.Allow(ctx, key)
		if err != nil {
			return r, fmt.Errorf("%s: request %d: %w", p.Name, r.Requests, err)
		}
		r.Requests++
		if ok {
			r.Admitted++
		}
	}
	r.Elapsed = time.Since(t0)
	r.RoundTrips = rt.Load() - rt0
	r.Max = p.Config.Max(r.Elapsed)
	if r.Admitted == 0 {
		return r, errors.New(p.Name + ": nothing admitted")
	}
	if r.Requests < int(p.Rate*d.Seconds())/2 {
		return r, fmt.Errorf("%s: only %d requests in %v at %g/s: the limiter cannot keep up", p.Name, r.Requests, d, p.Rate)
	}
	return r, nil
}
