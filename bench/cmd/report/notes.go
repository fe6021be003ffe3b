package main

import (
	"fmt"
	"slices"
	"strings"

	"github.com/floodgate-go/floodgate/bench"
)

// explanations says why a peer can be faster or smaller than floodgate,
// keyed by "workload/implementation", or "workload/*" for any
// implementation. They are written from profiles and from the peers' code; the
// report prints the ones that apply to the numbers it measured, and flags
// any loss it has no explanation for.
var explanations = map[string]string{
	// Per decision, floodgate does work the bool-returning peers skip.
	"HotKeySerial/*": "On one key every implementation is a map lookup, a clock read and a small locked update, so the figures are close and the CPU-time ratio is the fairer one on this loaded machine. " +
		"In a CPU profile of this benchmark (2 s) the clock read is 17% of floodgate's CPU, the sync.Map lookup 24% and the locked bucket update 26%; " +
		"what a bool-returning limiter skips is the whole Decision (Remaining, RetryAfter, ResetAfter: float divisions in policyMath.take, 12%) " +
		"that the middleware needs for its RateLimit and Retry-After headers. Counting the decision in Stats costs about 1%.",
	"HotKeySerial/sethvargo": "sethvargo's fixed window is an integer division and a decrement, with no float refill; " +
		"it is also not the policy: it admits up to 2×Burst around a window boundary (see the correctness table). " +
		"floodgate also computes the full Decision for the headers (policyMath.take, 12% of its CPU in a profile).",
	"HotKeyParallel/*": "Every implementation serialises on one lock here (the key's bucket, or a store-wide mutex), so all of them run at about one decision at a time; " +
		"the spread between rounds on this shared machine is as large as the differences (the min–max ranges overlap), and CPU time per decision is shown in parentheses for comparison.",
	"ManyKeysParallel/*": "With 100,000 keys each lookup misses the CPU cache. floodgate keeps its buckets in a sync.Map (a hash trie: a lookup walks " +
		"several 16-way nodes, each a dependent memory load), and the hash-trie Load is 40% of floodgate's CPU in a profile of this benchmark (2 s); " +
		"a built-in Go map (echo, sethvargo, map+Mutex) finds the entry in one or two loads, and on 2 cores its single lock costs little. " +
		"The sync.Map baseline walks the same trie. Counting the decision in Stats is about 2% of floodgate's CPU here.",
	"ManyKeysParallel/sync.Map": "The sync.Map baseline walks the same hash trie as floodgate (the trie Load is 40% of floodgate's CPU in a profile of this benchmark), so the lookups cost the same; " +
		"per decision floodgate also fills the whole Decision for the headers (policyMath.take, 6% of its CPU), counts it in the bucket and checks the bucket's retire state. " +
		"Both sides' min–max ranges over the rounds are wide and overlap on this shared machine (see the table).",
	"NewKeyEveryCall/*": "A new key costs floodgate more than an insert into a plain map: an atomic add on the single counter that enforces the exact key cap (shared by both cores), " +
		"the key copied into a 16-byte array boxed in an interface, a 32-byte bucket (which also holds its Stats counts), a sync.Map insert (an entry node and trie nodes) and the pending-bucket handshake with the overflow bucket " +
		"(limiter/overflow.go); see B/op and allocs/op. This is the price of the cap: floodgate's memory stops growing at MaxKeys (see the spray), the unbounded peers' does not.",
	"NewKeyEveryCall/httprate": "httprate stores no key and no per-key object: it adds a 64-bit hash of the key to a map[uint64]int, " +
		"so two clients whose keys collide share a counter, and it forgets everything older than two windows.",
	"BytesPerKey/*": "floodgate's bucket is 32 bytes with its Stats counts (rate.Limiter's is 80) and a short key 16 bytes (a fixed array boxed in an interface), but its table is a sync.Map: every key costs an entry node " +
		"and a share of the hash trie's 16-way nodes, about 100 bytes together besides the bucket and the key, " +
		"where a built-in Go map costs one slot plus growth slack. The sync.Map baseline has the same table with 80-byte rate.Limiter buckets and pays the same overhead.",
	"HTTPAllowed/echo": "Echo's RateLimiter sets no response header on an admitted request; floodgate's middlewares write the RateLimit-Policy and RateLimit fields on every response, " +
		"and the RateLimit value changes with every request (its r= is the remaining count), so it is formatted each time: in a CPU profile of this benchmark (2 cores, -benchtime 3s) " +
		"Gate's header writing (fields.set) is 28% of nethttpmw's CPU and 21% of echomw's; " +
		"its one allocation per request (the array behind the response's own header values, which also holds the formatted value's bytes) is floodgate's only one on this path. " +
		"Echo's router wraps every middleware in a new closure on every request, which is echo's one allocation and echomw's second. On the denied path, where the headers are cached, floodgate's middlewares lead.",
	"HTTPAllowed/*": "floodgate's middlewares write the RateLimit-Policy and RateLimit fields on every response, and on this path the RateLimit value (its remaining count) changes with every request, " +
		"so it is formatted each time (fields.set: 21–28% of the middleware's CPU in a profile of this benchmark, and its one allocation per request: the array behind the response's own header values).",
	"HTTPDenied/echo": "Both middlewares return a 429 *echo.HTTPError, which Echo's DefaultHTTPErrorHandler renders as JSON ({\"message\": …}, encoding/json over a map): " +
		"in a memory profile of this benchmark that handler accounts for 68% of all bytes allocated, so both spend most of their overhead in Echo itself.",
	"RedisSerial/*": "Each decision is one round trip to a redis-server on the same 2 cores, so the figures are mostly the round trip. " +
		"floodgate's Lua script does more per call: INFO commandstats over 5,000 serial decisions shows 8.2 µs of server time per EVALSHA for floodgate, 4.7 µs for redis_rate and 3.6 µs for ulule; " +
		"it reads TIME, GETs the bucket, and SETs it back as two 17-digit floats formatted with string.format (level and time, so that the Decision has exact Remaining, RetryAfter and ResetAfter, and prefetch leases a Hold), with an expiry. " +
		"Client side, floodgate spends about 10% more CPU per decision than ulule (29.7 vs 26.6 µs CPU per decision in a profile; both are about 60% syscalls): " +
		"a context with the store timeout and the breaker and deny-cache bookkeeping around the call (761 vs 454 B/op). ulule's fixed window is an INCR with an expiry and no clock read.",
	"RedisParallel/*": "As for RedisSerial: one round trip per decision to a redis-server that shares the 2 cores, and floodgate's script takes about twice the server time of the peers' (8.2 µs per EVALSHA against 4.7 µs for redis_rate and 3.6 µs for ulule in INFO commandstats), " +
		"which counts more when many requests wait on one single-threaded server. The gap closes where it matters: floodgate answers a flooding client from its deny cache and a hot key from prefetch leases, with far fewer round trips (the paced tables).",
	"BytesPerKey/httprate": "httprate keeps no key and no per-key object: a map[uint64]int entry per key (a 64-bit xxh3 hash, so colliding keys share a counter) " +
		"in each of its two windows.",
	"BytesPerKey/sethvargo": "sethvargo's fixed-window bucket (64 bytes) sits in a built-in Go map. floodgate's 32-byte bucket and 16-byte key sit in a sync.Map, whose entry node and " +
		"hash-trie nodes cost about 100 bytes per key.",
}

