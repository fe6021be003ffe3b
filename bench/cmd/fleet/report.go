package main

import (
	"fmt"
	"math"
	"os"
	"runtime"
	"strings"
	"time"
)

// report renders the results as markdown.
func report(o Options, ims []impl, results [][][]cell, saved [][]cell) string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	p("# Fleet: Redis-backed limiters, many instances on one Redis\n\n")
	p("Written by `cd bench && go run ./cmd/fleet %s` on %s. ", o.Args, time.Now().UTC().Format("2006-01-02 15:04 UTC"))
	p("%d instances, each with its own go-redis client, share one redis-server on loopback; each instance runs the given number of concurrent requests, each on %d keys of its own. Policy %g/s, burst %d on every key (every decision an admission, every implementation writing its state). %d interleaved rounds of %v per cell; each number is the median over rounds, each ratio the median of the per-round ratios.\n\n",
		o.Instances, keysPerRequest, fleetPolicy.Rate, fleetPolicy.Burst, o.Rounds, o.Duration)
	p("Machine: %d CPUs (GOMAXPROCS %d), %s/%s, load average %s at the end of the run; the client processes and redis-server share these CPUs.\n\n",
		runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.GOOS, runtime.GOARCH, loadAvg())
	if o.Smoke {
		p("**Smoke run: checks the workload, measures nothing.**\n\n")
	}
	p("Redis CPU is INFO cpu's used_cpu_sys + used_cpu_user before and after a cell; client CPU is this process's rusage (every instance's client, limiter and workload goroutines) over the cell.\n\n")

	p("Decisions/s and CPU per decision count Redis's decisions only. floodgate's limiter has a store timeout of 1 s here; a decision that timed out is made by its failure mode instead (failing open, an admission), is counted under fallbacks, and is left out of both; the peers have no failure mode, and an error from them stops the run.\n\n")
	p("| concurrent per instance | implementation | decisions/s | Redis CPU µs/decision | client CPU µs/decision | p99 latency | fallbacks |\n")
	p("|---:|---|---:|---:|---:|---:|---:|\n")
	for ci, conc := range o.Conc {
		for i, im := range ims {
			cs := results[i][ci]
			var fb int64
			for _, c := range cs {
				fb += c.fallbacks
			}
			p("| %d | %s | %.0f | %.2f | %.2f | %v | %d |\n", conc, im.name,
				median(pick(cs, func(c cell) float64 { return c.perSec })),
				median(pick(cs, func(c cell) float64 { return c.redisPer })),
				median(pick(cs, func(c cell) float64 { return c.clientPer })),
				time.Duration(median(pick(cs, func(c cell) float64 { return float64(c.p99) }))).Round(time.Microsecond), fb)
		}
	}

	on, off := index(ims, "floodgate"), index(ims, "floodgate (no coalescing)")
	p("\n## Ratios\n\n")
	p("| concurrent per instance | coalescing on ÷ off, decisions/s | best peer | floodgate ÷ best peer, decisions/s | floodgate ÷ best peer, Redis CPU per decision | one Redis core, floodgate decisions/s | one Redis core, best peer decisions/s |\n")
	p("|---:|---:|---|---:|---:|---:|---:|\n")
	for ci, conc := range o.Conc {
		best, bestRate := -1, 0.0
		for i, im := range ims {
			if strings.HasPrefix(im.name, "floodgate") {
				continue
			}
			if r := median(pick(results[i][ci], func(c cell) float64 { return c.perSec })); r > bestRate {
				best, bestRate = i, r
			}
		}
		ratio := func(a, b int, f func(cell) float64) float64 {
			var rs []float64
			for r := range results[a][ci] {
				rs = append(rs, f(results[a][ci][r])/f(results[b][ci][r]))
			}
			return median(rs)
		}
		perSec := func(c cell) float64 { return c.perSec }
		redisPer := func(c cell) float64 { return c.redisPer }
		p("| %d | %.2f× | %s | %.2f× | %.2f× | %s | %s |\n", conc, ratio(on, off, perSec), ims[best].name,
			ratio(on, best, perSec), ratio(on, best, redisPer),
			perCore(median(pick(results[on][ci], redisPer))), perCore(median(pick(results[best][ci], redisPer))))
	}
	p("\n\"One Redis core\" is 10^6 µs divided by the Redis CPU per decision: the decisions per second one fully busy Redis core would serve at that per-decision cost.\n")
	p("\n## What the deny cache and prefetch save Redis\n\n")
	p("floodgate (coalescing on) only, %d concurrent requests per instance. Requests answered by the deny cache (denials) or by prefetched tokens make no script call; without either, every decision is one. Redis CPU here includes its idle background work, which dominates when calls are this few.\n\n", saverConc)
	p("| workload | decisions/s | admitted/s | decisions per script call | admissions per script call | Redis CPU µs/decision |\n")
	p("|---|---:|---:|---:|---:|---:|\n")
	for k, wl := range savers {
		cs := saved[k]
		p("| %s | %.0f | %.0f | %.0f | %.2f | %.3f |\n", wl.name,
			median(pick(cs, func(c cell) float64 { return c.perSec })),
			median(pick(cs, func(c cell) float64 { return float64(c.admitted) / c.elapsed.Seconds() })),
			median(pick(cs, func(c cell) float64 { return float64(c.decisions) / float64(max(c.calls, 1)) })),
			median(pick(cs, func(c cell) float64 { return float64(c.admitted) / float64(max(c.calls, 1)) })),
			median(pick(cs, func(c cell) float64 { return c.redisPer })))
	}
	p("\nTargets (issue 13): coalescing on ÷ off ≥ 0.95× at 1, ≥ 1.3× at 16, ≥ 2.5× at 64, ≥ 3.5× at 256; floodgate ≥ 2× the best peer's decisions/s at 64 and 256 with ≤ 0.5× its Redis CPU per decision.\n")
	return b.String()
}

func perCore(us float64) string {
	if us <= 0 || math.IsNaN(us) {
		return "–"
	}
	return fmt.Sprintf("%.0f", 1e6/us)
}

func index(ims []impl, name string) int {
	for i, im := range ims {
		if im.name == name {
			return i
		}
	}
	panic("fleet: no implementation " + name)
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}
