// Package floodgateprom exports floodgate's Stats as Prometheus metrics: a
// [prometheus.Collector] for one [limiter.Limiter] ([NewCollector]) and one
// for [limiter.Plans], labelled by plan ([NewPlansCollector]).
//
// It lives in its own module so that floodgate itself links no Prometheus
// code, and is written to be copied into your project.
//
// Each scrape takes one [limiter.Limiter.Stats] snapshot per Limiter (it
// visits every tracked bucket, about 30 ms at a million keys) and reports:
//
//	floodgate_decisions_total{outcome="allowed"|"denied"}  counter
//	floodgate_fallback_decisions_total                     counter
//	floodgate_overflow_decisions_total                     counter
//	floodgate_keys                                         gauge
//	floodgate_keys_max                                     gauge
//	floodgate_retired_keys_total                           counter
//	floodgate_sweeps_total                                 counter
//	floodgate_policy_tokens_per_second                     gauge
//	floodgate_policy_burst_tokens                          gauge
//	floodgate_store_round_trips_total                      counter
//	floodgate_store_errors_total                           counter
//	floodgate_store_deny_cache_hits_total                  counter
//	floodgate_store_prefetch_hits_total                    counter
//	floodgate_store_breaker_opens_total                    counter
//	floodgate_store_breaker_open                           gauge (0 or 1)
//	floodgate_store_cached_keys                            gauge
//
// The store metrics are reported, as zeros, for a Limiter without a Store
// too, so that every Limiter has the same series. Counters are floodgate's
// cumulative counts, which never decrease from one snapshot to the next.
package floodgateprom

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/floodgate-go/floodgate/limiter"
)

// Option configures a collector.
type Option func(*config)

type config struct {
	labels prometheus.Labels
}

// WithConstLabels adds labels, the same on every metric, to tell several
// limiters apart on one registry (for example {"limiter": "login"}). A
// registry refuses two collectors whose metrics would have the same names
// and labels.
func WithConstLabels(labels prometheus.Labels) Option {
	return func(c *config) {
		if c.labels == nil {
			c.labels = prometheus.Labels{}
		}
		for k, v := range labels {
			c.labels[k] = v
		}
	}
}

// descs are the metrics' descriptions, for a Limiter (no variable labels
// but outcome) or for Plans (plan first).
type descs struct {
	decisions, fallback, overflow         *prometheus.Desc
	keys, keysMax, retired, sweeps        *prometheus.Desc
	rate, burst                           *prometheus.Desc
	roundTrips, errors                    *prometheus.Desc
	denyCacheHits, prefetchHits           *prometheus.Desc
	breakerOpens, breakerOpen, cachedKeys *prometheus.Desc
}

func newDescs(variable []string, opts []Option) *descs {
	var c config
	for _, o := range opts {
		o(&c)
	}
	d := func(name, help string, extra ...string) *prometheus.Desc {
		labels := append(append([]string(nil), variable...), extra...)
		return prometheus.NewDesc("floodgate_"+name, help, labels, c.labels)
	}
	return &descs{
		decisions: d("decisions_total", "Decisions made, by outcome; an admission undone (an AllowAll another limit denied, a cancelled Wait) counts as denied.", "outcome"),
		fallback:  d("fallback_decisions_total", "Decisions (included in floodgate_decisions_total) made by the failure mode because the Store failed or its circuit breaker was open."),
		overflow:  d("overflow_decisions_total", "Decisions (included in floodgate_decisions_total) made by the shared overflow bucket because the key table was full."),
		keys:      d("keys", "Keys tracked now."),
		keysMax:   d("keys_max", "The cap on tracked keys (WithMaxKeys)."),
		retired:   d("retired_keys_total", "Buckets removed because they had refilled to their burst."),
		sweeps:    d("sweeps_total", "Completed sweeper passes."),
		rate:      d("policy_tokens_per_second", "The policy's refill rate (+Inf for no limit)."),
		burst:     d("policy_burst_tokens", "The policy's burst: the most tokens a bucket holds."),

		roundTrips:    d("store_round_trips_total", "Store calls that returned a decision."),
		errors:        d("store_errors_total", "Store calls that failed or timed out."),
		denyCacheHits: d("store_deny_cache_hits_total", "Denials answered from the local deny cache, without a Store round trip."),
		prefetchHits:  d("store_prefetch_hits_total", "Admissions paid for by prefetched tokens, without a Store round trip."),
		breakerOpens:  d("store_breaker_opens_total", "Times the Store's circuit breaker opened."),
		breakerOpen:   d("store_breaker_open", "1 while the Store's circuit breaker is open (or half-open), else 0."),
		cachedKeys:    d("store_cached_keys", "Keys with a deny-cache or prefetch entry."),
	}
}

func (d *descs) describe(ch chan<- *prometheus.Desc) {
	for _, x := range []*prometheus.Desc{
		d.decisions, d.fallback, d.overflow, d.keys, d.keysMax, d.retired, d.sweeps, d.rate, d.burst,
		d.roundTrips, d.errors, d.denyCacheHits, d.prefetchHits, d.breakerOpens, d.breakerOpen, d.cachedKeys,
	} {
		ch <- x
	}
}

// collect sends the metrics of one snapshot; lv are the variable labels'
// values (the plan, for Plans).
func (d *descs) collect(ch chan<- prometheus.Metric, s limiter.Stats, p limiter.Policy, lv ...string) {
	counter := func(desc *prometheus.Desc, v uint64, extra ...string) {
		ch <- prometheus.MustNewConstMetric(desc, prometheus.CounterValue, float64(v), append(lv[:len(lv):len(lv)], extra...)...)
	}
	gauge := func(desc *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, v, lv...)
	}
	counter(d.decisions, s.Allowed, "allowed")
	counter(d.decisions, s.Denied, "denied")
	counter(d.fallback, s.Store.Fallbacks)
	counter(d.overflow, s.Overflowed)
	gauge(d.keys, float64(s.Keys))
	gauge(d.keysMax, float64(s.MaxKeys))
	counter(d.retired, s.Retired)
	counter(d.sweeps, s.Sweeps)
	gauge(d.rate, float64(p.Rate)) // rate.Inf is +Inf
	gauge(d.burst, float64(p.Burst))

	counter(d.roundTrips, s.Store.RoundTrips)
	counter(d.errors, s.Store.Errors)
	counter(d.denyCacheHits, s.Store.DenyCacheHits)
	counter(d.prefetchHits, s.Store.PrefetchHits)
	counter(d.breakerOpens, s.Store.BreakerOpens)
	open := 0.0
	if s.Store.BreakerOpen {
		open = 1
	}
	gauge(d.breakerOpen, open)
	gauge(d.cachedKeys, float64(s.Store.CachedKeys))
}

// Collector is a prometheus.Collector for one Limiter.
type Collector struct {
	l *limiter.Limiter
	d *descs
}

// NewCollector returns a Collector for l; register it with
// prometheus.Registerer.Register. Each Collect takes one l.Stats snapshot.
func NewCollector(l *limiter.Limiter, opts ...Option) *Collector {
	return &Collector{l: l, d: newDescs(nil, opts)}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) { c.d.describe(ch) }

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	c.d.collect(ch, c.l.Stats(), c.l.Policy())
}
