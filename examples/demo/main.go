// Command demo shows floodgate protecting an HTTP server, in one command and
// about ten seconds, with nothing to set up:
//
//	go run ./examples/demo
//
// It starts a floodgate-protected server on 127.0.0.1 behind a simulated
// trusted reverse proxy and drives five simulated clients against it:
//
//   - polite, under its limit: never denied;
//   - newcomer, as polite but first seen halfway through the run, in the
//     middle of the spray: never denied either;
//   - greedy, at ten times its limit: held to Burst + Rate×T;
//   - spoofer, as greedy but forging X-Forwarded-For, X-Real-IP and
//     True-Client-IP on every request: held to the same bound, because only
//     the trusted proxy's hop is believed;
//   - sprayer, rotating half again as many source addresses as the table
//     holds, and coming back to each before its bucket refills, so that the
//     table stays full of buckets that cannot be retired: the table stays
//     under its cap, and the addresses beyond it are decided on their cells
//     (hundreds of requests a second), and so are the polite clients,
//     which arrive once the table is full.
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

	"github.com/redis/go-redis/v9"
)

func main() {
	cfg := defaultConfig()
	flag.DurationVar(&cfg.duration, "duration", cfg.duration, "how long to drive the clients")
	flag.Float64Var(&cfg.rate, "rate", cfg.rate, "policy: requests per second per client")
	flag.IntVar(&cfg.burst, "burst", cfg.burst, "policy: burst")
	flag.IntVar(&cfg.maxKeys, "maxkeys", cfg.maxKeys, "cap on tracked clients per instance")
	flag.IntVar(&cfg.instances, "instances", cfg.instances, "server instances; more than one share a Redis")
	flag.StringVar(&cfg.redisAddr, "redis", cfg.redisAddr, "Redis host:port for -instances > 1 (default: an embedded miniredis)")
	flag.IntVar(&cfg.sprayers, "sprayers", cfg.sprayers, "addresses the sprayer rotates through (default 0: 1.5 × -maxkeys)")
	flag.Float64Var(&cfg.sprayRate, "sprayrate", cfg.sprayRate, "sprayer: requests per second (default 0: each address again within 3/4 of a token's refill)")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	res, err := run(ctx, cfg, os.Stdout, tcp{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
	if !res.ok {
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
	// redisOptions, if set, are the options of the client for redisAddr
	// (Addr is filled in); nil means go-redis's defaults with
	// ContextTimeoutEnabled.
	redisOptions *redis.Options
	sprayers     int     // distinct addresses the sprayer rotates through; 0: 1.5 × maxKeys
	sprayRate    float64 // the sprayer's requests per second; 0: sprayers × rate × 4/3
}

// defaultConfig is the demo's default run. A bucket hit once refills in
// 1/rate, and then makeRoom can retire it for a new key; to keep the table
// full of buckets that still remember spending, the sprayer must come back
// to each address sooner, which costs it maxKeys × rate requests a second
// (issue 12: that is what filling the table costs an attacker). The policy
// is slow and the cap small so that this stays cheap: 150 addresses at
// 1,000 requests/s come back to each every 0.15 s, when 0.75 of the token
// it spent has refilled.
func defaultConfig() config {
	return config{duration: 10 * time.Second, rate: 5, burst: 10, maxKeys: 100, instances: 1}
}

// spray is the sprayer's addresses and rate: cfg's, or derived from the
// policy and the cap.
func (cfg config) spray() (addrs int, perSecond float64) {
	addrs, perSecond = cfg.sprayers, cfg.sprayRate
	if addrs == 0 {
		addrs = cfg.maxKeys + cfg.maxKeys/2
	}
	if perSecond == 0 {
		perSecond = float64(addrs) * cfg.rate * 4 / 3
	}
	return addrs, perSecond
}
