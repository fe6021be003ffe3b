package redisstore_test

import (
	"context"
	"fmt"
	"log"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/floodgate-go/floodgate/limiter"
	"github.com/floodgate-go/floodgate/store"
	"github.com/floodgate-go/floodgate/store/redisstore"
)

func ExampleNew() {
	m, err := miniredis.Run() // stands in for a real Redis
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()

	// ContextTimeoutEnabled lets the limiter's per-call timeout reach the
	// socket; redisstore.New refuses a client without it.
	client := redis.NewClient(&redis.Options{Addr: m.Addr(), ContextTimeoutEnabled: true})
	defer client.Close()
	s, err := redisstore.New(client, redisstore.WithPrefix("api"))
	if err != nil {
		log.Fatal(err)
	}
	// Every instance of the service builds the same limiter on the same
	// Redis; the limit of 2 per minute holds across all of them.
	l, err := limiter.New(limiter.PerMinute(2),
		limiter.WithStore(store.Config{Store: s, LocalShare: 1.0 / 3})) // fail open, a third each
	if err != nil {
		log.Fatal(err)
	}
	defer l.Close()

	for range 3 {
		d, err := l.Allow(context.Background(), "192.0.2.1")
		if err != nil { // no decision: a closed limiter, a bad cost, ctx done
			log.Fatal(err)
		} // d.Fallback: Redis could not decide and the failure mode did
		fmt.Println(d.Allowed, d.Remaining)
	}
	// Output:
	// true 1
	// true 0
	// false 0
}

// When Redis is down, the limiter keeps deciding: its failure mode does
// (here the default, failing open to this instance's own buckets), and the
// Decision says so. An error would mean that no decision was made.
func ExampleNew_outage() {
	m, err := miniredis.Run()
	if err != nil {
		log.Fatal(err)
	}
	client := redis.NewClient(&redis.Options{Addr: m.Addr(), ContextTimeoutEnabled: true, MaxRetries: -1})
	defer client.Close()
	s, err := redisstore.New(client)
	if err != nil {
		log.Fatal(err)
	}
	l, err := limiter.New(limiter.PerMinute(2), limiter.WithStore(store.Config{Store: s}))
	if err != nil {
		log.Fatal(err)
	}
	defer l.Close()

	d, _ := l.Allow(context.Background(), "192.0.2.1")
	fmt.Println("Redis up:  ", d.Allowed, d.Fallback)
	m.Close() // Redis goes away
	for range 3 {
		d, err := l.Allow(context.Background(), "192.0.2.1")
		if err != nil {
			log.Fatal(err) // never for an outage
		}
		fmt.Println("Redis down:", d.Allowed, d.Fallback)
	}
	// Output:
	// Redis up:   true false
	// Redis down: true true
	// Redis down: true true
	// Redis down: false true
}
