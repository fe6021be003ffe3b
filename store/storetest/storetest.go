// Package storetest is a conformance suite for [store.Store]
// implementations, in the style of testing/slogtest: a Store's own test
// calls Run with a constructor, and every behaviour the limiter relies on is
// checked as a subtest.
//
// The suite uses only slow policies (one token per hour), so it needs no
// control over the store's clock and runs unchanged against a real server.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/floodgate-go/floodgate/limiter"
	"github.com/floodgate-go/floodgate/store"
)

// slow refills one token per hour: within a test, nothing refills.
func slow(burst int) limiter.Policy { return limiter.Policy{Rate: rate.Every(time.Hour), Burst: burst} }

// Run runs the suite. newStore returns a Store with no buckets (a fresh
// namespace); it is called once per subtest. The suite reads
// Result.At as microseconds (Redis TIME's unit): it ages a refund by
// passing an At an hour earlier.
func Run(t *testing.T, newStore func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		f    func(*testing.T, store.Store)
	}{
		{"BurstThenDeny", testBurstThenDeny},
		{"DenyTakesNothing", testDenyTakesNothing},
		{"Extra", testExtra},
		{"Reset", testReset},
		{"Refund", testRefund},
		{"At", testAt},
		{"MaxBurst", testMaxBurst},
		{"KeysAreSeparate", testKeysAreSeparate},
		{"InvalidRequest", testInvalidRequest},
		{"CanceledContext", testCanceledContext},
		{"ConcurrentExact", testConcurrentExact},
		{"PeekEqualsTake", testPeekEqualsTake},
		{"PeekChangesNothing", testPeekChangesNothing},
		{"PeekInvalid", testPeekInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.f(t, newStore(t)) })
	}
}

func take(t *testing.T, s store.Store, key string, p limiter.Policy, cost, extra int) store.Result {
	t.Helper()
	res, err := s.Take(context.Background(), key, store.Request{Rate: p.Rate, Burst: p.Burst, Cost: cost, Extra: extra})
	if err != nil {
		t.Fatalf("Take(%q, cost %d, extra %d): %v", key, cost, extra, err)
	}
	return res
}

func testBurstThenDeny(t *testing.T, s store.Store) {
	p := slow(5)
	for i := range 5 {
		d := take(t, s, "k", p, 1, 0)
		if !d.Allowed || d.Remaining != 4-i || d.RetryAfter != 0 {
			t.Fatalf("request %d: got %+v, want allowed, Remaining %d", i, d, 4-i)
		}
		if want := time.Duration(i+1) * time.Hour; d.ResetAfter > want || d.ResetAfter < want-time.Minute {
			t.Fatalf("request %d: ResetAfter %v, want about %v", i, d.ResetAfter, want)
		}
	}
	d := take(t, s, "k", p, 1, 0)
	if d.Allowed || d.Remaining != 0 || d.RetryAfter > time.Hour || d.RetryAfter < time.Hour-time.Minute {
		t.Fatalf("request 6: got %+v, want denied with RetryAfter about 1h", d)
	}
}

func testDenyTakesNothing(t *testing.T, s store.Store) {
	p := slow(5)
	take(t, s, "k", p, 3, 0)
	if d := take(t, s, "k", p, 3, 0); d.Allowed || d.Remaining != 2 {
		t.Fatalf("cost 3 with 2 left: got %+v, want denied, Remaining 2", d)
	}
	if d := take(t, s, "k", p, 2, 0); !d.Allowed || d.Remaining != 0 {
		t.Fatalf("cost 2 with 2 left: got %+v, want allowed, Remaining 0", d)
	}
}

func testExtra(t *testing.T, s store.Store) {
	p := slow(10)
	res := take(t, s, "k", p, 1, 4)
	if !res.Allowed || res.Extra != 4 || res.Remaining != 5 {
		t.Fatalf("cost 1 extra 4 on a full bucket: got %+v, want allowed, Extra 4, Remaining 5", res)
	}
	// Hold is (Burst - level + Cost)/Rate = (10 - 10 + 1) hours.
	if res.Hold > time.Hour || res.Hold < time.Hour-time.Minute {
		t.Fatalf("Hold %v, want about 1h", res.Hold)
	}
	res = take(t, s, "k", p, 1, 100)
	if !res.Allowed || res.Extra != 4 || res.Remaining != 0 {
		t.Fatalf("cost 1 extra 100 with 5 left: got %+v, want allowed, Extra 4, Remaining 0", res)
	}
	res = take(t, s, "k", p, 1, 100)
	if res.Allowed || res.Extra != 0 {
		t.Fatalf("empty bucket: got %+v, want denied, Extra 0", res)
	}
}

