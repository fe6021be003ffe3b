package limiter

import (
	"errors"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"golang.org/x/time/rate"

	"github.com/floodgate-go/floodgate/sweeper"
)

func mustPlans(t *testing.T, policies map[string]Policy, opts ...Option) *Plans {
	t.Helper()
	p, err := NewPlans(policies, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func TestPlansAllow(t *testing.T) {
	p := mustPlans(t, map[string]Policy{"free": PerMinute(1), "pro": PerMinute(3)})
	for plan, want := range map[string]int{"free": 1, "pro": 3} {
		got := 0
		for range 5 {
			if d, err := p.Allow(ctx, plan, "user-1"); err != nil {
				t.Fatal(err)
			} else if d.Allowed {
				got++
			}
		}
		if got != want {
			t.Errorf("plan %s admitted %d of 5, want %d", plan, got, want)
		}
	}
	if _, err := p.Allow(ctx, "enterprise", "user-1"); !errors.Is(err, ErrUnknownPlan) {
		t.Errorf("unknown plan: error %v, want ErrUnknownPlan", err)
	}
}

func TestNewPlansRejectsBadPolicies(t *testing.T) {
	_, err := NewPlans(map[string]Policy{"ok": PerSecond(1), "broken": {Rate: 1}})
	if !errors.Is(err, ErrInvalidPolicy) || !strings.Contains(err.Error(), `"broken"`) {
		t.Fatalf("NewPlans error = %v, want ErrInvalidPolicy naming the plan", err)
	}
	_, err = NewPlans(map[string]Policy{"ok": PerSecond(1)}, WithMaxKeys(-1))
	if !errors.Is(err, ErrInvalidOption) {
		t.Fatalf("NewPlans with a bad option: %v, want ErrInvalidOption", err)
	}
}

func TestPlansUpdate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := mustPlans(t, map[string]Policy{"free": PerMinute(2), "pro": PerMinute(2), "old": PerMinute(2)})
		for _, plan := range []string{"free", "pro"} {
			p.Allow(ctx, plan, "u")
			p.Allow(ctx, plan, "u") // drained
		}
		oldLimiter, _ := p.Limiter("old")

		// A bad table changes nothing.
		if err := p.Update(map[string]Policy{"free": PerMinute(2), "pro": {Rate: -1, Burst: 1}}); !errors.Is(err, ErrInvalidPolicy) {
			t.Fatalf("Update with a bad policy = %v, want ErrInvalidPolicy", err)
		}
		if _, err := p.Allow(ctx, "old", "u"); err != nil {
			t.Fatalf("a failed Update removed a plan: %v", err)
		}

		err := p.Update(map[string]Policy{
			"free": PerMinute(2),                               // unchanged: keeps its buckets
			"pro":  {Rate: rate.Every(time.Second), Burst: 10}, // changed: adopts the new policy
			"new":  PerMinute(1),
		})
		if err != nil {
			t.Fatal(err)
		}
		if d, _ := p.Allow(ctx, "free", "u"); d.Allowed {
			t.Error("an unchanged plan lost its buckets: a drained client was admitted")
		}
		// pro's drained bucket refills at the new rate: nothing yet, one
		// token a second from its last decision, capped at the new burst.
		if d, _ := p.Allow(ctx, "pro", "u"); d.Allowed || d.Limit != 10 {
			t.Errorf("pro right after the update: %+v, want denied with Limit 10", d)
		}
		time.Sleep(3 * time.Second)
		if d, _ := p.Allow(ctx, "pro", "u"); !d.Allowed || d.Remaining != 2 {
			t.Errorf("pro 3s later: %+v, want allowed with Remaining 2", d)
		}
		if d, err := p.Allow(ctx, "new", "u"); err != nil || !d.Allowed {
			t.Errorf("new plan: %+v, %v", d, err)
		}
		if _, err := p.Allow(ctx, "old", "u"); !errors.Is(err, ErrUnknownPlan) {
			t.Errorf("removed plan: %v, want ErrUnknownPlan", err)
		}
		if _, err := oldLimiter.Allow(ctx, "u"); !errors.Is(err, ErrClosed) {
			t.Errorf("the removed plan's Limiter is not closed: %v", err)
		}
		want := map[string]Policy{"free": PerMinute(2), "pro": {Rate: 1, Burst: 10}, "new": PerMinute(1)}
		if got := p.Policies(); len(got) != 3 || got["free"] != want["free"] || got["pro"] != want["pro"] || got["new"] != want["new"] {
			t.Errorf("Policies() = %v, want %v", got, want)
		}
	})
}

// TestPlansHotReload swaps between two tables while requests run: every
// decision comes from one whole table (its Limit matches a policy that was
// published for that plan) and no request ever sees a closed Limiter.
func TestPlansHotReload(t *testing.T) {
	v1 := map[string]Policy{"a": PerSecond(10), "b": PerSecond(20)}
	v2 := map[string]Policy{"a": PerSecond(11), "c": PerSecond(30)}
	valid := map[string][]int{"a": {10, 11}, "b": {20}, "c": {30}}
	p := mustPlans(t, v1)
	var stop atomic.Bool
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := 0; !stop.Load(); i++ {
				plan := []string{"a", "b", "c"}[(g+i)%3]
				d, err := p.Allow(ctx, plan, "client")
				switch {
				case errors.Is(err, ErrUnknownPlan) && plan != "a":
				case err != nil:
					t.Errorf("Allow(%s): %v", plan, err)
					return
				case !slices.Contains(valid[plan], d.Limit):
					t.Errorf("Allow(%s): Limit %d, not a published policy %v", plan, d.Limit, valid[plan])
					return
				}
			}
		})
	}
	for i := range 200 {
		if err := p.Update([]map[string]Policy{v2, v1}[i%2]); err != nil {
			t.Fatal(err)
		}
	}
	stop.Store(true)
	wg.Wait()
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Allow(ctx, "a", "client"); !errors.Is(err, ErrClosed) {
		t.Fatalf("Allow after Close: %v, want ErrClosed", err)
	}
	if err := p.Update(v1); !errors.Is(err, ErrClosed) {
		t.Fatalf("Update after Close: %v, want ErrClosed", err)
	}
}

