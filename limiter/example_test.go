package limiter_test

import (
	"context"
	"expvar"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/floodgate-go/floodgate/limiter"
)

func Example() {
	l, err := limiter.New(limiter.PerMinute(3))
	if err != nil {
		panic(err)
	}
	defer l.Close()

	ctx := context.Background()
	for i := range 4 {
		d, err := l.Allow(ctx, "198.51.100.7")
		if err != nil {
			panic(err) // no decision: a closed limiter, an invalid cost, a nil ctx
		}
		fmt.Printf("request %d: allowed=%v remaining=%d retry after ~%ds\n",
			i+1, d.Allowed, d.Remaining, int(d.RetryAfter.Round(1e9).Seconds()))
	}
	// Another client has its own bucket.
	d, _ := l.Allow(ctx, "203.0.113.9")
	fmt.Println("other client allowed:", d.Allowed)
	// Output:
	// request 1: allowed=true remaining=2 retry after ~0s
	// request 2: allowed=true remaining=1 retry after ~0s
	// request 3: allowed=true remaining=0 retry after ~0s
	// request 4: allowed=false remaining=0 retry after ~20s
	// other client allowed: true
}

func ExampleNew_invalidPolicy() {
	_, err := limiter.New(limiter.Policy{Rate: 10, Burst: 0})
	fmt.Println(err)
	// Output:
	// limiter: invalid policy: burst 0 must be at least 1 with a finite rate
}

func ExampleLimiter_AllowN() {
	l, _ := limiter.New(limiter.Policy{Rate: 1, Burst: 10})
	defer l.Close()
	ctx := context.Background()
	d, _ := l.AllowN(ctx, "bulk-client", 8) // an expensive request
	fmt.Println(d.Allowed, d.Remaining)
	d, _ = l.AllowN(ctx, "bulk-client", 5)
	fmt.Println(d.Allowed, d.Remaining)
	_, err := l.AllowN(ctx, "bulk-client", 11) // could never be admitted
	fmt.Println(err)
	// Output:
	// true 2
	// false 2
	// limiter: invalid cost: cost 11 is outside [1, burst 10]
}

func ExampleLimiter_Peek() {
	l, _ := limiter.New(limiter.PerMinute(3))
	defer l.Close()
	ctx := context.Background()

	l.AllowN(ctx, "198.51.100.7", 2)
	// What would a request of cost 2 get now? Peek answers, taking nothing.
	d, _ := l.Peek(ctx, "198.51.100.7", 2)
	fmt.Printf("cost 2: allowed=%v remaining=%d retry after ~%ds\n",
		d.Allowed, d.Remaining, int(d.RetryAfter.Round(time.Second).Seconds()))
	d, _ = l.Peek(ctx, "198.51.100.7", 1)
	fmt.Printf("cost 1: allowed=%v remaining=%d\n", d.Allowed, d.Remaining)
	// A key the limiter has never seen is answered a full bucket, and is
	// still not tracked afterwards.
	d, _ = l.Peek(ctx, "203.0.113.9", 3)
	fmt.Println("new client, cost 3:", d.Allowed, "tracked keys:", l.Stats().Keys)
	// Output:
	// cost 2: allowed=false remaining=1 retry after ~20s
	// cost 1: allowed=true remaining=0
	// new client, cost 3: true tracked keys: 1
}

func ExampleAllowAll() {
	perIP, _ := limiter.New(limiter.PerMinute(100))
	defer perIP.Close()
	perKey, _ := limiter.New(limiter.PerMinute(2))
	defer perKey.Close()

	ctx := context.Background()
	for range 3 {
		d, err := limiter.AllowAll(ctx,
			limiter.Limit{Name: "per-ip", Limiter: perIP, Key: "198.51.100.7"},
			limiter.Limit{Name: "per-key", Limiter: perKey, Key: "key-42"},
		)
		if err != nil {
			panic(err)
		}
		fmt.Printf("allowed=%v denied by %q\n", d.Allowed, d.DeniedBy)
	}
	// The denied request did not spend the per-ip limit.
	d, _ := perIP.Allow(ctx, "198.51.100.7")
	fmt.Println("per-ip remaining:", d.Remaining)
	// Output:
	// allowed=true denied by ""
	// allowed=true denied by ""
	// allowed=false denied by "per-key"
	// per-ip remaining: 97
}

