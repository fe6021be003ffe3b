package floodgateprom_test

import (
	"context"
	"fmt"
	"log"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/expfmt"

	"github.com/floodgate-go/floodgate/examples/prometheus/floodgateprom"
	"github.com/floodgate-go/floodgate/limiter"
)

func ExampleNewCollector() {
	l, err := limiter.New(limiter.PerMinute(3))
	if err != nil {
		log.Fatal(err)
	}
	defer l.Close()

	// Register on the registry your /metrics handler serves, for example
	// promhttp.HandlerFor(reg, promhttp.HandlerOpts{}) on an operator
	// listener. The label tells this limiter from others on the registry.
	reg := prometheus.NewRegistry()
	reg.MustRegister(floodgateprom.NewCollector(l,
		floodgateprom.WithConstLabels(prometheus.Labels{"limiter": "api"})))

	for range 5 {
		l.Allow(context.Background(), "192.0.2.1")
	}
	// What a scrape of reg shows:
	text, err := testutil.GatherAndFormat(reg, expfmt.TypeTextPlain, "floodgate_decisions_total")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Print(string(text))
	// Output:
	// # HELP floodgate_decisions_total Decisions made, by outcome; an admission undone (an AllowAll another limit denied, a cancelled Wait) counts as denied.
	// # TYPE floodgate_decisions_total counter
	// floodgate_decisions_total{limiter="api",outcome="allowed"} 3
	// floodgate_decisions_total{limiter="api",outcome="denied"} 2
}

func ExampleNewPlansCollector() {
	plans, err := limiter.NewPlans(map[string]limiter.Policy{
		"free": limiter.PerMinute(1),
		"pro":  limiter.PerMinute(100),
	})
	if err != nil {
		log.Fatal(err)
	}
	defer plans.Close()

	reg := prometheus.NewRegistry()
	reg.MustRegister(floodgateprom.NewPlansCollector(plans))

	for range 2 {
		plans.Allow(context.Background(), "free", "192.0.2.1")
		plans.Allow(context.Background(), "pro", "192.0.2.2")
	}
	text, err := testutil.GatherAndFormat(reg, expfmt.TypeTextPlain, "floodgate_decisions_total", "floodgate_policy_burst_tokens")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Print(string(text))
	// Output:
	// # HELP floodgate_decisions_total Decisions made, by outcome; an admission undone (an AllowAll another limit denied, a cancelled Wait) counts as denied.
	// # TYPE floodgate_decisions_total counter
	// floodgate_decisions_total{outcome="allowed",plan="free"} 1
	// floodgate_decisions_total{outcome="allowed",plan="pro"} 2
	// floodgate_decisions_total{outcome="denied",plan="free"} 1
	// floodgate_decisions_total{outcome="denied",plan="pro"} 0
	// # HELP floodgate_policy_burst_tokens The policy's burst: the most tokens a bucket holds.
	// # TYPE floodgate_policy_burst_tokens gauge
	// floodgate_policy_burst_tokens{plan="free"} 1
	// floodgate_policy_burst_tokens{plan="pro"} 100
}
