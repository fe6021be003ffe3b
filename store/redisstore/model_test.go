package redisstore_test

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"golang.org/x/time/rate"

	"github.com/floodgate-go/floodgate/limiter"
	"github.com/floodgate-go/floodgate/store"
	"github.com/floodgate-go/floodgate/store/redisstore"
)

// TestModel runs random request sequences against the Redis script, on
// miniredis with a controlled clock, and against rate.Limiter (the oracle
// of floodgate's local buckets) at the same instants, and compares every
// decision. Times are whole microseconds, Redis TIME's resolution.
//
// With refunds, a quarter of the steps refund an earlier admission (the
// one just made, or any earlier one: ages from 0 to many refill times),
// and the script is compared with refBucket.refund, the refund rule
// written on top of the local arithmetic: every decision, and the stored
// state after every refund. rate.Limiter has no such refund, so it is the
// oracle of the sequences without them. After every take, the stored
// bucket is the reference's to the bit: a denial leaves it as it was.
func TestModel(t *testing.T) {
	policies := []limiter.Policy{
		{Rate: 1, Burst: 1}, {Rate: 10, Burst: 5}, {Rate: 0.3, Burst: 3}, {Rate: 1000, Burst: 20},
		{Rate: rate.Every(7 * time.Second), Burst: 2}, {Rate: 123.456, Burst: 17}, {Rate: 1e6, Burst: 1},
	}
	m := miniredis.RunT(t)
	s := freshStore(t, newClient(t, m.Addr()))
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for pi, p := range policies {
		for _, refunds := range []bool{false, true} {
			rng := rand.New(rand.NewPCG(uint64(pi), 42))
			key := fmt.Sprintf("model-%v-%v", p, refunds)
			runModel(t, m, s, key, p, t0, rng, refunds)
		}
	}
}

// A take is an admission that a refund may give back.
type take struct {
	at   time.Time // Result.At: the bucket could not have been full before
	µs   int64     // Result.At
	cost int
}

func runModel(t *testing.T, m *miniredis.Miniredis, s *redisstore.Store, key string, p limiter.Policy, t0 time.Time, rng *rand.Rand, refunds bool) {
	ctx := context.Background()
	oracle := rate.NewLimiter(p.Rate, p.Burst)
	local := &refBucket{p: p, tokens: float64(p.Burst), last: t0}
	now := t0
	m.SetTime(now)
	var taken []take
	takes, allowed, refunded := 0, 0, 0
	for step := range 400 {
		var dt time.Duration
		switch rng.IntN(4) {
		case 0: // same microsecond
		case 1:
			dt = time.Duration(rng.IntN(1000)) * time.Microsecond
		case 2:
			dt = time.Duration(rng.Float64() / float64(p.Rate) * float64(time.Second)).Truncate(time.Microsecond)
		case 3:
			dt = time.Duration(rng.Float64() * 3 * float64(p.Burst) / float64(p.Rate) * float64(time.Second)).Truncate(time.Microsecond)
		}
		now = now.Add(dt)
		m.SetTime(now)
		m.FastForward(dt) // expire keys on the same clock
		if refunds && len(taken) > 0 && rng.IntN(4) == 0 {
			i := len(taken) - 1 // the latest admission, or any earlier one
			if rng.IntN(2) == 0 {
				i = rng.IntN(len(taken))
			}
			tk := taken[i]
			taken = append(taken[:i], taken[i+1:]...)
			if err := s.Refund(ctx, key, store.Request{Rate: p.Rate, Burst: p.Burst, Cost: tk.cost}, tk.µs); err != nil {
				t.Fatalf("%v step %d: Refund: %v", p, step, err)
			}
			if local.refund(now, tk.at, tk.cost) {
				refunded++
			}
			checkState(t, m, s.Key(key), local, now, fmt.Sprintf("%v step %d (+%v, refund of %d taken %v ago)", p, step, dt, tk.cost, now.Sub(tk.at)))
			continue
		}
		n := 1 + rng.IntN(p.Burst)
		takes++
		want := oracle.AllowN(now, n)
		res, err := s.Take(ctx, key, store.Request{Rate: p.Rate, Burst: p.Burst, Cost: n})
		if err != nil {
			t.Fatalf("%v step %d: Take: %v", p, step, err)
		}
		d := limiter.Decision{Allowed: res.Allowed, Limit: p.Burst, Remaining: res.Remaining, RetryAfter: res.RetryAfter, ResetAfter: res.ResetAfter}
		if !refunds {
			if d.Allowed != want {
				t.Fatalf("%v step %d (+%v, cost %d): Allowed %v, rate.Limiter says %v", p, step, dt, n, d.Allowed, want)
			}
			if tokens := oracle.TokensAt(now); want && d.Remaining != max(int(tokens), 0) {
				t.Fatalf("%v step %d: Remaining %d, rate.Limiter has %v tokens", p, step, d.Remaining, tokens)
			}
		}
		ref, at := local.allow(now, n)
		if d != ref {
			t.Fatalf("%v step %d (+%v, cost %d): got %+v, the local bucket's arithmetic gives %+v", p, step, dt, n, d, ref)
		}
		if res.At != at {
			t.Fatalf("%v step %d: At %d, want %d (the Redis clock is %d)", p, step, res.At, at, now.UnixMicro())
		}
		checkState(t, m, s.Key(key), local, now, fmt.Sprintf("%v step %d (+%v, cost %d, allowed %v)", p, step, dt, n, d.Allowed))
		if d.Allowed {
			allowed++
			taken = append(taken, take{time.UnixMicro(at), res.At, n})
		}
	}
	if allowed == 0 || allowed == takes {
		t.Errorf("%v: %d of %d allowed; the sequence does not exercise both outcomes", p, allowed, takes)
	}
	if refunds && (refunded == 0 || refunded == 400-takes) {
		t.Errorf("%v: %d of %d refunds gave something back; the sequence does not exercise both outcomes", p, refunded, 400-takes)
	}
	t.Logf("%s: %d of %d takes allowed, %d of %d refunds gave something back", key, allowed, takes, refunded, 400-takes)
}

