package bench

import (
	"sync"

	"golang.org/x/time/rate"
)

var mutexMapImpl = Impl{
	Name:      "map+Mutex",
	Library:   "baseline: map[string]*rate.Limiter under a sync.Mutex, golang.org/x/time v0.16.0",
	Algorithm: "token bucket (x/time/rate.Limiter per key)",
	Cap:       "none",
	Cleanup:   "none: keys are kept forever",
	Baseline:  true,
	New:       func(c Config) (Limiter, error) { return newMutexMap(c), nil },
}

var syncMapImpl = Impl{
	Name:      "sync.Map",
	Library:   "baseline: sync.Map of *rate.Limiter (Load, then LoadOrStore on a miss), golang.org/x/time v0.16.0",
	Algorithm: "token bucket (x/time/rate.Limiter per key)",
	Cap:       "none",
	Cleanup:   "none: keys are kept forever",
	Baseline:  true,
	New:       func(c Config) (Limiter, error) { return &syncMapLimiter{c: c}, nil },
}

type mutexMapLimiter struct {
	c  Config
	mu sync.Mutex
	m  map[string]*rate.Limiter
}

func newMutexMap(c Config) *mutexMapLimiter {
	return &mutexMapLimiter{c: c, m: make(map[string]*rate.Limiter)}
}

func (l *mutexMapLimiter) Allow(key string) bool {
	l.mu.Lock()
	rl, ok := l.m[key]
	if !ok {
		rl = rate.NewLimiter(rate.Limit(l.c.Rate), l.c.Burst)
		l.m[key] = rl
	}
	l.mu.Unlock()
	return rl.Allow()
}

func (l *mutexMapLimiter) Close() {}

type syncMapLimiter struct {
	c Config
	m sync.Map
}

func (l *syncMapLimiter) Allow(key string) bool {
	v, ok := l.m.Load(key)
	if !ok {
		v, _ = l.m.LoadOrStore(key, rate.NewLimiter(rate.Limit(l.c.Rate), l.c.Burst))
	}
	return v.(*rate.Limiter).Allow()
}

func (l *syncMapLimiter) Close() {}
