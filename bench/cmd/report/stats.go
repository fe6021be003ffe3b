package main

import (
	"slices"

	"github.com/floodgate-go/floodgate/bench"
)

const reference = "floodgate"

// floor is the exact lock-free baseline, bench.floorImpl.
const floor = "floor"

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if n := len(s); n%2 == 1 {
		return s[n/2]
	} else {
		return (s[n/2-1] + s[n/2]) / 2
	}
}

// values returns every measurement of unit for impl on benchmark b.
func (s step) values(b, impl, unit string) []float64 {
	var xs []float64
	for _, x := range s.Samples {
		if v, ok := x.Values[unit]; ok && x.Bench == b && x.Impl == impl {
			xs = append(xs, v)
		}
	}
	return xs
}

// median returns the median of unit for impl on b, and whether there is any.
func (s step) median(b, impl, unit string) (float64, bool) {
	xs := s.values(b, impl, unit)
	return median(xs), len(xs) > 0
}

// ratio is impl's unit divided by floodgate's: the median over rounds of
// the ratio within each round, so that a noisy moment hits both sides.
func (s step) ratio(b, impl, unit string) (float64, bool) {
	return s.ratioTo(b, impl, reference, unit)
}

// ratioTo is impl's unit divided by ref's, per round, median over rounds.
func (s step) ratioTo(b, impl, refImpl, unit string) (float64, bool) {
	ref := map[int]float64{}
	for _, x := range s.Samples {
		if v, ok := x.Values[unit]; ok && x.Bench == b && x.Impl == refImpl {
			ref[x.Round] = v
		}
	}
	var rs []float64
	for _, x := range s.Samples {
		v, ok := x.Values[unit]
		if r := ref[x.Round]; ok && x.Bench == b && x.Impl == impl && r > 0 {
			rs = append(rs, v/r)
		}
	}
	return median(rs), len(rs) > 0
}

// benchName maps an implementation to its name in benchmark output.
func benchName(im bench.Impl) string { return im.Name }

// worst returns the run of scenario s on impl with the largest over-admission.
func (c correctness) worst(s, impl string) (correctnessRun, int, bool) {
	var w correctnessRun
	n := 0
	for _, r := range c.Results {
		if r.Scenario != s || r.Impl != impl {
			continue
		}
		if n == 0 || r.Admitted-r.Max > w.Admitted-w.Max {
			w = r
		}
		n++
	}
	return w, n, n > 0
}