func TestSetPolicy(t *testing.T) {
	l := mustNew(t, PerMinute(1))
	if err := l.SetPolicy(Policy{Rate: rate.Inf}); !errors.Is(err, ErrInvalidPolicy) {
		t.Errorf("SetPolicy(rate.Inf) on a finite Limiter = %v, want ErrInvalidPolicy", err)
	}
	if err := l.SetPolicy(Policy{}); !errors.Is(err, ErrInvalidPolicy) {
		t.Errorf("SetPolicy(zero) = %v, want ErrInvalidPolicy", err)
	}
	if err := l.SetPolicy(PerMinute(5)); err != nil || l.Policy() != PerMinute(5) {
		t.Errorf("SetPolicy(PerMinute(5)) = %v, Policy() = %v", err, l.Policy())
	}
	if d, _ := l.AllowN(ctx, "k", 5); !d.Allowed {
		t.Errorf("a new key after raising the burst to 5: %+v, want a cost of 5 admitted", d)
	}
}

// setOracle applies SetPolicy's semantics to a key's rate.Limiter at now:
// SetLimitAt and SetBurstAt, except that a full limiter becomes a fresh one
// at the new Burst (as a key without a bucket does).
func setOracle(o *rate.Limiter, p Policy, now time.Time) *rate.Limiter {
	if o.TokensAt(now) >= float64(o.Burst()) {
		return rate.NewLimiter(p.Rate, p.Burst)
	}
	o.SetLimitAt(now, p.Rate)
	o.SetBurstAt(now, p.Burst)
	return o
}

// SetPolicy up and down, with sweeps in between, decides as one rate.Limiter
// per key changed by setOracle at the same instants.
func TestSetPolicyMatchesRateLimiter(t *testing.T) {
	policies := []Policy{PerSecond(3), {Rate: 0.5, Burst: 2}, {Rate: 20, Burst: 8}, {Rate: 1, Burst: 1}}
	for seed := range uint64(30) {
		synctest.Test(t, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 11))
			cur := policies[rng.IntN(len(policies))]
			l := mustNew(t, cur)
			oracle := map[string]*rate.Limiter{}
			for step := range 400 {
				key := string(rune('a' + rng.IntN(4)))
				switch r := rng.IntN(10); {
				case r < 3:
					time.Sleep(time.Duration(rng.Float64() * 1.5 * float64(time.Second)))
				case r == 3:
					sweeper.Pass(&l.table, l.retire)
				case r == 4:
					cur = policies[rng.IntN(len(policies))]
					if err := l.SetPolicy(cur); err != nil {
						t.Fatal(err)
					}
					for k, o := range oracle {
						oracle[k] = setOracle(o, cur, time.Now())
					}
				default:
					o := oracle[key]
					if o == nil {
						o = rate.NewLimiter(cur.Rate, cur.Burst)
						oracle[key] = o
					}
					n := 1 + rng.IntN(cur.Burst)
					d, err := l.AllowN(ctx, key, n)
					if want := o.AllowN(time.Now(), n); err != nil || d.Allowed != want || d.Limit != cur.Burst {
						t.Fatalf("seed %d step %d: AllowN(%q, %d) under %v = %+v, %v; rate.Limiter says %v", seed, step, key, n, cur, d, err, want)
					}
				}
			}
		})
	}
}

// SetPolicy racing requests: a decision begun after SetPolicy returned
// never uses an older policy (its Limit names the policy), under -race.
func TestSetPolicyRacingRequests(t *testing.T) {
	burst := func(i int64) int { return 1000 + int(i%3)*100 } // policy i, cycling through three
	l := mustNew(t, Policy{Rate: 1000, Burst: burst(0)})
	var stop atomic.Bool
	var wg sync.WaitGroup
	var done atomic.Int64 // the last policy SetPolicy returned from
	for g := range 4 {
		wg.Go(func() {
			for i := 0; !stop.Load(); i++ {
				before := done.Load()
				d, err := l.Allow(ctx, strconv.Itoa(g*10+i%10))
				if err != nil {
					t.Error(err)
					return
				}
				// Policy before, or the next one if SetPolicy was under way.
				if after := done.Load(); after == before && d.Limit != burst(before) && d.Limit != burst(before+1) {
					t.Errorf("a decision begun after SetPolicy(burst %d) returned has Limit %d", burst(before), d.Limit)
					return
				}
			}
		})
	}
	for i := int64(1); i <= 300; i++ {
		if err := l.SetPolicy(Policy{Rate: 1000, Burst: burst(i)}); err != nil {
			t.Fatal(err)
		}
		done.Store(i)
	}
	stop.Store(true)
	wg.Wait()
}