func testReset(t *testing.T, s store.Store) {
	p := slow(2)
	ctx := context.Background()
	take(t, s, "k", p, 2, 0)
	if d := take(t, s, "k", p, 1, 0); d.Allowed {
		t.Fatalf("after the burst: got %+v, want denied", d)
	}
	if err := s.Reset(ctx, "k"); err != nil {
		t.Fatalf("Reset: %v", err)
	}
	if d := take(t, s, "k", p, 2, 0); !d.Allowed {
		t.Fatalf("after Reset: got %+v, want a full bucket", d)
	}
	if err := s.Reset(ctx, "never-seen"); err != nil {
		t.Fatalf("Reset of an unknown key: %v", err)
	}
}

// HostileKeys returns keys that look alike, or try to escape a namespace
// or pick a Cluster slot. Each must have its own bucket. The slice is new
// on every call: the caller may change it.
func HostileKeys() []string { return slices.Clone(hostileKeys) }

var hostileKeys = []string{
	"", "a", "A", "a:", ":a", "a:b", "r:a", "h:a", "a:r:b", "{a}", "{a", "a}", "a\x00", "\x00a",
	"\xff\xfe", "a b", "a\r\nb", "a*", "192.0.2.1", "2001:db8::/64",
	strings.Repeat("x", 64), strings.Repeat("x", 65), strings.Repeat("x", 1<<16),
	strings.Repeat("x", 1<<16-1) + "y",
}

func testKeysAreSeparate(t *testing.T, s store.Store) {
	p := slow(1)
	for i, k := range hostileKeys {
		if d := take(t, s, k, p, 1, 0); !d.Allowed {
			t.Fatalf("key %d (%.20q…): first request denied; it shares a bucket with an earlier key", i, k)
		}
	}
	for i, k := range hostileKeys {
		if d := take(t, s, k, p, 1, 0); d.Allowed {
			t.Fatalf("key %d (%.20q…): second request allowed; its bucket was not kept", i, k)
		}
	}
}

func testInvalidRequest(t *testing.T, s store.Store) {
	ctx := context.Background()
	bad := []store.Request{
		{Rate: slow(5).Rate, Burst: 5, Cost: 0},
		{Rate: slow(5).Rate, Burst: 5, Cost: 6},
		{Rate: slow(5).Rate, Burst: 5, Cost: 1, Extra: -1},
		{Rate: 0, Burst: 5, Cost: 1},
		{Rate: rate.Inf, Burst: 5, Cost: 1},
	}
	for _, req := range bad {
		if _, err := s.Take(ctx, "k", req); err == nil {
			t.Errorf("Take(%+v): got nil error, want one", req)
		}
	}
}

func testCanceledContext(t *testing.T, s store.Store) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	start := time.Now()
	_, err := s.Take(ctx, "k", store.Request{Rate: slow(5).Rate, Burst: slow(5).Burst, Cost: 1})
	if err == nil || !errors.Is(err, context.Canceled) {
		t.Fatalf("Take with a canceled context: got %v, want an error wrapping context.Canceled", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("Take with a canceled context took %v", d)
	}
}

