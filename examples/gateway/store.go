package main

import (
	"errors"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/floodgate-go/floodgate/limiter"
	"github.com/floodgate-go/floodgate/store"
	"github.com/floodgate-go/floodgate/store/redisstore"
)

// storeOptions returns the limiter options that put the per-IP limit and
// the plans on the Redis at addr, each under its own key prefix, so that
// every gateway instance using that Redis shares the limits; a decision
// waits at most timeout for Redis (0: the limiter's default, 100 ms). With
// no addr, the limits are per instance.
func storeOptions(addr string, failClosed bool, timeout time.Duration) (ipOpts, planOpts []limiter.Option, closeStore func(), err error) {
	if addr == "" {
		return nil, nil, func() {}, nil
	}
	// The limiters bound each call (store.Config.Timeout) and stop calling a
	// Redis that keeps failing (the breaker): the client need not retry.
	// With go-redis's defaults, a refused connection is dialled 5 times,
	// 100 ms apart, so every call during an outage would wait out the
	// whole timeout.
	client := redis.NewClient(&redis.Options{Addr: addr, ContextTimeoutEnabled: true, MaxRetries: -1, DialerRetries: 1})
	ipStore, err := redisstore.New(client, redisstore.WithPrefix("gateway:ip"))
	if err != nil {
		return nil, nil, nil, errors.Join(err, client.Close())
	}
	planStore, err := redisstore.New(client, redisstore.WithPrefix("gateway:plan"))
	if err != nil {
		return nil, nil, nil, errors.Join(err, client.Close())
	}
	ipOpts, planOpts = remoteOptions(ipStore, planStore, failClosed, timeout)
	return ipOpts, planOpts, func() { client.Close() }, nil
}

// remoteOptions puts the per-IP limit on ipStore and the plans on
// planStore. When a Store cannot decide, the failure mode does, and the
// gateway applies that decision like any other (see gateway.ServeHTTP):
// failing open (the default), each instance enforces the limits on its own
// buckets; failing closed, every request is denied (429) until the Store
// answers again. The same applies to a Store that takes longer than
// timeout to answer.
func remoteOptions(ipStore, planStore store.Store, failClosed bool, timeout time.Duration) (ipOpts, planOpts []limiter.Option) {
	return []limiter.Option{limiter.WithStore(store.Config{Store: ipStore, FailClosed: failClosed, Timeout: timeout})},
		[]limiter.Option{limiter.WithStore(store.Config{Store: planStore, FailClosed: failClosed, Timeout: timeout})}
}
