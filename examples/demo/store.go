package main

import (
	"errors"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/floodgate-go/floodgate/limiter"
	"github.com/floodgate-go/floodgate/store"
	"github.com/floodgate-go/floodgate/store/redisstore"
)

// shared is the remote tier the instances share, if any.
type shared struct {
	opts     []limiter.Option
	describe string
	close    func()
}

// sharedStore connects the instances to one Redis when there are several:
// cfg.redisAddr, or an embedded miniredis on a loopback port.
func sharedStore(cfg config) (*shared, error) {
	if cfg.instances == 1 {
		return &shared{close: func() {}}, nil
	}
	addr, describe := cfg.redisAddr, " sharing Redis at "+cfg.redisAddr
	stopEmbedded := func() {}
	if addr == "" {
		m, err := miniredis.Run()
		if err != nil {
			return nil, err
		}
		addr, describe, stopEmbedded = m.Addr(), " sharing an embedded miniredis", m.Close
	}
	opts := redis.Options{ContextTimeoutEnabled: true}
	if cfg.redisOptions != nil {
		opts = *cfg.redisOptions
	}
	opts.Addr = addr
	client := redis.NewClient(&opts)
	s, err := redisstore.New(client, redisstore.WithPrefix("floodgate-demo"))
	if err != nil {
		err = errors.Join(err, client.Close())
		stopEmbedded()
		return nil, err
	}
	closeAll := func() {
		client.Close()
		stopEmbedded()
	}
	return &shared{opts: []limiter.Option{limiter.WithStore(store.Config{Store: s})}, describe: describe, close: closeAll}, nil
}