func testConcurrentExact(t *testing.T, s store.Store) {
	const burst, workers, each = 100, 8, 40
	p := slow(burst)
	var mu sync.Mutex
	admitted, extra := 0, 0
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			for range each {
				res, err := s.Take(context.Background(), "hot", store.Request{Rate: p.Rate, Burst: p.Burst, Cost: 1, Extra: w % 3})
				if err != nil {
					errs <- fmt.Errorf("storetest: Take: %w", err)
					return
				}
				mu.Lock()
				if res.Allowed {
					admitted++
					extra += res.Extra
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if admitted+extra != burst {
		t.Fatalf("%d workers × %d requests on burst %d: admitted %d + extra %d, want exactly %d taken",
			workers, each, burst, admitted, extra, burst)
	}
}

// hour is how long slow policies take to refill one token, in the unit of
// Result.At.
const hour = int64(time.Hour / time.Microsecond)

func refund(t *testing.T, s store.Store, key string, p limiter.Policy, cost int, at int64) {
	t.Helper()
	if err := s.Refund(context.Background(), key, store.Request{Rate: p.Rate, Burst: p.Burst, Cost: cost}, at); err != nil {
		t.Fatalf("Refund(%q, cost %d): %v", key, cost, err)
	}
}

// takes fails unless successive cost-1 takes on key are allowed as want
// says, the first leaving remaining.
func takes(t *testing.T, s store.Store, key string, p limiter.Policy, remaining int, want ...bool) {
	t.Helper()
	for i, w := range want {
		d := take(t, s, key, p, 1, 0)
		if d.Allowed != w || (i == 0 && d.Remaining != remaining) {
			t.Fatalf("%s: take %d: got %+v, want allowed %v (Remaining %d at the first)", key, i, d, w, remaining)
		}
	}
}

// testRefund: a refund gives back the cost less what the bucket has
// regained since the take (Result.At) — all of it right after the
// take, nothing once the cost has had time to refill, the rest in between
// — never beyond Burst; a refund to a key with no bucket creates nothing.
func testRefund(t *testing.T, s store.Store) {
	p := slow(3)
	take(t, s, "now", p, 1, 0)
	res := take(t, s, "now", p, 2, 0)
	refund(t, s, "now", p, 2, res.At) // right after the take: all of it
	takes(t, s, "now", p, 1, true, true, false)

	res = take(t, s, "aged", p, 1, 0)
	refund(t, s, "aged", p, 1, res.At-hour) // the token has had an hour to refill: nothing
	takes(t, s, "aged", p, 1, true, true, false)
	res = take(t, s, "aged+", p, 2, 0)
	refund(t, s, "aged+", p, 1, res.At-2*hour) // older still: nothing either
	takes(t, s, "aged+", p, 0, true, false)

	p4 := slow(4)
	res = take(t, s, "partial", p4, 3, 0)
	refund(t, s, "partial", p4, 3, res.At-hour*3/2) // 1.5 of 3 regained: 1.5 back, level 2.5
	takes(t, s, "partial", p4, 1, true, true, false)

	// Capped at Burst: refunding more than was taken adds nothing beyond it.
	res = take(t, s, "over", p, 1, 0)
	refund(t, s, "over", p, 3, res.At)
	takes(t, s, "over", p, 2, true, true, true, false)
	res = take(t, s, "over-partial", p, 1, 0)
	refund(t, s, "over-partial", p, 3, res.At-hour/2) // 2.5 back onto 2
	takes(t, s, "over-partial", p, 2, true, true, true, false)

	refund(t, s, "full", p, 3, 0) // no bucket: full already, left alone
	if d := take(t, s, "full", p, 3, 0); !d.Allowed || d.Remaining != 0 {
		t.Fatalf("cost 3 after a refund to a new key: got %+v, want allowed, Remaining 0", d)
	}
	err := s.Refund(context.Background(), "now", store.Request{Rate: p.Rate, Burst: p.Burst, Cost: 0}, res.At)
	if err == nil {
		t.Fatal("Refund with cost 0: no error")
	}
}

// testAt: an admission's At is the store time before which its bucket
// could not have refilled to Burst without it, so a refund within that
// time gives the whole cost back, however long after the take it comes;
// and admissions' At never go back on one key.
func testAt(t *testing.T, s store.Store) {
	p := slow(3)
	take(t, s, "short", p, 2, 0)
	res := take(t, s, "short", p, 1, 0)      // two hours from full before it
	refund(t, s, "short", p, 1, res.At-hour) // an hour later: still short, all back
	takes(t, s, "short", p, 0, true, false)

	var prev int64
	for i := range 20 {
		res := take(t, s, "k", slow(5), 1+i%3, i%2)
		if !res.Allowed {
			continue
		}
		if res.At < prev {
			t.Fatalf("take %d: At %d, before the previous admission's %d", i, res.At, prev)
		}
		prev = res.At
		if i%5 == 4 {
			refund(t, s, "k", slow(5), 1, res.At)
		}
	}
}

// testMaxBurst: a bucket of 2^53 tokens (the largest Burst) takes, denies,
// prefetches and refunds with exact Remaining counts, and its durations
// (years at one token per hour) come back positive, not overflowed.
func testMaxBurst(t *testing.T, s store.Store) {
	const b = 1 << 53 // the largest Burst a Policy may have
	p := slow(b)
	check := func(what string, res store.Result, allowed bool, remaining int) {
		t.Helper()
		d := res
		if d.Allowed != allowed || d.Remaining != remaining || d.ResetAfter <= 0 || d.RetryAfter < 0 || res.Hold < 0 {
			t.Fatalf("%s: got %+v, want allowed %v, Remaining %d, durations not overflowed", what, res, allowed, remaining)
		}
		if !allowed && (d.RetryAfter < time.Hour-time.Minute || d.RetryAfter > time.Hour) {
			t.Fatalf("%s: RetryAfter %v, want about the hour one token takes", what, d.RetryAfter)
		}
	}
	check("cost 2^53-1 on a full bucket", take(t, s, "k", p, b-1, 0), true, 1)
	check("cost 2 with 1 left", take(t, s, "k", p, 2, 0), false, 1)
	res := take(t, s, "k", p, 1, 0)
	check("cost 1 with 1 left", res, true, 0)
	check("cost 1 with 0 left", take(t, s, "k", p, 1, 0), false, 0)
	refund(t, s, "k", p, b, res.At) // capped at Burst
	check("cost 2^53 after refunding 2^53", take(t, s, "k", p, b, 0), true, 0)

	res = take(t, s, "extra", p, 1, 1000)
	check("cost 1 extra 1000 on a full bucket", res, true, b-1001)
	if res.Extra != 1000 || res.Hold < time.Hour-time.Minute || res.Hold > time.Hour {
		t.Fatalf("cost 1 extra 1000: Extra %d, Hold %v; want 1000 and about 1h", res.Extra, res.Hold)
	}
	check("cost 2^53-1001", take(t, s, "extra", p, b-1001, 0), true, 0)
}

func peek(t *testing.T, s store.Store, key string, p limiter.Policy, cost, extra int) store.Result {
	t.Helper()
	res, err := s.Peek(context.Background(), key, store.Request{Rate: p.Rate, Burst: p.Burst, Cost: cost, Extra: extra})
	if err != nil {
		t.Fatalf("Peek(%q, cost %d): %v", key, cost, err)
	}
	return res
}

// testPeekEqualsTake: a Peek answers what the Take right after it does
// (with no Extra; a Peek's Extra is ignored): the same Allowed and
// Remaining, RetryAfter and ResetAfter up to the time between the two
// calls; Extra and Hold 0. On a key the store has never seen, that is a
// full bucket.
func testPeekEqualsTake(t *testing.T, s store.Store) {
	p := slow(5)
	for i, cost := range []int{5, 1, 3, 2, 1, 4, 1, 5} { // on "k", from a full bucket, through denials
		pk := peek(t, s, "k", p, cost, i%2*3)
		tk := take(t, s, "k", p, cost, 0)
		if pk.Allowed != tk.Allowed || pk.Remaining != tk.Remaining || pk.Extra != 0 || pk.Hold != 0 {
			t.Fatalf("cost %d (step %d): Peek %+v, the next Take %+v: want the same Allowed and Remaining, Extra and Hold 0", cost, i, pk, tk)
		}
		for _, d := range [][2]time.Duration{{pk.RetryAfter, tk.RetryAfter}, {pk.ResetAfter, tk.ResetAfter}} {
			if d[0] < d[1] || d[0] > d[1]+time.Minute {
				t.Fatalf("cost %d (step %d): Peek %+v, the next Take %+v: want RetryAfter and ResetAfter a little longer at most", cost, i, pk, tk)
			}
		}
	}
	if res := peek(t, s, "unknown", p, 5, 0); !res.Allowed || res.Remaining != 0 || res.ResetAfter < 5*time.Hour-time.Minute {
		t.Fatalf("Peek(cost 5) on an unknown key: got %+v, want a full bucket's answer: allowed, Remaining 0, ResetAfter about 5h", res)
	}
}

// testPeekChangesNothing: any number of Peeks, of any cost and Extra, on a
// key with a bucket or without, take nothing.
func testPeekChangesNothing(t *testing.T, s store.Store) {
	p := slow(4)
	take(t, s, "k", p, 2, 0)
	for range 3 {
		for cost := 1; cost <= 4; cost++ {
			peek(t, s, "k", p, cost, 2)
			peek(t, s, "unknown", p, cost, 2)
		}
	}
	takes(t, s, "k", p, 1, true, true, false)
	takes(t, s, "unknown", p, 3, true, true, true, true, false)
}

// testPeekInvalid: Peek refuses what Take refuses (but a negative Extra,
// which it ignores), and returns promptly with ctx's error.
func testPeekInvalid(t *testing.T, s store.Store) {
	ctx := context.Background()
	bad := []store.Request{
		{Rate: slow(5).Rate, Burst: 5, Cost: 0},
		{Rate: slow(5).Rate, Burst: 5, Cost: 6},
		{Rate: 0, Burst: 5, Cost: 1},
		{Rate: rate.Inf, Burst: 5, Cost: 1},
	}
	for _, req := range bad {
		if _, err := s.Peek(ctx, "k", req); err == nil {
			t.Errorf("Peek(%+v): got nil error, want one", req)
		}
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.Peek(cctx, "k", store.Request{Rate: slow(5).Rate, Burst: 5, Cost: 1}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Peek with a canceled context: got %v, want an error wrapping context.Canceled", err)
	}
}
