package main

import (
	"fmt"
	"slices"
	"strings"

	"github.com/floodgate-go/floodgate/bench"
)

// overExplanations says how an implementation's code lets it over-admit in
// a correctness scenario, keyed by "scenario/implementation". The report
// prints one only beside an over-admission this run measured.
var overExplanations = map[string]string{
	"contention/map+Mutex": "The baseline calls rate.Limiter.Allow, which reads the clock before taking the limiter's lock. " +
		"When two calls reach the lock in the other order, rate.Limiter moves its last-update time backwards and the next call counts that refill a second time. " +
		"floodgate treats the later arrival as happening at the later time (limiter/doc.go, \"Differences from rate.Limiter\").",
	"contention/sync.Map": "Same cause as map+Mutex: rate.Limiter.Allow reads the clock outside its lock and moves its time backwards when calls arrive out of order. " +
		"echo uses rate.Limiter too but reads the clock under its store-wide mutex, so its time only moves forward.",
	"cleanup/echo": "echo deletes a key that has not been seen for ExpiresIn, whatever its bucket holds: the drained client comes back to a new, full bucket.",
	"cleanup/sethvargo": "sethvargo deletes a key idle for SweepMinTTL, whatever its window holds. Its documentation asks for SweepMinTTL at least as long as the interval " +
		"(10 ms here is shorter than the 2 s window) but does not enforce it.",
	"cleanup, defaults/echo": "With echo's default ExpiresIn of 3 minutes, any policy whose bucket takes longer than that to refill (here 100 per hour) lets a drained client that stays away for a few minutes (here 4) spend a whole new burst: the key is deleted once it has not been seen for 3 minutes, on the next cleanup another client's request triggers.",
	"key spray/throttled": "throttled's memstore is an LRU of maxKeys: the spray evicts the drained client, which then starts over with a full burst. " +
		"floodgate never evicts a bucket that is not full; new keys over the cap are decided on their hashed cells instead, never less restrictive than their own bucket.",
}

// writeNotLeading lists every table cell where floodgate does not lead a
// peer, with what this run measured about it: the CPU-time ratio, whether
// the rounds' ranges overlap, and floodgate's largest functions in this
// run's profile of that workload. The floor is left out: it is the
// baseline floodgate is measured against, shown in the headline.
func writeNotLeading(w writer, r *report) {
	type loss struct {
		what, impl, unit string
		ratio            float64
	}
	var losses []loss
	check := func(s step, b, unit string) {
		for _, im := range bench.Impls() {
			if im.Name == reference || im.Name == floor {
				continue
			}
			if ratio, ok := s.ratio(b, benchName(im), unit); ok && ratio < 1 {
				losses = append(losses, loss{b, im.Name, unit, ratio})
			}
		}
	}
	for _, wl := range bench.Workloads() {
		check(r.Speed, wl.Name, "ns/op")
	}
	check(r.Memory, "BytesPerKey", "B/key")
	for _, wl := range bench.HTTPWorkloads() {
		for _, im := range httpMiddlewares() {
			if isFloodgateHTTP(im) {
				continue
			}
			if ratio, ok := r.Speed.ratioTo(wl.Name, im.Name, httpRef(im), "overhead-ns/op"); ok && ratio < 1 {
				losses = append(losses, loss{wl.Name, im.Name, "overhead-ns/op", ratio})
			} else if ratio, ok := r.Speed.ratioTo(wl.Name, im.Name, httpRef(im), "overhead-cpu-ns/op"); ok && ratio < 1 {
				// Ahead in wall time, behind in CPU time: say so too.
				losses = append(losses, loss{wl.Name, im.Name, "overhead-cpu-ns/op", ratio})
			}
		}
	}
	for _, b := range []string{"RedisSerial", "RedisParallel"} {
		for _, im := range bench.RedisImpls() {
			if ratio, ok := r.Redis.ratio(b, im.Name, "ns/op"); ok && im.Name != reference && ratio < 1 {
				losses = append(losses, loss{b, im.Name, "ns/op", ratio})
			}
		}
		for _, im := range bench.RedisImpls() {
			if ratio, ok := r.Redis.ratio(b, im.Name, "srv-cpu-us/op"); ok && im.Name != reference && ratio < 1 {
				losses = append(losses, loss{b, im.Name, "srv-cpu-us/op", ratio})
			}
		}
	}
	w("## Where floodgate does not lead\n\n")
	w("Every cell of this run's tables where a peer or the sync.Map or map+Mutex baseline beat floodgate, with what the run measured about it; the floor, the baseline floodgate is measured against, is in the [headline](#headline).\n\n")
	if len(losses) == 0 {
		w("Nowhere in this run: floodgate is at least as fast as every peer and baseline on every workload, at least as small per key, and uses no more Redis CPU per decision.\n\n")
	}
	for _, l := range losses {
		w("- **%s, %s**: %s of %s%s.%s\n", l.what, l.impl, fmtRatio(l.ratio), whose(l.what, l.impl, l.unit), qualify(r, l.what, l.impl, l.unit), lossProfile(r, l.what, l.impl))
	}
	for _, p := range bench.PacedScenarios() {
		for _, im := range bench.RedisImpls() {
			if run, ok := r.Redis.median(p.Name, im.Name, "admitted"); ok && im.Name == reference {
				if m, _ := r.Redis.median(p.Name, im.Name, "max"); run > m {
					w("- **%s**: floodgate admitted %.0f, over the maximum of %.0f. This is a bug.\n", p.Name, run, m)
				}
			}
		}
	}
	for _, s := range bench.Scenarios() {
		for _, name := range []string{reference, floor} {
			if run, _, ok := r.Correctness.worst(s.Name, name); ok && run.Admitted > run.Max {
				w("- **correctness, %s**: %s admitted %d, over the maximum of %d. This is a bug.\n", s.Name, name, run.Admitted, run.Max)
			}
		}
	}
	w("\n")
}