// checkState fails unless the bucket stored at rkey is local's, or there
// is none and local is full at now (an expired key is a full bucket).
func checkState(t *testing.T, m *miniredis.Miniredis, rkey string, local *refBucket, now time.Time, what string) {
	t.Helper()
	state, err := m.Get(rkey)
	if err != nil {
		if tokens := min(local.tokens+now.Sub(local.last).Seconds()*float64(local.p.Rate), float64(local.p.Burst)); tokens != float64(local.p.Burst) {
			t.Fatalf("%s: no bucket in Redis, the reference holds %v tokens", what, tokens)
		}
		return
	}
	tokens, last, err := decodeState(state)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if tokens != local.tokens || last != local.last.UnixMicro() {
		t.Fatalf("%s: bucket %.17g at %d, the reference has %.17g at %d", what, tokens, last, local.tokens, local.last.UnixMicro())
	}
}

// refBucket is limiter's local bucket arithmetic (bucket.go), transcribed:
// rate.Limiter's float operations, and like rate.Limiter (and the local
// bucket, and the script) a denial changes no state.
type refBucket struct {
	p      limiter.Policy
	tokens float64
	last   time.Time
}

// allow decides a take of n at now, and returns with the decision the
// script's At: for an admission, now + (burst − level)/rate in whole
// microseconds, the level being the bucket's before the take; otherwise
// now. A time before the bucket's last update counts as that update's, as
// in the script (a Redis clock stepped back).
func (b *refBucket) allow(now time.Time, n int) (limiter.Decision, int64) {
	limit, burst := float64(b.p.Rate), float64(b.p.Burst)
	ns := func(tokens float64) float64 { return tokens / limit * float64(time.Second) }
	ceil := func(x float64) time.Duration { return time.Duration(math.Ceil(x)) }
	now = later(now, b.last)
	tokens := min(b.tokens+now.Sub(b.last).Seconds()*limit, burst)
	left := tokens - float64(n)
	d := limiter.Decision{Limit: b.p.Burst}
	if left < 0 && ns(-left) >= 1 { // denied: nothing changes
		d.Remaining = max(int(tokens), 0)
		d.RetryAfter = ceil(ns(-left))
		d.ResetAfter = ceil(ns(burst - tokens))
		return d, now.UnixMicro()
	}
	b.tokens, b.last = left, now
	d.Allowed = true
	d.Remaining = max(int(left), 0)
	d.ResetAfter = ceil(ns(burst - left))
	return d, min(now.UnixMicro()+int64(math.Floor(ns(burst-tokens)/1000)), 1<<53)
}

// refund is the refund rule on top of the local arithmetic: it gives back
// n less what the bucket regains between at (the take's At) and now, if
// that is positive, capped at Burst; otherwise it changes nothing. It
// reports whether it gave anything back.
func (b *refBucket) refund(now, at time.Time, n int) bool {
	limit := float64(b.p.Rate)
	now = later(now, b.last)
	give := float64(n) - max(now.Sub(at), 0).Seconds()*limit
	if give <= 0 {
		return false
	}
	b.tokens = min(min(b.tokens+now.Sub(b.last).Seconds()*limit, float64(b.p.Burst))+give, float64(b.p.Burst))
	b.last = now
	return true
}

func later(a, b time.Time) time.Time {
	if a.Before(b) {
		return b
	}
	return a
}
