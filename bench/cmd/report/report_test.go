package main

import (
	"strings"
	"testing"
)

const sampleOutput = `goos: linux
BenchmarkHotKeySerial/floodgate-2         	 2131269	       123.8 ns/op	         0.0001703 admit/op	   120.5 cpu-ns/op	       0 B/op	       0 allocs/op
BenchmarkHotKeySerial/map+Mutex-2         	 2139153	       246.0 ns/op	         0.0001683 admit/op	       0 B/op	       0 allocs/op
BenchmarkBytesPerKey/sync.Map-2         	       1	12096680419 ns/op	   221.5 B/key	   1000000 keys
PASS
`

func TestParse(t *testing.T) {
	got := parse(sampleOutput, 3)
	if len(got) != 3 {
		t.Fatalf("parse found %d samples, want 3: %+v", len(got), got)
	}
	s := got[1]
	if s.Bench != "HotKeySerial" || s.Impl != "map+Mutex" || s.Round != 3 || s.Values["ns/op"] != 246 || s.Values["allocs/op"] != 0 {
		t.Fatalf("parse(line 2) = %+v", s)
	}
	if v := got[2].Values["B/key"]; v != 221.5 || got[2].Impl != "sync.Map" {
		t.Fatalf("parse(line 3) = %+v, want sync.Map 221.5 B/key", got[2])
	}
}

func TestMedianAndRatio(t *testing.T) {
	if got := median([]float64{5, 1, 3}); got != 3 {
		t.Fatalf("median(5, 1, 3) = %v, want 3", got)
	}
	if got := median([]float64{4, 1, 3, 2}); got != 2.5 {
		t.Fatalf("median(4, 1, 3, 2) = %v, want 2.5", got)
	}
	// The ratio pairs samples of the same round: noise in round 1 hits both.
	var s step
	for round, v := range [][2]float64{{100, 200}, {300, 600}, {100, 100}} {
		s.Samples = append(s.Samples,
			sample{Bench: "W", Impl: reference, Round: round, Values: map[string]float64{"ns/op": v[0]}},
			sample{Bench: "W", Impl: "peer", Round: round, Values: map[string]float64{"ns/op": v[1]}})
	}
	if got, ok := s.ratio("W", "peer", "ns/op"); !ok || got != 2 {
		t.Fatalf("ratio = %v, %v; want 2, true", got, ok)
	}
	if _, ok := s.ratio("W", "absent", "ns/op"); ok {
		t.Fatal("ratio of an unmeasured implementation reported ok")
	}
}

func TestRenderFromEmptyReport(t *testing.T) {
	r := &report{Plan: plans["quick"]}
	md := renderMarkdown(r)
	for _, want := range []string{"## Headline", "## Correctness", "| **floodgate** |", "## HTTP middleware", "## Redis"} {
		if !strings.Contains(md, want) {
			t.Errorf("report without measurements lacks %q", want)
		}
	}
	if svg := renderSVG(r); !strings.HasPrefix(svg, "<svg") || !strings.Contains(svg, "not measured") {
		t.Errorf("SVG without measurements: %.200s", svg)
	}
}
