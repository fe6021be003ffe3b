package floodgateprom_test

import (
	"context"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/goleak"

	"github.com/floodgate-go/floodgate/examples/prometheus/floodgateprom"
	"github.com/floodgate-go/floodgate/limiter"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func allow(t *testing.T, l *limiter.Limiter, key string, n int) {
	t.Helper()
	for range n {
		if _, err := l.Allow(context.Background(), key); err != nil {
			t.Fatal(err)
		}
	}
}

// TestCollectorExactValues makes a known sequence of decisions with time
// frozen (synctest) and compares every metric to its exact value: burst 3,
// five requests from one client: 3 allowed, 2 denied; with the table capped
// at 2 keys, a third client is decided by the overflow bucket (and wakes
// the sweeper).
func TestCollectorExactValues(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l, err := limiter.New(limiter.Policy{Rate: 1, Burst: 3}, limiter.WithMaxKeys(2))
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		c := floodgateprom.NewCollector(l, floodgateprom.WithConstLabels(prometheus.Labels{"limiter": "api"}))

		allow(t, l, "a", 5)
		allow(t, l, "b", 1)
		allow(t, l, "c", 1)
		synctest.Wait() // the full table woke the sweeper: one pass, which retires nothing
		want := `
# HELP floodgate_decisions_total Decisions made, by outcome; an admission undone (an AllowAll another limit denied, a cancelled Wait) counts as denied.
# TYPE floodgate_decisions_total counter
floodgate_decisions_total{limiter="api",outcome="allowed"} 5
floodgate_decisions_total{limiter="api",outcome="denied"} 2
# HELP floodgate_fallback_decisions_total Decisions (included in floodgate_decisions_total) made by the failure mode because the Store failed or its circuit breaker was open.
# TYPE floodgate_fallback_decisions_total counter
floodgate_fallback_decisions_total{limiter="api"} 0
# HELP floodgate_keys Keys tracked now.
# TYPE floodgate_keys gauge
floodgate_keys{limiter="api"} 2
# HELP floodgate_keys_max The cap on tracked keys (WithMaxKeys).
# TYPE floodgate_keys_max gauge
floodgate_keys_max{limiter="api"} 2
# HELP floodgate_overflow_decisions_total Decisions (included in floodgate_decisions_total) made by the shared overflow bucket because the key table was full.
# TYPE floodgate_overflow_decisions_total counter
floodgate_overflow_decisions_total{limiter="api"} 1
# HELP floodgate_policy_burst_tokens The policy's burst: the most tokens a bucket holds.
# TYPE floodgate_policy_burst_tokens gauge
floodgate_policy_burst_tokens{limiter="api"} 3
# HELP floodgate_policy_tokens_per_second The policy's refill rate (+Inf for no limit).
# TYPE floodgate_policy_tokens_per_second gauge
floodgate_policy_tokens_per_second{limiter="api"} 1
# HELP floodgate_retired_keys_total Buckets removed because they had refilled to their burst.
# TYPE floodgate_retired_keys_total counter
floodgate_retired_keys_total{limiter="api"} 0
# HELP floodgate_store_breaker_open 1 while the Store's circuit breaker is open (or half-open), else 0.
# TYPE floodgate_store_breaker_open gauge
floodgate_store_breaker_open{limiter="api"} 0
# HELP floodgate_store_breaker_opens_total Times the Store's circuit breaker opened.
# TYPE floodgate_store_breaker_opens_total counter
floodgate_store_breaker_opens_total{limiter="api"} 0
# HELP floodgate_store_cached_keys Keys with a deny-cache or prefetch entry.
# TYPE floodgate_store_cached_keys gauge
floodgate_store_cached_keys{limiter="api"} 0
# HELP floodgate_store_deny_cache_hits_total Denials answered from the local deny cache, without a Store round trip.
# TYPE floodgate_store_deny_cache_hits_total counter
floodgate_store_deny_cache_hits_total{limiter="api"} 0
# HELP floodgate_store_errors_total Store calls that failed or timed out.
# TYPE floodgate_store_errors_total counter
floodgate_store_errors_total{limiter="api"} 0
# HELP floodgate_store_prefetch_hits_total Admissions paid for by prefetched tokens, without a Store round trip.
# TYPE floodgate_store_prefetch_hits_total counter
floodgate_store_prefetch_hits_total{limiter="api"} 0
# HELP floodgate_store_round_trips_total Store calls that returned a decision.
# TYPE floodgate_store_round_trips_total counter
floodgate_store_round_trips_total{limiter="api"} 0
# HELP floodgate_sweeps_total Completed sweeper passes.
# TYPE floodgate_sweeps_total counter
floodgate_sweeps_total{limiter="api"} 1
`
		if err := testutil.CollectAndCompare(c, strings.NewReader(want)); err != nil {
			t.Fatal(err)
		}
		if n := testutil.CollectAndCount(c); n != 17 {
			t.Errorf("%d metrics, want 17", n)
		}
	})
}

// TestCollectorSweeps lets the buckets refill (synctest's clock) so that
// the sweeper retires them: floodgate_keys falls back to 0 and the
// retirements and passes are counted.
func TestCollectorSweeps(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l, err := limiter.New(limiter.Policy{Rate: 1, Burst: 3}, limiter.WithSweepInterval(time.Second))
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		reg := prometheus.NewPedanticRegistry()
		reg.MustRegister(floodgateprom.NewCollector(l))
		allow(t, l, "a", 3)
		allow(t, l, "b", 1)
		time.Sleep(10*time.Second + time.Millisecond)
		synctest.Wait()
		want := `
# HELP floodgate_keys Keys tracked now.
# TYPE floodgate_keys gauge
floodgate_keys 0
# HELP floodgate_retired_keys_total Buckets removed because they had refilled to their burst.
# TYPE floodgate_retired_keys_total counter
floodgate_retired_keys_total 2
# HELP floodgate_sweeps_total Completed sweeper passes.
# TYPE floodgate_sweeps_total counter
floodgate_sweeps_total 10
`
		if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
			"floodgate_keys", "floodgate_retired_keys_total", "floodgate_sweeps_total"); err != nil {
			t.Fatal(err)
		}
	})
}

