package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/floodgate-go/floodgate/bench"
)

// A sample is one benchmark result line.
type sample struct {
	Bench, Impl string
	Round       int
	Values      map[string]float64 // by unit: ns/op, B/op, allocs/op, B/key, …
}

// A step is the outcome of one group of measurements.
type step struct {
	Samples []sample
	Done    int           // rounds (or repetitions) completed
	Elapsed time.Duration // wall time spent
	Cut     string        // why the step stopped early, if it did
	Errors  []string      // failures of the benchmark binary
}

type runner struct {
	bin string
	raw *strings.Builder // every benchmark line, for benchstat
}

func command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stderr = os.Stderr
	return cmd
}

// bench runs the benchmark binary with args and returns its parsed samples,
// and keeps their lines for raw.txt unless round is negative.
func (r *runner) bench(ctx context.Context, env []string, round int, args ...string) ([]sample, error) {
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, r.bin, append([]string{"-test.run=^$", "-test.benchmem"}, args...)...)
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.Env = append(os.Environ(), env...)
	err := cmd.Run()
	samples := parse(out.String(), round)
	for _, line := range strings.Split(out.String(), "\n") {
		if round >= 0 && strings.HasPrefix(line, "Benchmark") {
			r.raw.WriteString(line + "\n")
		}
	}
	if ctx.Err() != nil {
		return samples, ctx.Err()
	}
	if err != nil {
		return samples, fmt.Errorf("%v: %s", err, lastLines(out.String(), 15))
	}
	return samples, nil
}

// speed runs the speed workloads in rounds until the plan or the budget
// (keeping a share for the later steps) runs out.
func (r *runner) speed(ctx context.Context, p plan) step {
	start := time.Now()
	var s step
	// Keep the time the correctness and memory steps need.
	reserve := time.Duration(float64(p.Budget) * 0.6)
	deadline, _ := ctx.Deadline()
	names := make([]string, 0, 6)
	for _, w := range bench.Workloads() {
		names = append(names, w.Name)
	}
	for _, w := range bench.HTTPWorkloads() {
		names = append(names, w.Name)
	}
	pattern := "^Benchmark(" + strings.Join(names, "|") + ")$"
	for round := range p.Rounds {
		if round > 0 && time.Until(deadline)-reserve < time.Since(start)/time.Duration(round) {
			s.Cut = fmt.Sprintf("stopped after %d of %d rounds to stay within the %v budget", round, p.Rounds, p.Budget)
			break
		}
		logf("speed round %d/%d", round+1, p.Rounds)
		samples, err := r.bench(ctx, nil, round, "-test.bench="+pattern, "-test.benchtime="+p.BenchTime)
		s.Samples = append(s.Samples, addOverheads(samples)...)
		if err != nil {
			s.Errors = append(s.Errors, fmt.Sprintf("round %d: %v", round+1, err))
			if errors.Is(err, context.DeadlineExceeded) {
				s.Cut = "cut by the time budget"
				break
			}
			continue
		}
		s.Done++
	}
	s.Elapsed = time.Since(start)
	return s
}

// memory measures bytes per key and the spray, one implementation per
// process so that no implementation's garbage or goroutines skew another's.
// It runs last and stops when the budget is spent. The processes run with
// GOGC=off: the figures are live heap after an explicit runtime.GC, which
// GOGC does not change, and filling 10M keys then spends no time collecting
// (the peak heap of a 10M-key spray stays within a few GiB).
func (r *runner) memory(ctx context.Context, p plan) step {
	start := time.Now()
	var s step
	deadline, _ := ctx.Deadline()
	reserve := 5 * time.Second // to write the report
	jobs := []struct {
		bench string
		args  []string
	}{
		{"BytesPerKey", []string{fmt.Sprintf("-memkeys=%d", p.MemKeys), fmt.Sprintf("-test.count=%d", p.MemCount)}},
		{"SprayMemory", []string{fmt.Sprintf("-spraykeys=%d", p.SprayKeys)}},
	}
	for _, job := range jobs {
		for _, im := range bench.Impls() {
			if time.Until(deadline) < reserve {
				s.Cut = "cut by the time budget"
				s.Elapsed = time.Since(start)
				return s
			}
			logf("%s %s", job.bench, im.Name)
			pattern := fmt.Sprintf("-test.bench=^Benchmark%s$/^%s$", job.bench, regexp.QuoteMeta(im.Name))
			samples, err := r.bench(ctx, []string{"GOGC=off"}, 0, append([]string{pattern, "-test.benchtime=1x"}, job.args...)...)
			s.Samples = append(s.Samples, samples...)
			if err != nil {
				s.Errors = append(s.Errors, fmt.Sprintf("%s/%s: %v", job.bench, im.Name, err))
			}
		}
	}
	s.Done = 1
	s.Elapsed = time.Since(start)
	return s
}

// correctnessRun is one line of the correctness JSON (bench.CorrectnessResult).
type correctnessRun struct {
	Scenario  string
	Impl      string
	Run       int
	Admitted  int
	Max       int
	ElapsedNS int64
}

type correctness struct {
	step
	Results []correctnessRun
}

