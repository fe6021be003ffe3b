package main

import (
	"errors"

	"github.com/redis/go-redis/v9"

	"github.com/floodgate-go/floodgate/limiter"
	"github.com/floodgate-go/floodgate/store"
)

// storeOptions returns the limiter options that put the per-IP limit and
// the plans on the Redis at addr, each under its own key prefix, so that
// every gateway instance using that Redis shares the limits. With no addr,
// the limits are per instance.
func storeOptions(addr string) (ipOpts, planOpts []limiter.Option, closeStore func(), err error) {
	if addr == "" {
		return nil, nil, func() {}, nil
	}
	client := redis.NewClient(&redis.Options{Addr: addr, ContextTimeoutEnabled: true})
	ipStore, err := store.NewRedis(client, store.WithPrefix("gateway:ip"))
	if err != nil {
		return nil, nil, nil, errors.Join(err, client.Close())
	}
	planStore, err := store.NewRedis(client, store.WithPrefix("gateway:plan"))
	if err != nil {
		return nil, nil, nil, errors.Join(err, client.Close())
	}
	// Failing open (the default): during a Redis outage each instance
	// enforces the limits on its own.
	return []limiter.Option{limiter.WithStore(limiter.StoreConfig{Store: ipStore})},
		[]limiter.Option{limiter.WithStore(limiter.StoreConfig{Store: planStore})}, func() { client.Close() }, nil
}
