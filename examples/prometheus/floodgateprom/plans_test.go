package floodgateprom_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"testing/synctest"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"golang.org/x/time/rate"

	"github.com/floodgate-go/floodgate/examples/prometheus/floodgateprom"
	"github.com/floodgate-go/floodgate/limiter"
)

// TestPlansFollowUpdate: the plan label follows Plans.Update. A plan added
// appears at the next scrape, a removed one disappears, a changed one keeps
// its counts and reports its new policy.
func TestPlansFollowUpdate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		plans, err := limiter.NewPlans(map[string]limiter.Policy{
			"free": {Rate: 1, Burst: 1},
			"pro":  {Rate: 10, Burst: 3},
		})
		if err != nil {
			t.Fatal(err)
		}
		defer plans.Close()
		reg := prometheus.NewPedanticRegistry()
		reg.MustRegister(floodgateprom.NewPlansCollector(plans, floodgateprom.WithConstLabels(prometheus.Labels{"limiter": "api"})))
		ctx := context.Background()
		for range 2 {
			plans.Allow(ctx, "free", "k")
		}
		for range 5 {
			plans.Allow(ctx, "pro", "k")
		}
		compare := func(want string) {
			t.Helper()
			if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
				"floodgate_decisions_total", "floodgate_policy_burst_tokens"); err != nil {
				t.Fatal(err)
			}
		}
		compare(`
# HELP floodgate_decisions_total Decisions made, by outcome; an admission undone (an AllowAll another limit denied, a cancelled Wait) counts as denied.
# TYPE floodgate_decisions_total counter
floodgate_decisions_total{limiter="api",outcome="allowed",plan="free"} 1
floodgate_decisions_total{limiter="api",outcome="denied",plan="free"} 1
floodgate_decisions_total{limiter="api",outcome="allowed",plan="pro"} 3
floodgate_decisions_total{limiter="api",outcome="denied",plan="pro"} 2
# HELP floodgate_policy_burst_tokens The policy's burst: the most tokens a bucket holds.
# TYPE floodgate_policy_burst_tokens gauge
floodgate_policy_burst_tokens{limiter="api",plan="free"} 1
floodgate_policy_burst_tokens{limiter="api",plan="pro"} 3
`)

		// free goes, team comes, pro's burst grows.
		if err := plans.Update(map[string]limiter.Policy{
			"pro":  {Rate: 10, Burst: 5},
			"team": {Rate: 100, Burst: 100},
		}); err != nil {
			t.Fatal(err)
		}
		plans.Allow(ctx, "team", "k")
		compare(`
# HELP floodgate_decisions_total Decisions made, by outcome; an admission undone (an AllowAll another limit denied, a cancelled Wait) counts as denied.
# TYPE floodgate_decisions_total counter
floodgate_decisions_total{limiter="api",outcome="allowed",plan="pro"} 3
floodgate_decisions_total{limiter="api",outcome="denied",plan="pro"} 2
floodgate_decisions_total{limiter="api",outcome="allowed",plan="team"} 1
floodgate_decisions_total{limiter="api",outcome="denied",plan="team"} 0
# HELP floodgate_policy_burst_tokens The policy's burst: the most tokens a bucket holds.
# TYPE floodgate_policy_burst_tokens gauge
floodgate_policy_burst_tokens{limiter="api",plan="pro"} 5
floodgate_policy_burst_tokens{limiter="api",plan="team"} 100
`)
		if n := testutil.CollectAndCount(floodgateprom.NewPlansCollector(plans)); n != 2*17 {
			t.Errorf("%d metrics for 2 plans, want %d", n, 2*17)
		}

		plans.Close() // no plans: nothing to report
		if n := testutil.CollectAndCount(floodgateprom.NewPlansCollector(plans)); n != 0 {
			t.Errorf("%d metrics after Close, want 0", n)
		}
	})
}

// TestPlansScrapeDuringUpdate scrapes while Updates add, remove and
// recreate plans (closing their Limiters between the listing and Stats):
// every scrape succeeds, with no panic, and reports only plans it listed.
// Run with -race.
func TestPlansScrapeDuringUpdate(t *testing.T) {
	plans, err := limiter.NewPlans(map[string]limiter.Policy{"a": limiter.PerSecond(1)})
	if err != nil {
		t.Fatal(err)
	}
	defer plans.Close()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(floodgateprom.NewPlansCollector(plans))

	tables := []map[string]limiter.Policy{
		{"a": limiter.PerSecond(1)},
		{"a": limiter.PerSecond(2), "b": limiter.PerSecond(1)},
		{"b": {Rate: limiter.PerSecond(1).Rate, Burst: 4}, "c": limiter.PerSecond(1)},
		{"c": {Rate: rate.Inf, Burst: 1}}, // rate.Inf: c's Limiter is recreated
		{},
	}
	var wg sync.WaitGroup
	done := make(chan struct{})
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-done:
				return
			default:
			}
			if err := plans.Update(tables[i%len(tables)]); err != nil {
				t.Error(err)
				return
			}
			for _, p := range []string{"a", "b", "c"} {
				plans.Allow(context.Background(), p, "k")
			}
		}
	})
	for range 300 {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			for _, m := range mf.GetMetric() {
				if p := m.GetLabel()[len(m.GetLabel())-1]; p.GetName() == "plan" && !strings.Contains("abc", p.GetValue()) {
					t.Fatalf("plan %q", p.GetValue())
				}
			}
		}
	}
	close(done)
	wg.Wait()
}
