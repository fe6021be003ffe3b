package store_test

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"golang.org/x/time/rate"

	"github.com/floodgate-go/floodgate/limiter"
)

// TestModel runs random request sequences against the Redis script, on
// miniredis with a controlled clock, and against rate.Limiter (the oracle
// of floodgate's local buckets) at the same instants, and compares every
// decision. Times are whole microseconds, Redis TIME's resolution.
func TestModel(t *testing.T) {
	policies := []limiter.Policy{
		{Rate: 1, Burst: 1}, {Rate: 10, Burst: 5}, {Rate: 0.3, Burst: 3}, {Rate: 1000, Burst: 20},
		{Rate: rate.Every(7 * time.Second), Burst: 2}, {Rate: 123.456, Burst: 17}, {Rate: 1e6, Burst: 1},
	}
	m := miniredis.RunT(t)
	s := freshStore(t, newClient(t, m.Addr()))
	ctx := context.Background()
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for pi, p := range policies {
		rng := rand.New(rand.NewPCG(uint64(pi), 42))
		oracle := rate.NewLimiter(p.Rate, p.Burst)
		local := &refBucket{p: p, tokens: float64(p.Burst), last: t0}
		now := t0
		m.SetTime(now)
		key := "model-" + p.String()
		allowed := 0
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
			n := 1 + rng.IntN(p.Burst)
			want := oracle.AllowN(now, n)
			res, err := s.Take(ctx, key, limiter.StoreRequest{Policy: p, Cost: n})
			if err != nil {
				t.Fatalf("%v step %d: Take: %v", p, step, err)
			}
			d := res.Decision
			if d.Allowed != want {
				t.Fatalf("%v step %d (+%v, cost %d): Allowed %v, rate.Limiter says %v", p, step, dt, n, d.Allowed, want)
			}
			if tokens := oracle.TokensAt(now); want && d.Remaining != max(int(tokens), 0) {
				t.Fatalf("%v step %d: Remaining %d, rate.Limiter has %v tokens", p, step, d.Remaining, tokens)
			}
			ref := local.allow(now, n)
			if d != ref {
				t.Fatalf("%v step %d (+%v, cost %d): got %+v, the local bucket's arithmetic gives %+v", p, step, dt, n, d, ref)
			}
			if want {
				allowed++
			}
		}
		if allowed == 0 || allowed == 400 {
			t.Errorf("%v: %d of 400 allowed; the sequence does not exercise both outcomes", p, allowed)
		}
	}
}

// refBucket is limiter's local bucket arithmetic (bucket.go), transcribed:
// rate.Limiter's float operations, except that a denial also stores the
// advanced level and time, as the local bucket and the script both do.
type refBucket struct {
	p      limiter.Policy
	tokens float64
	last   time.Time
}

func (b *refBucket) allow(now time.Time, n int) limiter.Decision {
	limit, burst := float64(b.p.Rate), float64(b.p.Burst)
	ns := func(tokens float64) float64 { return tokens / limit * float64(time.Second) }
	ceil := func(x float64) time.Duration { return time.Duration(math.Ceil(x)) }
	tokens := min(b.tokens+now.Sub(b.last).Seconds()*limit, burst)
	b.last = now
	left := tokens - float64(n)
	d := limiter.Decision{Limit: b.p.Burst}
	if left < 0 && ns(-left) >= 1 {
		b.tokens = tokens
		d.Remaining = max(int(tokens), 0)
		d.RetryAfter = ceil(ns(-left))
		d.ResetAfter = ceil(ns(burst - tokens))
		return d
	}
	b.tokens = left
	d.Allowed = true
	d.Remaining = max(int(left), 0)
	d.ResetAfter = ceil(ns(burst - left))
	return d
}