// overExplanations says why an implementation over-admits in a correctness
// scenario, keyed by "scenario/implementation"; written from the peers' code.
var overExplanations = map[string]string{
	"contention/map+Mutex": "The baseline calls rate.Limiter.Allow, which reads the clock before taking the limiter's lock. " +
		"When two calls reach the lock in the other order, rate.Limiter moves its last-update time backwards and the next call counts that refill a second time. " +
		"floodgate treats the later arrival as happening at the later time (limiter/doc.go, \"Differences from rate.Limiter\").",
	"contention/sync.Map": "Same cause as map+Mutex: rate.Limiter.Allow reads the clock outside its lock and moves its time backwards when calls arrive out of order. " +
		"echo uses rate.Limiter too but reads the clock under its store-wide mutex, so its time only moves forward.",
	"cleanup/echo": "echo deletes a key that has not been seen for ExpiresIn, whatever its bucket holds: the drained client comes back to a new, full bucket.",
	"cleanup/sethvargo": "sethvargo deletes a key idle for SweepMinTTL, whatever its window holds. Its documentation asks for SweepMinTTL at least as long as the interval " +
		"(10 ms here is shorter than the 2 s window) but does not enforce it; with its defaults (12 h) it does not over-admit here.",
	"cleanup, defaults/echo": "With echo's default ExpiresIn of 3 minutes, any policy whose bucket takes longer than that to refill (here 100 per hour) lets a drained client that stays away for a few minutes (here 4) spend a whole new burst: the key is deleted once it has not been seen for 3 minutes, on the next cleanup another client's request triggers.",
	"key spray/throttled": "throttled's memstore is an LRU of maxKeys: the spray evicts the drained client, which then starts over with a full burst. " +
		"floodgate never evicts a bucket that is not full; new keys over the cap share the overflow bucket instead.",
}

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
	}
	w("## Where floodgate does not lead\n\n")
	if len(losses) == 0 {
		w("Nowhere in this run: floodgate is at least as fast as every peer and baseline on every workload, and at least as small per key.\n\n")
	}
	for _, l := range losses {
		why, ok := explanations[l.what+"/"+l.impl]
		if !ok {
			why, ok = explanations[l.what+"/*"]
		}
		if !ok {
			why = "(no explanation recorded for this case)"
		}
		w("- **%s, %s**: %s of %s%s. %s\n", l.what, l.impl, fmtRatio(l.ratio), whose(l.what, l.impl, l.unit), qualify(r, l.what, l.impl, l.unit), why)
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
		if run, _, ok := r.Correctness.worst(s.Name, reference); ok && run.Admitted > run.Max {
			w("- **correctness, %s**: floodgate admitted %d, over the maximum of %d. This is a bug.\n", s.Name, run.Admitted, run.Max)
		}
	}
	w("\n")
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
	return "floodgate's " + unit
}
