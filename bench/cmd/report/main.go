// Command report runs floodgate's side-by-side benchmarks and correctness
// scenarios within a time budget and writes bench/README.md, bench/ratios.svg
// and the raw outputs in bench/results/.
//
// Run it from the bench directory:
//
//	go run ./cmd/report          # the published numbers (under 14 minutes on 2 cores)
//	go run ./cmd/report -quick   # a smoke run in about two minutes: the report's shape, not numbers to publish
//	go run ./cmd/report -render results/report.json   # re-render saved numbers
//
// It builds the benchmark binary once, then runs each measurement in its own
// process: speed benchmarks in interleaved rounds (every implementation once
// per round, so machine noise hits all of them alike), memory measurements
// one implementation per process, and the correctness scenarios. Tables show
// medians over the rounds and ratios to floodgate taken within each round.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// A plan is how much of everything to run.
type plan struct {
	Mode       string
	Budget     time.Duration
	Rounds     int           // speed benchmark rounds
	BenchTime  string        // -test.benchtime of a speed benchmark
	MemKeys    int           // keys for bytes per key
	MemCount   int           // repetitions of bytes per key
	SprayKeys  int           // keys of the spray
	Runs       int           // correctness runs
	Contention time.Duration // correctness run length
	// RedisRounds is the rounds of Redis benchmarks, RedisPeriod the
	// length of one paced round-trip run.
	RedisRounds int
	RedisPeriod time.Duration
	// ProfileTime is the -test.benchtime of a profiled benchmark.
	ProfileTime string
}

var plans = map[string]plan{
	"default": {Mode: "default", Budget: 14 * time.Minute, Rounds: 5, BenchTime: "300ms",
		MemKeys: 1_000_000, MemCount: 3, SprayKeys: 10_000_000, Runs: 3, Contention: 1500 * time.Millisecond,
		RedisRounds: 3, RedisPeriod: time.Second, ProfileTime: "2s"},
	"quick": {Mode: "quick", Budget: 3 * time.Minute, Rounds: 3, BenchTime: "30ms",
		MemKeys: 100_000, MemCount: 1, SprayKeys: 300_000, Runs: 1, Contention: 300 * time.Millisecond,
		RedisRounds: 1, RedisPeriod: 200 * time.Millisecond, ProfileTime: "200ms"},
	// smoke is the plan of the report's own test (go test ./cmd/report):
	// every step once, as small as the checks allow.
	"smoke": {Mode: "smoke", Budget: 8 * time.Minute, Rounds: 1, BenchTime: "1x",
		MemKeys: 10_000, MemCount: 1, SprayKeys: 10_000, Runs: 1, Contention: 50 * time.Millisecond,
		RedisRounds: 1, RedisPeriod: 300 * time.Millisecond, ProfileTime: "200ms"},
}

// smokeRun reports whether p is a smoke run, whose numbers are not to be
// published.
func (p plan) smokeRun() bool { return p.Mode != "default" }

func main() {
	quick := flag.Bool("quick", false, "a smoke run in about two minutes (fewer rounds, shorter runs, 300k-key spray; budget 3m); its report says so at the top")
	budget := flag.Duration("budget", 0, "total time budget (default 14m, or 3m with -quick); steps that do not fit are skipped and marked")
	out := flag.String("o", "README.md", "the report to write (ratios.svg and results/ go beside it)")
	from := flag.String("render", "", "measure nothing: render the report from this results/report.json of an earlier run")
	flag.Parse()
	if *from != "" {
		if err := rerender(*from, *out); err != nil {
			fmt.Fprintln(os.Stderr, "report:", err)
			os.Exit(1)
		}
		return
	}
	p := plans["default"]
	if *quick {
		p = plans["quick"]
	}
	if *budget > 0 {
		p.Budget = *budget
	}
	cmd := strings.TrimSpace("cd bench && go run ./cmd/report " + strings.Join(os.Args[1:], " "))
	if err := run(p, *out, cmd, *budget > 0); err != nil {
		fmt.Fprintln(os.Stderr, "report:", err)
		os.Exit(1)
	}
}

// run measures everything p says and writes the report to out. cmdline is
// how the report was started, for its header; budgetSet says whether the
// budget came from -budget.
func run(p plan, out, cmdline string, budgetSet bool) error {
	if err := checkBenchDir(); err != nil {
		return err
	}
	start := time.Now()
	ctx, cancel := context.WithDeadline(context.Background(), start.Add(p.Budget))
	defer cancel()
	dir := filepath.Dir(out)
	resDir := filepath.Join(dir, "results")
	if err := os.MkdirAll(resDir, 0o755); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "floodgate-report")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	r := &report{Plan: p, Start: start.UTC(), Machine: readMachine(), BudgetSet: budgetSet}
	r.Command = cmdline
	bin := filepath.Join(tmp, "bench.test")
	logf("building the benchmark binary")
	if err := command(ctx, "go", "test", "-c", "-o", bin, ".").Run(); err != nil {
		return fmt.Errorf("building the benchmarks: %w", err)
	}
	runner := &runner{bin: bin, raw: &strings.Builder{}}
	r.Speed = runner.speed(ctx, p)
	r.Profiles = runner.profiles(ctx, p, tmp)
	if r.Redis, err = runner.redis(ctx, p); err != nil {
		return err
	}
	r.Correctness = runner.correctness(ctx, p, filepath.Join(tmp, "correctness.json"))
	r.Memory = runner.memory(ctx, p)
	r.Elapsed = time.Since(start)
	r.LoadAfter = loadAvg()

	if err := os.WriteFile(filepath.Join(resDir, "raw.txt"), []byte(runner.raw.String()), 0o644); err != nil {
		return err
	}
	data, err := json.MarshalIndent(r, "", "\t")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(resDir, "report.json"), data, 0o644); err != nil {
		return err
	}
	return write(r, out)
}

// write renders r into out and ratios.svg beside it.
func write(r *report, out string) error {
	svg := filepath.Join(filepath.Dir(out), "ratios.svg")
	if err := os.WriteFile(svg, []byte(renderSVG(r)), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(out, []byte(renderMarkdown(r)), 0o644); err != nil {
		return err
	}
	headline := filepath.Join(filepath.Dir(out), "results", "headline.md")
	if err := os.MkdirAll(filepath.Dir(headline), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(headline, []byte(renderHeadline(r)), 0o644); err != nil {
		return err
	}
	logf("wrote %s and %s (measurements took %v)", out, svg, r.Elapsed.Round(time.Second))
	return nil
}

// rerender writes the report again from the measurements a previous run
// saved in results/report.json (after a change to the report's text).
func rerender(from, out string) error {
	data, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	var r report
	if err := json.Unmarshal(data, &r); err != nil {
		return fmt.Errorf("%s: %w", from, err)
	}
	return write(&r, out)
}

// checkBenchDir makes sure the report runs in the bench module.
func checkBenchDir() error {
	data, err := os.ReadFile("go.mod")
	if err != nil || !strings.Contains(string(data), "module github.com/floodgate-go/floodgate/bench\n") {
		return fmt.Errorf("run me from the bench directory (cd bench && go run ./cmd/report)")
	}
	return nil
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s report: %s\n", time.Now().UTC().Format("15:04:05"), fmt.Sprintf(format, args...))
}