// lossProfile points a loss to this run's profile of floodgate's side of
// the workload, naming its three largest functions.
func lossProfile(r *report, b, impl string) string {
	ref := reference
	if im, ok := bench.LookupHTTP(impl); ok {
		ref = httpRef(im)
	}
	if strings.HasPrefix(b, "Redis") {
		b = "RedisSerial"
	}
	p, ok := r.profileOf(b, ref)
	if !ok {
		return ""
	}
	return fmt.Sprintf(" Largest in [%s's profile of %s](#%s): %s.", ref, b, profileAnchor(b, ref), p.topShare(3))
}

// qualify qualifies a loss: the CPU-time ratio of a speed benchmark, and
// whether the two sides' ranges over the rounds overlap.
func qualify(r *report, b, impl, unit string) string {
	s, ref := r.Speed, reference
	switch {
	case b == "BytesPerKey":
		s = r.Memory
	case strings.HasPrefix(b, "Redis"):
		s = r.Redis.step
	case strings.HasPrefix(b, "HTTP"):
		if im, ok := bench.LookupHTTP(impl); ok {
			ref = httpRef(im)
		}
	}
	var parts []string
	switch unit {
	case "srv-cpu-us/op":
		fv, _ := s.median(b, ref, unit)
		pv, _ := s.median(b, impl, unit)
		parts = append(parts, fmt.Sprintf("%.1f µs of redis-server CPU per decision against floodgate's %.1f µs", pv, fv))
	case "ns/op":
		if cr, ok := s.ratio(b, impl, "cpu-ns/op"); ok {
			parts = append(parts, fmt.Sprintf("CPU time per decision %s", fmtRatio(cr)))
		}
	case "overhead-ns/op":
		if cr, ok := s.ratioTo(b, impl, ref, "overhead-cpu-ns/op"); ok {
			parts = append(parts, fmt.Sprintf("CPU-time overhead %s", fmtRatio(cr)))
		}
	}
	if overlap(s.values(b, impl, unit), s.values(b, ref, unit)) {
		parts = append(parts, "ranges over the rounds overlap")
	}
	if len(parts) == 0 {
		return ""
	}
	return " (" + strings.Join(parts, "; ") + ")"
}

func overlap(a, b []float64) bool {
	if len(a) < 2 || len(b) < 2 {
		return false
	}
	return slices.Min(a) <= slices.Max(b) && slices.Min(b) <= slices.Max(a)
}

// whose names what a loss is measured against, e.g. "floodgate's ns/op" or
// "nethttpmw's middleware overhead".
func whose(b, impl, unit string) string {
	if unit == "overhead-ns/op" || unit == "overhead-cpu-ns/op" {
		ref := reference
		if im, ok := bench.LookupHTTP(impl); ok {
			ref = httpRef(im)
		}
		if unit == "overhead-cpu-ns/op" {
			return ref + "'s CPU-time overhead over the bare handler (its wall-time overhead is lower than this peer's: see the HTTP table)"
		}
		return ref + "'s middleware overhead (ns per request over the bare handler)"
	}
	if unit == "srv-cpu-us/op" {
		return "floodgate's redis-server CPU time per decision (INFO cpu)"
	}
	return "floodgate's " + unit
}
