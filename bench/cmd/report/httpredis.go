package main

import (
	"fmt"
	"slices"
	"strings"

	"github.com/floodgate-go/floodgate/bench"
)

// httpRef is the floodgate middleware a peer middleware is compared with:
// the one for the same framework.
func httpRef(im bench.HTTPImpl) string {
	if im.Bare == bench.BareEcho {
		return "echomw"
	}
	return "nethttpmw"
}

// httpPeers returns the middlewares that are not floodgate's.
func httpMiddlewares() []bench.HTTPImpl {
	var ms []bench.HTTPImpl
	for _, im := range bench.HTTPImpls() {
		if im.Bare != "" {
			ms = append(ms, im)
		}
	}
	return ms
}

func isFloodgateHTTP(im bench.HTTPImpl) bool { return im.Name == "nethttpmw" || im.Name == "echomw" }

// overheadCell is a middleware's median overhead and, for a peer, its ratio
// to the floodgate middleware of the same framework.
func overheadCell(s step, b string, im bench.HTTPImpl, unit string) string {
	v, ok := s.median(b, im.Name, unit)
	if !ok {
		return "–"
	}
	cell := fmt.Sprintf("%.0f", v)
	if isFloodgateHTTP(im) {
		return "**" + cell + "**"
	}
	if r, ok := s.ratioTo(b, im.Name, httpRef(im), unit); ok {
		cell += " (" + fmtRatio(r) + ")"
	}
	return cell
}

func httpName(im bench.HTTPImpl) string {
	if isFloodgateHTTP(im) {
		return "**" + im.Name + "** (floodgate)"
	}
	return im.Name
}

// writeHeadlineHTTP is the HTTP middleware part of the headline.
func writeHeadlineHTTP(w writer, r *report) {
	w("HTTP middleware: median overhead over the bare handler in ns per request (every core; each peer ÷ the floodgate middleware for the same framework: nethttpmw for net/http, echomw for Echo), allocations per request, and what a client rotating X-Forwarded-For, X-Real-IP, True-Client-IP and Forwarded on every request got through each middleware's default identity settings ([details](#http-middleware)).\n\n")
	w("| middleware | over | allowed: overhead ns | denied: overhead ns | allocs allowed / denied | spoofing: admitted / max |\n|---|---|---:|---:|---:|---:|\n")
	for _, im := range httpMiddlewares() {
		w("| %s | %s | %s | %s | %s / %s | %s |\n", httpName(im), im.Bare,
			overheadCell(r.Speed, "HTTPAllowed", im, "overhead-ns/op"), overheadCell(r.Speed, "HTTPDenied", im, "overhead-ns/op"),
			med(r.Speed, "HTTPAllowed", im.Name, "allocs/op", "%.0f"), med(r.Speed, "HTTPDenied", im.Name, "allocs/op", "%.0f"),
			spoofCell(r.Correctness, im))
	}
	w("\n")
}

func spoofCell(c correctness, im bench.HTTPImpl) string {
	run, _, ok := c.worst(bench.SpoofScenario, im.Name)
	switch {
	case !ok:
		return "–"
	case run.Admitted > run.Max:
		return fmt.Sprintf("**%d / %d**", run.Admitted, run.Max)
	}
	return fmt.Sprintf("%d / %d", run.Admitted, run.Max)
}

