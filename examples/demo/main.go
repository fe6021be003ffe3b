// Command demo shows floodgate protecting an HTTP server, in one command and
// about ten seconds, with nothing to set up:
//
//	go run ./examples/demo
//
// It starts a floodgate-protected server on 127.0.0.1 behind a simulated
// trusted reverse proxy and drives four simulated clients against it:
//
//   - polite, under its limit: never denied;
//   - newcomer, as polite but first seen halfway through the run, in the
//     middle of the spray: never denied either;
//   - greedy, at ten times its limit: held to Burst + Rate×T;
//   - spoofer, as greedy but forging X-Forwarded-For, X-Real-IP and
//     True-Client-IP on every request: held to the same bound, because only
//     the trusted proxy's hop is believed;
//   - sprayer, rotating thousands of source addresses: the table of tracked
//     clients stays under its cap, and the addresses beyond it are decided
//     on their own cells, so that newcomers are not locked out.
//
// It prints a table every second and a verdict per client at the end.
// With -instances 3 it runs three server instances that share one Redis
// (an embedded miniredis, or -redis host:port for a real one) and shows the
// limit holding across all of them.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"time"
)

func main() {
	cfg := defaultConfig()
	flag.DurationVar(&cfg.duration, "duration", cfg.duration, "how long to drive the clients")
	flag.Float64Var(&cfg.rate, "rate", cfg.rate, "policy: requests per second per client")
	flag.IntVar(&cfg.burst, "burst", cfg.burst, "policy: burst")
	flag.IntVar(&cfg.maxKeys, "maxkeys", cfg.maxKeys, "cap on tracked clients per instance")
	flag.IntVar(&cfg.instances, "instances", cfg.instances, "server instances; more than one share a Redis")
	flag.StringVar(&cfg.redisAddr, "redis", cfg.redisAddr, "Redis host:port for -instances > 1 (default: an embedded miniredis)")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	ok, err := run(ctx, cfg, os.Stdout, tcp{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
	if !ok {
		os.Exit(1) // a verdict failed: that would be a bug in floodgate
	}
}

type config struct {
	duration  time.Duration
	rate      float64
	burst     int
	maxKeys   int
	instances int
	redisAddr string
	sprayers  int // distinct addresses the sprayer rotates through
}

func defaultConfig() config {
	return config{duration: 10 * time.Second, rate: 10, burst: 20, maxKeys: 1000, instances: 1, sprayers: 5000}
}
