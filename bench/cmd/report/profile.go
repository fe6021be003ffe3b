package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/floodgate-go/floodgate/bench"
)

// A profile is where floodgate's CPU time went on one benchmark in this
// run: the timed part of the benchmark under runtime/pprof
// (-timed.cpuprofile), summarized by go tool pprof -top.
type profile struct {
	Bench, Impl string
	Total       string        // pprof's "Duration: …, Total samples = … (…)"
	Top         []profileLine // by flat time, largest first
	Err         string        // why there is no profile
}

// A profileLine is one function's share of the samples, in percent: flat
// (in the function itself) and cum (with what it calls).
type profileLine struct {
	Func      string
	Flat, Cum float64
}

// profileTop is how many functions a profile lists.
const profileTop = 10

// profileJobs are the benchmarks profiled: floodgate on every speed
// workload, its middlewares on every HTTP workload, and its Redis tier
// serially.
func profileJobs(redis bool) []profile {
	var jobs []profile
	for _, w := range bench.Workloads() {
		jobs = append(jobs, profile{Bench: w.Name, Impl: reference})
	}
	for _, w := range bench.HTTPWorkloads() {
		jobs = append(jobs, profile{Bench: w.Name, Impl: "nethttpmw"}, profile{Bench: w.Name, Impl: "echomw"})
	}
	if redis {
		jobs = append(jobs, profile{Bench: "RedisSerial", Impl: reference})
	}
	return jobs
}

// profiles takes a CPU profile of each job in its own process and
// summarizes it, until the budget (keeping a share for the later steps)
// runs out.
func (r *runner) profiles(ctx context.Context, p plan, tmp string) []profile {
	_, err := exec.LookPath("redis-server")
	jobs := profileJobs(err == nil)
	reserve := time.Duration(float64(p.Budget) * 0.45)
	deadline, _ := ctx.Deadline()
	for i := range jobs {
		j := &jobs[i]
		if time.Until(deadline) < reserve {
			j.Err = "not profiled: the time budget was spent"
			continue
		}
		logf("CPU profile of %s/%s", j.Bench, j.Impl)
		file := filepath.Join(tmp, fmt.Sprintf("cpu-%d.pprof", i))
		var env []string
		if strings.HasPrefix(j.Bench, "Redis") {
			env = []string{"FLOODGATE_REQUIRE_REDIS=1"}
		}
		pattern := fmt.Sprintf("-test.bench=^Benchmark%s$/^%s$", j.Bench, regexp.QuoteMeta(j.Impl))
		// Round -1: a run under a profiler, kept out of the tables and raw.txt.
		if _, err := r.bench(ctx, env, -1, pattern, "-test.benchtime="+p.ProfileTime, "-timed.cpuprofile="+file); err != nil {
			j.Err = err.Error()
			continue
		}
		out, err := exec.CommandContext(ctx, "go", "tool", "pprof", "-top", fmt.Sprintf("-nodecount=%d", profileTop), r.bin, file).CombinedOutput()
		if err != nil {
			j.Err = fmt.Sprintf("go tool pprof: %v: %s", err, lastLines(string(out), 5))
			continue
		}
		j.Total, j.Top, err = parseTop(out)
		if err != nil {
			j.Err = err.Error()
		}
	}
	return jobs
}

// parseTop reads go tool pprof -top output: the "Duration:" line, then after
// the "flat  flat%" header, lines of flat, flat%, sum%, cum, cum%, name.
func parseTop(out []byte) (total string, top []profileLine, err error) {
	sc := bufio.NewScanner(bytes.NewReader(out))
	table := false
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case strings.HasPrefix(line, "Duration:"):
			total = line
		case strings.HasPrefix(line, "flat") && strings.Contains(line, "flat%"):
			table = true
		case table && line != "":
			f := strings.Fields(line)
			if len(f) < 6 {
				return total, top, fmt.Errorf("pprof -top: unexpected line %q", line)
			}
			flat, err1 := percent(f[1])
			cum, err2 := percent(f[4])
			if err1 != nil || err2 != nil {
				return total, top, fmt.Errorf("pprof -top: unexpected line %q", line)
			}
			top = append(top, profileLine{Func: shortFunc(strings.Join(f[5:], " ")), Flat: flat, Cum: cum})
		}
	}
	if len(top) == 0 {
		return total, nil, fmt.Errorf("pprof -top: no samples:\n%s", lastLines(string(out), 10))
	}
	return total, top, nil
}

func percent(s string) (float64, error) {
	return strconv.ParseFloat(strings.TrimSuffix(s, "%"), 64)
}

// shortFunc drops floodgate's module path and pprof's "(inline)" from a
// function name.
func shortFunc(name string) string {
	name = strings.TrimSuffix(name, " (inline)")
	return strings.TrimPrefix(name, "github.com/floodgate-go/floodgate/")
}

// profileOf returns this run's profile of b on impl, if there is one.
func (r *report) profileOf(b, impl string) (profile, bool) {
	for _, p := range r.Profiles {
		if p.Bench == b && p.Impl == impl && p.Err == "" {
			return p, true
		}
	}
	return profile{}, false
}

// topShare names a profile's largest functions by flat time, e.g.
// "runtime.nanotime 22%, sync.(*Mutex).Lock 14%, …".
func (p profile) topShare(n int) string {
	var parts []string
	for _, l := range p.Top[:min(n, len(p.Top))] {
		parts = append(parts, fmt.Sprintf("`%s` %.0f%%", l.Func, l.Flat))
	}
	return strings.Join(parts, ", ")
}

func profileAnchor(b, impl string) string {
	return "profile-" + strings.ToLower(b) + "-" + strings.ToLower(impl)
}

func writeProfiles(w writer, r *report) {
	w("## Profiles\n\n")
	w("Where the time of floodgate's side goes, from CPU profiles this run took of the timed part of each benchmark alone ")
	w("(`-timed.cpuprofile`: runtime/pprof around the timed loop, one benchmark per process, `-test.benchtime=%s`; a parallel benchmark's samples add up every core), ", r.Plan.ProfileTime)
	w("summarized with `go tool pprof -top`: the %d functions with the most samples in themselves (flat) and, beside it, with what they call (cum), as a share of all samples.\n\n", profileTop)
	if len(r.Profiles) == 0 {
		w("_No profiles in this report._\n\n")
		return
	}
	for _, p := range r.Profiles {
		w("### %s, %s\n<a id=\"%s\"></a>\n\n", p.Bench, p.Impl, profileAnchor(p.Bench, p.Impl))
		if p.Err != "" {
			w("_%s_\n\n", oneLine(p.Err))
			continue
		}
		w("%s%s\n\n| function | flat | cum |\n|---|---:|---:|\n", p.Total, sampleNote(p.Total))
		for _, l := range p.Top {
			w("| `%s` | %.1f%% | %.1f%% |\n", l.Func, l.Flat, l.Cum)
		}
		w("\n")
	}
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// sampleNote counts the samples behind a profile's shares from pprof's
// "Total samples = 30ms" (runtime/pprof samples at 100 Hz), and says when
// they are too few for the shares to mean much.
func sampleNote(total string) string {
	_, after, ok := strings.Cut(total, "Total samples = ")
	if !ok {
		return ""
	}
	d, err := time.ParseDuration(strings.Fields(after)[0])
	if err != nil {
		return ""
	}
	n := int(d / (10 * time.Millisecond))
	if n < 100 {
		return fmt.Sprintf(": %d samples at 100 Hz, too few for the shares below to be more than rough", n)
	}
	return fmt.Sprintf(": %d samples at 100 Hz", n)
}