// writeHeadlineRedis is the Redis part of the headline.
func writeHeadlineRedis(w writer, r *report) {
	if r.Redis.Omitted != "" {
		w("Redis: not measured: %s.\n\n", r.Redis.Omitted)
		return
	}
	w("Redis tier, against one real redis-server on loopback: median ns per decision (each peer ÷ floodgate), allocations per decision, and Redis round trips per admitted request for a client flooding at 100× its rate and for a hot key (floodgate with Prefetch 64) ([details](#redis)).\n\n")
	w("| implementation | serial ns/op | parallel ns/op | allocs/op | flood: round trips per admitted | hot key: round trips per admitted |\n|---|---:|---:|---:|---:|---:|\n")
	for _, im := range bench.RedisImpls() {
		name := im.Name
		if name == reference {
			name = "**floodgate**"
		}
		w("| %s | %s | %s | %s | %s | %s |\n", name, redisCell(r.Redis.step, "RedisSerial", im, "ns/op"), redisCell(r.Redis.step, "RedisParallel", im, "ns/op"),
			med(r.Redis.step, "RedisSerial", im.Name, "allocs/op", "%.0f"),
			med(r.Redis.step, "RedisFlood", im.Name, "rt/admit", "%.3g"), med(r.Redis.step, "RedisHotKey", im.Name, "rt/admit", "%.3g"))
	}
	w("\n")
}

func redisCell(s step, b string, im bench.RedisImpl, unit string) string {
	v, ok := s.median(b, im.Name, unit)
	if !ok {
		return "–"
	}
	cell := fmt.Sprintf("%.0f", v)
	if im.Name == reference {
		return "**" + cell + "**"
	}
	if r, ok := s.ratio(b, im.Name, unit); ok {
		cell += " (" + fmtRatio(r) + ")"
	}
	return cell
}

func writeHTTP(w writer, r *report) {
	w("## HTTP middleware\n\n")
	w("Each middleware wraps the bare handler of its framework (`http.go`); requests come from %d,%03d clients (RemoteAddr 203.0.x.y), ", bench.HTTPClients/1000, bench.HTTPClients%1000)
	w("each of which sent one request (admitted) before the timer started; `b.RunParallel` sends them from every core, as a server would, through a ResponseWriter that keeps only the headers and the status. ")
	w("Each benchmark checks its own workload: on the allowed path every response must be 200, on the denied path every middleware response must be 429 (a bare handler always answers 200). ")
	w("Overhead is the middleware's ns/op minus its bare handler's in the same round; the ratio is each peer's overhead ÷ that of floodgate's middleware for the same framework (nethttpmw for net/http, echomw for Echo), taken within each round, median over %d rounds. ", r.Speed.Done)
	w("Every middleware runs with its library's defaults (headers, denied response); see the table for identity and headers.\n\n")
	w("| middleware | library | client identity by default | other deviations |\n|---|---|---|---|\n")
	for _, im := range bench.HTTPImpls() {
		w("| %s | %s | %s | %s |\n", im.Name, im.Library, orDash(im.Identity), orDash(im.Notes))
	}
	w("\n")
	for _, wl := range bench.HTTPWorkloads() {
		w("### %s\n\n%s. Policy %s.\n\n", wl.Name, wl.Doc, wl.Config)
		w("| handler | ns/op | overhead ns/op | ÷ floodgate | CPU overhead ns/op | ÷ floodgate | B/op | allocs/op |\n|---|---:|---:|---:|---:|---:|---:|---:|\n")
		for _, im := range bench.HTTPImpls() {
			n := im.Name
			ratio := func(unit string) string {
				switch {
				case im.Bare == "":
					return "–"
				case isFloodgateHTTP(im):
					return "1×"
				}
				if v, ok := r.Speed.ratioTo(wl.Name, n, httpRef(im), unit); ok {
					return fmtRatio(v)
				}
				return "–"
			}
			name := httpName(im)
			if im.Bare == "" {
				name = im.Name + " (bare)"
			}
			w("| %s | %s | %s | %s | %s | %s | %s | %s |\n", name, spread(r.Speed, wl.Name, n, "ns/op"),
				med(r.Speed, wl.Name, n, "overhead-ns/op", "%.0f"), ratio("overhead-ns/op"),
				med(r.Speed, wl.Name, n, "overhead-cpu-ns/op", "%.0f"), ratio("overhead-cpu-ns/op"),
				med(r.Speed, wl.Name, n, "B/op", "%.0f"), med(r.Speed, wl.Name, n, "allocs/op", "%.0f"))
		}
		w("\n")
	}
}

