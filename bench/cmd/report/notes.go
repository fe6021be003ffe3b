package main

import (
	"fmt"
	"slices"
	"strings"

	"github.com/floodgate-go/floodgate/bench"
)

// explanations says why a peer can be faster or smaller than floodgate,
// keyed by "workload/implementation", or "*/implementation" for any
// workload. They are written from profiles and from the peers' code; the
// report prints the ones that apply to the numbers it measured, and flags
// any loss it has no explanation for.
var explanations = map[string]string{}

// writeNotLeading lists every table cell where floodgate does not lead.
func writeNotLeading(w writer, r *report) {
	type loss struct {
		what, impl, unit string
		ratio            float64
	}
	var losses []loss
	check := func(s step, b, unit string) {
		for _, im := range bench.Impls() {
			if im.Name == reference {
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
	w("## Where floodgate does not lead\n\n")
	if len(losses) == 0 {
		w("Nowhere in this run: floodgate is at least as fast as every peer and baseline on every workload, and at least as small per key.\n\n")
	}
	for _, l := range losses {
		why, ok := explanations[l.what+"/"+l.impl]
		if !ok {
			why, ok = explanations["*/"+l.impl]
		}
		if !ok {
			why = "(no explanation recorded for this case)"
		}
		w("- **%s, %s**: %s of floodgate's %s%s. %s\n", l.what, l.impl, fmtRatio(l.ratio), l.unit, qualify(r, l.what, l.impl, l.unit), why)
	}
	for _, s := range bench.Scenarios() {
		if run, _, ok := r.Correctness.worst(s.Name, reference); ok && run.Admitted > run.Max {
			w("- **correctness, %s**: floodgate admitted %d, over the maximum of %d. This is a bug.\n", s.Name, run.Admitted, run.Max)
		}
	}
	w("\n")
}

// qualify qualifies a loss: the CPU-time ratio of a speed benchmark, and
// whether the two sides' ranges over the rounds overlap.
func qualify(r *report, b, impl, unit string) string {
	s := r.Speed
	if b == "BytesPerKey" {
		s = r.Memory
	}
	var parts []string
	if unit == "ns/op" {
		if cr, ok := s.ratio(b, impl, "cpu-ns/op"); ok {
			parts = append(parts, fmt.Sprintf("CPU time per decision %s", fmtRatio(cr)))
		}
	}
	if overlap(s.values(b, impl, unit), s.values(b, reference, unit)) {
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