func (r *runner) correctness(ctx context.Context, p plan, file string) correctness {
	start := time.Now()
	var c correctness
	logf("correctness scenarios (%d runs)", p.Runs)
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, r.bin, "-test.run=^TestCorrectness$", "-test.count=1", "-test.v",
		"-correctness.out="+file, fmt.Sprintf("-correctness.runs=%d", p.Runs), "-correctness.d="+p.Contention.String())
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		c.Errors = append(c.Errors, fmt.Sprintf("%v: %s", err, lastLines(out.String(), 15)))
		if ctx.Err() != nil {
			c.Cut = "cut by the time budget"
		}
	}
	if data, err := os.ReadFile(file); err == nil {
		if err := json.Unmarshal(data, &c.Results); err != nil {
			c.Errors = append(c.Errors, err.Error())
		}
		c.Done = p.Runs
	}
	c.Elapsed = time.Since(start)
	return c
}

var benchLine = regexp.MustCompile(`^Benchmark([^/\s]+)/(\S+?)(?:-\d+)?\s+(\d+)\s+(.*)$`)

// parse reads benchmark result lines: name, iterations, then value-unit pairs.
func parse(out string, round int) []sample {
	var samples []sample
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		m := benchLine.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		f := strings.Fields(m[4])
		vals := map[string]float64{}
		for i := 0; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				break
			}
			vals[f[i+1]] = v
		}
		samples = append(samples, sample{Bench: m[1], Impl: m[2], Round: round, Values: vals})
	}
	return samples
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// redisStep is the Redis measurements, or why they were left out.
type redisStep struct {
	step
	Omitted string // set when redis-server is not on PATH
}

// redis runs the Redis benchmarks in interleaved rounds against one
// redis-server per benchmark process, which the benchmarks start
// themselves (internal/redistest). Without redis-server on PATH the step
// is omitted with a note, unless FLOODGATE_REQUIRE_REDIS=1.
func (r *runner) redis(ctx context.Context, p plan) (redisStep, error) {
	start := time.Now()
	var s redisStep
	if _, err := exec.LookPath("redis-server"); err != nil {
		if os.Getenv("FLOODGATE_REQUIRE_REDIS") == "1" {
			return s, fmt.Errorf("redis-server is not on PATH, and FLOODGATE_REQUIRE_REDIS=1 requires the Redis measurements")
		}
		s.Omitted = "redis-server was not on PATH when this report was made (apt-get install redis-server), so the Redis measurements were left out"
		logf("%s", s.Omitted)
		return s, nil
	}
	// Keep the time the correctness and memory steps need.
	reserve := time.Duration(float64(p.Budget) * 0.5)
	deadline, _ := ctx.Deadline()
	for round := range p.RedisRounds {
		if round > 0 && time.Until(deadline)-reserve < time.Since(start)/time.Duration(round) {
			s.Cut = fmt.Sprintf("stopped after %d of %d rounds to stay within the %v budget", round, p.RedisRounds, p.Budget)
			break
		}
		logf("Redis round %d/%d", round+1, p.RedisRounds)
		env := []string{"FLOODGATE_REQUIRE_REDIS=1"} // redis-server is on PATH: a skip would be a failure
		failed := false
		for _, args := range [][]string{
			{"-test.bench=^BenchmarkRedis(Serial|Parallel)$", "-test.benchtime=" + p.BenchTime},
			{"-test.bench=^BenchmarkRedis(Flood|HotKey)$", "-test.benchtime=1x", "-redis.period=" + p.RedisPeriod.String()},
		} {
			samples, err := r.bench(ctx, env, round, args...)
			s.Samples = append(s.Samples, samples...)
			if err != nil {
				s.Errors = append(s.Errors, fmt.Sprintf("Redis round %d: %v", round+1, err))
				failed = true
				if errors.Is(err, context.DeadlineExceeded) {
					s.Cut = "cut by the time budget"
					s.Elapsed = time.Since(start)
					return s, nil
				}
			}
		}
		if !failed {
			s.Done++
		}
	}
	s.Elapsed = time.Since(start)
	return s, nil
}

// addOverheads gives every HTTP middleware sample its overhead over the bare
// handler it wraps, measured in the same round (the same process, minutes
// apart at most): ns/op and cpu-ns/op minus the bare handler's.
func addOverheads(samples []sample) []sample {
	bare := map[string]sample{}
	for _, x := range samples {
		if im, ok := bench.LookupHTTP(x.Impl); ok && im.Bare == "" && isHTTPBench(x.Bench) {
			bare[x.Bench+"/"+x.Impl] = x
		}
	}
	for _, x := range samples {
		im, ok := bench.LookupHTTP(x.Impl)
		if !ok || im.Bare == "" || !isHTTPBench(x.Bench) {
			continue
		}
		b, ok := bare[x.Bench+"/"+im.Bare]
		if !ok {
			continue
		}
		for _, unit := range []string{"ns/op", "cpu-ns/op"} {
			v, ok1 := x.Values[unit]
			bv, ok2 := b.Values[unit]
			if ok1 && ok2 {
				x.Values["overhead-"+unit] = v - bv
			}
		}
	}
	return samples
}

func isHTTPBench(name string) bool {
	for _, w := range bench.HTTPWorkloads() {
		if w.Name == name {
			return true
		}
	}
	return false
}