func writeSpoofing(w writer, r *report) {
	w("### Header spoofing with default settings\n\n")
	w("One TCP peer (RemoteAddr 198.51.100.7) sends %d requests through each middleware with its library's default identity settings (or, where the library has no default key, the RemoteAddr key function named in the HTTP table), ", bench.SpoofRequests)
	w("each request with a new address in X-Forwarded-For, X-Real-IP, True-Client-IP and Forwarded. Policy %s: the most one client may get is its burst. ", bench.SpoofConfig)
	w("`go test` (TestCorrectness, TestSpoofSmoke) fails unless floodgate's middlewares admit exactly Burst.\n\n")
	w("| middleware | admitted / max |\n|---|---:|\n")
	for _, im := range httpMiddlewares() {
		w("| %s | %s |\n", httpName(im), spoofCell(r.Correctness, im))
	}
	w("\n")
	for _, im := range httpMiddlewares() {
		if run, _, ok := r.Correctness.worst(bench.SpoofScenario, im.Name); ok && run.Admitted > run.Max {
			w("- **%s**: %d admitted, %d× the maximum. Its default identity: %s.\n", im.Name, run.Admitted, run.Admitted/max(run.Max, 1), im.Identity)
		}
	}
	w("\n")
}

func writeRedis(w writer, r *report) {
	s := r.Redis
	w("## Redis\n\n")
	if s.Omitted != "" {
		w("_Not measured: %s. `go test` skips the Redis benchmarks and TestRedisSmoke with a message in that case, and fails them under FLOODGATE_REQUIRE_REDIS=1._\n\n", s.Omitted)
		return
	}
	w("Every implementation talks to one real redis-server on 127.0.0.1 that each benchmark process starts for itself (internal/redistest), through its own go-redis v9 client (`ContextTimeoutEnabled: true`, RESP2, default pool) with a hook that counts commands and pipelines: each is one round trip (`redis.go`). ")
	w("Round trips include redis_rate's first EVALSHA answered NOSCRIPT and the EVAL that follows. ")
	w("Serial and parallel: %d keys in turn, policy %s, so every decision must be an admission (checked, as is the absence of errors); parallel runs %d goroutines per core, as a server has many requests waiting on Redis at once. ", bench.RedisKeys, bench.RedisStandard, 8)
	w("The paced scenarios send one client's requests at fixed times for %v per run; floodgate must not admit more than Burst + Rate×T (checked). %d rounds, interleaved; medians.\n\n", r.Plan.RedisPeriod, s.Done)
	if s.Cut != "" {
		w("_Redis step: %s._\n\n", s.Cut)
	}
	w("| name | library | algorithm | deviations |\n|---|---|---|---|\n")
	for _, im := range bench.RedisImpls() {
		w("| %s | %s | %s | %s |\n", im.Name, im.Library, im.Algorithm, orDash(im.Notes))
	}
	w("\n")
	for _, b := range []string{"RedisSerial", "RedisParallel"} {
		w("### %s\n\n| implementation | ns/op | ÷ floodgate | CPU ns/op | ÷ floodgate | B/op | allocs/op | round trips/op |\n|---|---:|---:|---:|---:|---:|---:|---:|\n", b)
		for _, im := range bench.RedisImpls() {
			ratio := func(unit string) string {
				if im.Name == reference {
					return "1×"
				}
				if v, ok := s.ratio(b, im.Name, unit); ok {
					return fmtRatio(v)
				}
				return "–"
			}
			w("| %s | %s | %s | %s | %s | %s | %s | %s |\n", im.Name, spread(s.step, b, im.Name, "ns/op"), ratio("ns/op"),
				med(s.step, b, im.Name, "cpu-ns/op", "%.0f"), ratio("cpu-ns/op"), med(s.step, b, im.Name, "B/op", "%.0f"),
				med(s.step, b, im.Name, "allocs/op", "%.0f"), med(s.step, b, im.Name, "rt/op", "%.3f"))
		}
		w("\n")
	}
	writeRedisServer(w, r)
	for _, p := range bench.PacedScenarios() {
		w("### %s\n\n%s.\n\n", p.Name, p.Doc)
		w("| implementation | requests | admitted | max (Burst + Rate×T) | round trips per request | round trips per admitted |\n|---|---:|---:|---:|---:|---:|\n")
		for _, im := range bench.RedisImpls() {
			w("| %s | %s | %s | %s | %s | %s |\n", im.Name, med(s.step, p.Name, im.Name, "requests", "%.0f"),
				med(s.step, p.Name, im.Name, "admitted", "%.0f"), med(s.step, p.Name, im.Name, "max", "%.0f"),
				med(s.step, p.Name, im.Name, "rt/req", "%.3g"), med(s.step, p.Name, im.Name, "rt/admit", "%.3g"))
		}
		w("\n")
	}
}

