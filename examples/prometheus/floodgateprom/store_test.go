package floodgateprom_test

import (
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"

	"github.com/floodgate-go/floodgate/examples/prometheus/floodgateprom"
	"github.com/floodgate-go/floodgate/limiter"
	"github.com/floodgate-go/floodgate/store"
	"github.com/floodgate-go/floodgate/store/redisstore"
)

// TestStoreMetrics runs a Limiter on Redis (miniredis), then kills Redis:
// round trips and deny-cache hits while it is up; errors, failure-mode
// decisions and an open breaker once it is down.
func TestStoreMetrics(t *testing.T) {
	m, err := miniredis.Run()
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	client := redis.NewClient(&redis.Options{Addr: m.Addr(), ContextTimeoutEnabled: true, MaxRetries: -1})
	defer client.Close()
	s, err := redisstore.New(client)
	if err != nil {
		t.Fatal(err)
	}
	l, err := limiter.New(limiter.PerHour(2), limiter.WithStore(store.Config{
		Store:           s,
		Timeout:         time.Second,
		BreakerFailures: 3,
		BreakerCooldown: time.Hour, // stays open for the test
	}))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(floodgateprom.NewCollector(l))
	names := []string{
		"floodgate_decisions_total", "floodgate_fallback_decisions_total",
		"floodgate_store_round_trips_total", "floodgate_store_errors_total",
		"floodgate_store_deny_cache_hits_total", "floodgate_store_prefetch_hits_total",
		"floodgate_store_breaker_opens_total", "floodgate_store_breaker_open",
		"floodgate_store_cached_keys",
	}
	compare := func(want string) {
		t.Helper()
		if err := testutil.GatherAndCompare(reg, strings.NewReader(want), names...); err != nil {
			t.Fatal(err)
		}
	}

	// Redis up: two admissions (round trips; the second spends the last
	// token, so the key enters the deny cache), then a denial from the
	// cache, without a round trip.
	allow(t, l, "192.0.2.1", 3)
	compare(`
# HELP floodgate_decisions_total Decisions made, by outcome; an admission undone (an AllowAll another limit denied, a cancelled Wait) counts as denied.
# TYPE floodgate_decisions_total counter
floodgate_decisions_total{outcome="allowed"} 2
floodgate_decisions_total{outcome="denied"} 1
# HELP floodgate_fallback_decisions_total Decisions (included in floodgate_decisions_total) made by the failure mode because the Store failed or its circuit breaker was open.
# TYPE floodgate_fallback_decisions_total counter
floodgate_fallback_decisions_total 0
# HELP floodgate_store_breaker_open 1 while the Store's circuit breaker is open (or half-open), else 0.
# TYPE floodgate_store_breaker_open gauge
floodgate_store_breaker_open 0
# HELP floodgate_store_breaker_opens_total Times the Store's circuit breaker opened.
# TYPE floodgate_store_breaker_opens_total counter
floodgate_store_breaker_opens_total 0
# HELP floodgate_store_cached_keys Keys with a deny-cache or prefetch entry.
# TYPE floodgate_store_cached_keys gauge
floodgate_store_cached_keys 1
# HELP floodgate_store_deny_cache_hits_total Denials answered from the local deny cache, without a Store round trip.
# TYPE floodgate_store_deny_cache_hits_total counter
floodgate_store_deny_cache_hits_total 1
# HELP floodgate_store_errors_total Store calls that failed or timed out.
# TYPE floodgate_store_errors_total counter
floodgate_store_errors_total 0
# HELP floodgate_store_prefetch_hits_total Admissions paid for by prefetched tokens, without a Store round trip.
# TYPE floodgate_store_prefetch_hits_total counter
floodgate_store_prefetch_hits_total 0
# HELP floodgate_store_round_trips_total Store calls that returned a decision.
# TYPE floodgate_store_round_trips_total counter
floodgate_store_round_trips_total 2
`)

	// Redis down: three calls fail (errors) and open the breaker; the
	// fourth decision needs no call. All four are made by the failure mode
	// (failing open to local buckets of 2).
	m.Close()
	allow(t, l, "192.0.2.2", 4)
	compare(`
# HELP floodgate_decisions_total Decisions made, by outcome; an admission undone (an AllowAll another limit denied, a cancelled Wait) counts as denied.
# TYPE floodgate_decisions_total counter
floodgate_decisions_total{outcome="allowed"} 4
floodgate_decisions_total{outcome="denied"} 3
# HELP floodgate_fallback_decisions_total Decisions (included in floodgate_decisions_total) made by the failure mode because the Store failed or its circuit breaker was open.
# TYPE floodgate_fallback_decisions_total counter
floodgate_fallback_decisions_total 4
# HELP floodgate_store_breaker_open 1 while the Store's circuit breaker is open (or half-open), else 0.
# TYPE floodgate_store_breaker_open gauge
floodgate_store_breaker_open 1
# HELP floodgate_store_breaker_opens_total Times the Store's circuit breaker opened.
# TYPE floodgate_store_breaker_opens_total counter
floodgate_store_breaker_opens_total 1
# HELP floodgate_store_cached_keys Keys with a deny-cache or prefetch entry.
# TYPE floodgate_store_cached_keys gauge
floodgate_store_cached_keys 1
# HELP floodgate_store_deny_cache_hits_total Denials answered from the local deny cache, without a Store round trip.
# TYPE floodgate_store_deny_cache_hits_total counter
floodgate_store_deny_cache_hits_total 1
# HELP floodgate_store_errors_total Store calls that failed or timed out.
# TYPE floodgate_store_errors_total counter
floodgate_store_errors_total 3
# HELP floodgate_store_prefetch_hits_total Admissions paid for by prefetched tokens, without a Store round trip.
# TYPE floodgate_store_prefetch_hits_total counter
floodgate_store_prefetch_hits_total 0
# HELP floodgate_store_round_trips_total Store calls that returned a decision.
# TYPE floodgate_store_round_trips_total counter
floodgate_store_round_trips_total 2
`)
}

// TestStorePrefetchMetrics: with Prefetch 4, a key's second round trip
// finds it hot and takes 4 extra tokens; the next 4 admissions spend them
// locally, and the 7th request needs a round trip again.
func TestStorePrefetchMetrics(t *testing.T) {
	m, err := miniredis.Run()
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	client := redis.NewClient(&redis.Options{Addr: m.Addr(), ContextTimeoutEnabled: true})
	defer client.Close()
	s, err := redisstore.New(client)
	if err != nil {
		t.Fatal(err)
	}
	l, err := limiter.New(limiter.PerHour(100), limiter.WithStore(store.Config{Store: s, Prefetch: 4, Timeout: time.Second}))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	c := floodgateprom.NewCollector(l)
	allow(t, l, "192.0.2.1", 7)
	for name, want := range map[string]float64{
		"floodgate_store_round_trips_total":   3,
		"floodgate_store_prefetch_hits_total": 4,
		"floodgate_store_cached_keys":         1,
	} {
		if got := testutil.ToFloat64(only(c, name)); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
}

// only is c with just the metric named name, for testutil.ToFloat64.
func only(c prometheus.Collector, name string) prometheus.Collector {
	return prometheus.CollectorFunc(func(ch chan<- prometheus.Metric) {
		all := make(chan prometheus.Metric)
		go func() { c.Collect(all); close(all) }()
		for m := range all {
			if strings.Contains(m.Desc().String(), `fqName: "`+name+`"`) {
				ch <- m
			}
		}
	})
}