// TestCollectAndLint: promlint finds nothing to fix in either collector's
// metrics (names, units, _total on counters, help text).
func TestCollectAndLint(t *testing.T) {
	l, err := limiter.New(limiter.PerSecond(10))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	allow(t, l, "a", 1)
	plans, err := limiter.NewPlans(map[string]limiter.Policy{"free": limiter.PerMinute(1), "pro": limiter.PerSecond(10)})
	if err != nil {
		t.Fatal(err)
	}
	defer plans.Close()
	for name, c := range map[string]prometheus.Collector{
		"Collector":      floodgateprom.NewCollector(l),
		"PlansCollector": floodgateprom.NewPlansCollector(plans),
	} {
		problems, err := testutil.CollectAndLint(c)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range problems {
			t.Errorf("%s: %s: %s", name, p.Metric, p.Text)
		}
	}
}

// counters returns every counter of g by name and labels.
func counters(t *testing.T, g prometheus.Gatherer) map[string]float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetType() != dto.MetricType_COUNTER {
			continue
		}
		for _, m := range mf.GetMetric() {
			id := mf.GetName()
			for _, lp := range m.GetLabel() {
				id += "," + lp.GetName() + "=" + lp.GetValue()
			}
			out[id] = m.GetCounter().GetValue()
		}
	}
	return out
}

// TestCountersNeverDecrease scrapes between bursts of decisions, sweeps and
// retirements: no counter is ever lower than in the scrape before.
func TestCountersNeverDecrease(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l, err := limiter.New(limiter.Policy{Rate: 2, Burst: 2}, limiter.WithMaxKeys(4), limiter.WithSweepInterval(time.Second))
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		reg := prometheus.NewPedanticRegistry()
		reg.MustRegister(floodgateprom.NewCollector(l))
		prev := counters(t, reg)
		if len(prev) != 11 {
			t.Fatalf("%d counters, want 11: %v", len(prev), prev)
		}
		for i := range 20 {
			for k := range 6 {
				allow(t, l, string(rune('a'+(i+k)%8)), i%4)
			}
			time.Sleep(time.Duration(i%3) * 700 * time.Millisecond)
			got := counters(t, reg)
			for id, v := range got {
				if v < prev[id] {
					t.Errorf("scrape %d: %s went from %v to %v", i, id, prev[id], v)
				}
			}
			prev = got
		}
		if prev["floodgate_decisions_total,outcome=denied"] == 0 || prev["floodgate_retired_keys_total"] == 0 ||
			prev["floodgate_overflow_decisions_total"] == 0 {
			t.Errorf("the sequence should deny, overflow and retire: %v", prev)
		}
	})
}

// TestTwoLimitersNeedLabels: a registry refuses a second Limiter's
// collector with the same labels, and takes it with WithConstLabels.
func TestTwoLimitersNeedLabels(t *testing.T) {
	a, err := limiter.New(limiter.PerSecond(1))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := limiter.New(limiter.PerSecond(2))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()

	reg := prometheus.NewRegistry()
	reg.MustRegister(floodgateprom.NewCollector(a))
	if err := reg.Register(floodgateprom.NewCollector(b)); err == nil {
		t.Fatal("registered two unlabelled limiters")
	}

	reg = prometheus.NewPedanticRegistry()
	reg.MustRegister(
		floodgateprom.NewCollector(a, floodgateprom.WithConstLabels(prometheus.Labels{"limiter": "a"})),
		floodgateprom.NewCollector(b, floodgateprom.WithConstLabels(prometheus.Labels{"limiter": "b"})),
	)
	want := `
# HELP floodgate_policy_burst_tokens The policy's burst: the most tokens a bucket holds.
# TYPE floodgate_policy_burst_tokens gauge
floodgate_policy_burst_tokens{limiter="a"} 1
floodgate_policy_burst_tokens{limiter="b"} 2
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "floodgate_policy_burst_tokens"); err != nil {
		t.Fatal(err)
	}
	// A constant label may not take a variable label's name.
	if err := prometheus.NewRegistry().Register(floodgateprom.NewPlansCollector(nil,
		floodgateprom.WithConstLabels(prometheus.Labels{"plan": "x"}))); err == nil {
		t.Error("registered a collector with a constant label named plan")
	}
}

// TestClosedLimiter: a collector of a closed Limiter still reports its
// last counts, and does not panic.
func TestClosedLimiter(t *testing.T) {
	l, err := limiter.New(limiter.PerMinute(1))
	if err != nil {
		t.Fatal(err)
	}
	allow(t, l, "a", 2)
	l.Close()
	c := floodgateprom.NewCollector(l)
	if n := testutil.CollectAndCount(c, "floodgate_decisions_total"); n != 2 {
		t.Fatalf("%d decision series, want 2", n)
	}
	if err := testutil.CollectAndCompare(c, strings.NewReader(`
# HELP floodgate_decisions_total Decisions made, by outcome; an admission undone (an AllowAll another limit denied, a cancelled Wait) counts as denied.
# TYPE floodgate_decisions_total counter
floodgate_decisions_total{outcome="allowed"} 1
floodgate_decisions_total{outcome="denied"} 1
`), "floodgate_decisions_total"); err != nil {
		t.Fatal(err)
	}
}