// writeRedisServer is what redis-server spent per decision in the serial
// and parallel benchmarks, from its own INFO, reset before each timed run.
func writeRedisServer(w writer, r *report) {
	s := r.Redis.step
	w("### Redis server time\n\n")
	w("What the redis-server spent on the decisions of RedisSerial and RedisParallel, from its own statistics: each timed run starts with `CONFIG RESETSTAT` and ends with `INFO cpu` and `INFO commandstats` on a separate connection (`redisstats_test.go`). ")
	w("Server CPU is the change of used_cpu_user + used_cpu_sys per decision (parsing, networking and the scripts); writes are the calls of SET, INCR, INCRBY, EXPIRE and PEXPIRE per decision, which every implementation must make at least once per decision (checked: the policy, %s, is one at which every implementation writes its state). ", bench.RedisStandard)
	w("Per command: calls per decision and the server's µs per call (usec_per_call); a command a script runs is listed too, and its time is also inside the script's. Medians over the rounds.\n\n")
	w("| benchmark | implementation | server CPU µs/decision | ÷ floodgate | writes/decision | commands: calls/decision × µs/call |\n|---|---|---:|---:|---:|---|\n")
	for _, b := range []string{"RedisSerial", "RedisParallel"} {
		for _, im := range bench.RedisImpls() {
			ratio := "1×"
			if im.Name != reference {
				ratio = "–"
				if v, ok := s.ratio(b, im.Name, "srv-cpu-us/op"); ok {
					ratio = fmtRatio(v)
				}
			}
			w("| %s | %s | %s | %s | %s | %s |\n", b, im.Name, med(s, b, im.Name, "srv-cpu-us/op", "%.2f"), ratio,
				med(s, b, im.Name, "writes/op", "%.2f"), commandCells(s, b, im.Name))
		}
	}
	w("\n")
}

// commandCells lists the commands impl ran on b, e.g.
// "evalsha 1.00 × 8.2 µs; set 1.00 × 1.1 µs".
func commandCells(s step, b, impl string) string {
	seen := map[string]bool{}
	var names []string
	for _, x := range s.Samples {
		if x.Bench != b || x.Impl != impl {
			continue
		}
		for unit := range x.Values {
			if name, ok := strings.CutSuffix(unit, "-calls/op"); ok && !seen[name] {
				seen[name] = true
				names = append(names, name)
			}
		}
	}
	slices.Sort(names)
	var parts []string
	for _, n := range names {
		calls, _ := s.median(b, impl, n+"-calls/op")
		if calls < 0.01 {
			continue // connection setup and the like
		}
		us, _ := s.median(b, impl, n+"-us/call")
		parts = append(parts, fmt.Sprintf("%s %.2f × %.2f µs", strings.ToUpper(n), calls, us))
	}
	if len(parts) == 0 {
		return "–"
	}
	return strings.Join(parts, "; ")
}
