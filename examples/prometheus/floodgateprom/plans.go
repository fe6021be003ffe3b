package floodgateprom

import (
	"maps"
	"slices"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/floodgate-go/floodgate/limiter"
)

// PlansCollector is a prometheus.Collector for Plans: the metrics of
// NewCollector, for each plan's Limiter, with a "plan" label.
//
// It follows Plans.Update: each scrape reports the plans in force when it
// starts, so a plan added since the last scrape appears and a removed one
// disappears. A plan whose Limiter an Update recreates (a change to or from
// rate.Inf) starts its counters afresh, which Prometheus reads as a counter
// reset.
type PlansCollector struct {
	p *limiter.Plans
	d *descs
}

// NewPlansCollector returns a PlansCollector for p. Each Collect takes one
// Stats snapshot per plan.
func NewPlansCollector(p *limiter.Plans, opts ...Option) *PlansCollector {
	return &PlansCollector{p: p, d: newDescs([]string{"plan"}, opts)}
}

// Describe implements prometheus.Collector.
func (c *PlansCollector) Describe(ch chan<- *prometheus.Desc) { c.d.describe(ch) }

// Collect implements prometheus.Collector.
func (c *PlansCollector) Collect(ch chan<- prometheus.Metric) {
	for _, plan := range slices.Sorted(maps.Keys(c.p.Policies())) {
		// An Update may remove the plan between the listing and here; a
		// Limiter it closes meanwhile still reports its last counts.
		l, ok := c.p.Limiter(plan)
		if !ok {
			continue
		}
		c.d.collect(ch, l.Stats(), l.Policy(), plan)
	}
}