func ExamplePlans() {
	plans, err := limiter.NewPlans(map[string]limiter.Policy{
		"free": limiter.PerMinute(1),
		"pro":  limiter.PerMinute(100),
	})
	if err != nil {
		panic(err)
	}
	defer plans.Close()

	ctx := context.Background()
	plans.Allow(ctx, "free", "user-1")
	d, _ := plans.Allow(ctx, "free", "user-1")
	fmt.Println("free, second request:", d.Allowed)

	// Upgrade the free plan at run time. user-1 keeps its bucket, and its
	// spending: it is still out of tokens, now under the new limit.
	if err := plans.Update(map[string]limiter.Policy{"free": limiter.PerMinute(5), "pro": limiter.PerMinute(100)}); err != nil {
		panic(err)
	}
	d, _ = plans.Allow(ctx, "free", "user-1")
	fmt.Println("after the update:", d.Allowed, "limit", d.Limit)
	_, err = plans.Allow(ctx, "gold", "user-1")
	fmt.Println(err)
	// Output:
	// free, second request: false
	// after the update: false limit 5
	// limiter: unknown plan "gold"
}

// An observer sees every decision; this one logs denials with log/slog.
// Event.LogValue writes a compact group and truncates long keys.
func ExampleWithObserver() {
	logger := slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr { // for a stable Output below
			switch {
			case a.Key == slog.TimeKey:
				return slog.Attr{}
			case a.Value.Kind() == slog.KindDuration:
				return slog.Duration(a.Key, a.Value.Duration().Round(time.Minute))
			}
			return a
		},
	}))
	logDenials := func(ctx context.Context, e limiter.Event) {
		if !e.Decision.Allowed {
			logger.LogAttrs(ctx, slog.LevelInfo, "rate limited", slog.Any("event", e))
		}
	}
	l, err := limiter.New(limiter.PerHour(1), limiter.WithObserver(logDenials))
	if err != nil {
		panic(err)
	}
	defer l.Close()
	l.Allow(context.Background(), "198.51.100.7")
	l.Allow(context.Background(), "198.51.100.7")
	// Output:
	// level=INFO msg="rate limited" event.key=198.51.100.7 event.allowed=false event.cost=1 event.remaining=0 event.retry_after=1h0m0s
}

// The library registers nothing by itself (no /debug/vars, no flags); to
// serve the counters with expvar, publish them.
func ExampleLimiter_Stats() {
	l, err := limiter.New(limiter.PerMinute(1))
	if err != nil {
		panic(err)
	}
	defer l.Close()
	expvar.Publish("ratelimit", expvar.Func(func() any { return l.Stats() }))

	l.Allow(context.Background(), "a")
	l.Allow(context.Background(), "a")
	s := l.Stats()
	fmt.Println(s.Keys, s.Allowed, s.Denied)
	// Output: 1 1 1
}

// Queue outbound calls instead of failing them: a client of a third-party
// API with its own limit waits its turn, in order, and never past its
// context's deadline.
func ExampleLimiter_Wait() {
	upstream, err := limiter.New(limiter.Policy{Rate: 1000, Burst: 2}) // the API's limit
	if err != nil {
		panic(err)
	}
	defer upstream.Close()
	ctx := context.Background()
	for range 4 { // two at once, then one a millisecond
		if err := upstream.Wait(ctx, "api.example.com"); err != nil {
			panic(err) // ctx ended, or the wait would pass its deadline
		}
		// … make the call
	}
	// A wait longer than the time left fails at once, reserving nothing.
	short, cancel := context.WithTimeout(ctx, 0)
	defer cancel()
	err = upstream.WaitN(short, "api.example.com", 2)
	fmt.Println(err != nil)
	// Output: true
}

// Limit per plan and per client at once: an API key's plan (free 600 a
// minute, pro 6,000 a minute) and at most 100 a second per client address,
// with AllowAll, so a request denied by one limit costs nothing on the
// other.
func ExamplePlans_perAPIKey() {
	plans, err := limiter.NewPlans(map[string]limiter.Policy{
		"free": limiter.PerMinute(600),
		"pro":  limiter.PerMinute(6000),
	})
	if err != nil {
		panic(err)
	}
	defer plans.Close()
	perIP, err := limiter.New(limiter.PerSecond(100))
	if err != nil {
		panic(err)
	}
	defer perIP.Close()
	planOf := map[string]string{"key-1": "free", "key-2": "pro"} // your API keys

	allow := func(ctx context.Context, clientIP, apiKey string) (limiter.CompositeDecision, error) {
		plan, ok := planOf[apiKey]
		if !ok {
			plan = "free" // or refuse the key, after charging the client's address
		}
		l, _ := plans.Limiter(plan)
		return limiter.AllowAll(ctx,
			limiter.Limit{Name: "per-ip", Limiter: perIP, Key: clientIP},
			limiter.Limit{Name: plan, Limiter: l, Key: plan + "|" + apiKey},
		)
	}
	d, err := allow(context.Background(), "198.51.100.7", "key-2")
	if err != nil {
		panic(err) // no decision was made
	}
	fmt.Println(d.Allowed, d.Tightest, d.Limit)
	// Output: true per-ip 100
}
