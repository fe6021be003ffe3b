package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
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
	for _, want := range []string{"## Headline", "## Correctness", "| **floodgate** |", "## HTTP middleware", "## Redis", "## Profiles", "**Smoke run (mode quick).**"} {
		if !strings.Contains(md, want) {
			t.Errorf("report without measurements lacks %q", want)
		}
	}
	if svg := renderSVG(r); !strings.HasPrefix(svg, "<svg") || !strings.Contains(svg, "not measured") {
		t.Errorf("SVG without measurements: %.200s", svg)
	}
}

// TestReportSmoke runs the whole report in the smoke plan (every benchmark
// and scenario once, briefly) into a temporary directory, and checks the
// shape of what it writes. The committed README.md and results/ are not
// touched. -short skips it.
func TestReportSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the benchmarks and runs every one of them once")
	}
	t.Chdir("../..") // the bench module, as `go run ./cmd/report` runs
	dir := t.TempDir()
	out := filepath.Join(dir, "README.md")
	if err := run(plans["smoke"], out, "go test ./cmd/report", false); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	md := string(data)
	if i := strings.Index(md, "## Problems during this run"); i >= 0 {
		t.Fatalf("the smoke run had problems:\n%s", md[i:])
	}
	want := []string{
		"**Smoke run (mode smoke).**", "## Headline", "| floor (baseline) |", "Distance to the floor", "| HotKeyFloodedParallel |",
		"## Where floodgate does not lead", "## Profiles", "### HotKeySerial, floodgate", "| `", "## Correctness",
	}
	_, noRedis := exec.LookPath("redis-server")
	if noRedis == nil {
		want = append(want, "### Redis server time", "EVALSHA", "INCRBY")
	}
	for _, s := range want {
		if !strings.Contains(md, s) {
			t.Errorf("the smoke report lacks %q", s)
		}
	}
	for _, s := range []string{"budget raised", "earlier run"} {
		if strings.Contains(md, s) {
			t.Errorf("the smoke report says %q", s)
		}
	}
	var r report
	if data, err := os.ReadFile(filepath.Join(dir, "results", "report.json")); err != nil {
		t.Fatal(err)
	} else if err := json.Unmarshal(data, &r); err != nil {
		t.Fatal(err)
	}
	if len(r.Profiles) == 0 {
		t.Error("report.json has no profiles")
	}
	for _, p := range r.Profiles {
		if p.Err != "" || len(p.Top) == 0 {
			t.Errorf("profile of %s/%s: %q, %d functions", p.Bench, p.Impl, p.Err, len(p.Top))
		}
	}
	for _, f := range []string{"ratios.svg", "results/raw.txt", "results/headline.md"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Error(err)
		}
	}
	if head, err := os.ReadFile(filepath.Join(dir, "results", "headline.md")); err == nil && !strings.Contains(string(head), "Smoke run") {
		t.Error("headline.md of a smoke run does not say so")
	}
}

func TestParseTop(t *testing.T) {
	out := []byte(`File: bench.test
Type: cpu
Duration: 2.15s, Total samples = 2.02s (93.85%)
Showing nodes accounting for 1.8s, 89.11% of 2.02s total
      flat  flat%   sum%        cum   cum%
     0.46s 22.77% 22.77%      0.46s 22.77%  runtime.nanotime (inline)
     0.20s  9.90% 32.67%      1.10s 54.46%  github.com/floodgate-go/floodgate/limiter.(*Limiter).AllowN
`)
	total, top, err := parseTop(out)
	if err != nil {
		t.Fatal(err)
	}
	if total != "Duration: 2.15s, Total samples = 2.02s (93.85%)" || len(top) != 2 {
		t.Fatalf("parseTop = %q, %+v", total, top)
	}
	if want := (profileLine{"limiter.(*Limiter).AllowN", 9.9, 54.46}); top[1] != want || top[0].Func != "runtime.nanotime" {
		t.Fatalf("parseTop lines = %+v, want [runtime.nanotime …] and %+v", top, want)
	}
	if _, _, err := parseTop([]byte("Duration: 1s, Total samples = 0\n      flat  flat%   sum%        cum   cum%\n")); err == nil {
		t.Fatal("parseTop of a profile without samples: no error")
	}
}

func TestSampleNote(t *testing.T) {
	for total, want := range map[string]string{
		"Duration: 379.84ms, Total samples = 30ms ( 7.90%)": ": 3 samples at 100 Hz, too few for the shares below to be more than rough",
		"Duration: 2.1s, Total samples = 3.9s (185%)":       ": 390 samples at 100 Hz",
		"": "",
	} {
		if got := sampleNote(total); got != want {
			t.Errorf("sampleNote(%q) = %q, want %q", total, got, want)
		}
	}
}
