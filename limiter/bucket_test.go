package limiter

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"golang.org/x/time/rate"
)

// The bucket arithmetic is checked against rate.Limiter, the oracle, at
// explicit instants: first a table in rate's own style, then random
// sequences.

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func ns(d time.Duration) int64 { return int64(d) }

// allow is the AllowN fast path's use of take: no reservation ahead.
func (b *bucket) allow(p *policyMath, now int64, n int, c *counters) (Decision, outcome) {
	t, o := b.take(p, now, n, 0, c, nil)
	return t.decision(p, o), o
}

func TestBucketTable(t *testing.T) {
	p := policyMath{limit: 10, burst: 3, n: 3} // 10/s, so one token per 100ms
	steps := []struct {
		at      time.Duration
		n       int
		allowed bool
		remain  int
		retry   time.Duration
	}{
		{0, 1, true, 2, 0},
		{0, 2, true, 0, 0},
		{0, 1, false, 0, 100 * time.Millisecond},
		{50 * time.Millisecond, 1, false, 0, 50 * time.Millisecond},
		{100 * time.Millisecond, 1, true, 0, 0},
		{150 * time.Millisecond, 2, false, 0, 150 * time.Millisecond},
		{300 * time.Millisecond, 2, true, 0, 0},
		{time.Hour, 3, true, 0, 0}, // refill is capped at burst
		{time.Hour, 1, false, 0, 100 * time.Millisecond},
	}
	b := newBucket(p.burst, 0)
	oracle := rate.NewLimiter(10, 3)
	for i, s := range steps {
		d, o := b.allow(&p, ns(s.at), s.n, nil)
		if !o.decided() {
			t.Fatalf("step %d: bucket not live", i)
		}
		want := oracle.AllowN(t0.Add(s.at), s.n)
		if d.Allowed != want || d.Allowed != s.allowed || d.Remaining != s.remain || d.RetryAfter != s.retry {
			t.Errorf("step %d: allow(%v, %d) = %+v, want Allowed %v (rate says %v), Remaining %d, RetryAfter %v",
				i, s.at, s.n, d, s.allowed, want, s.remain, s.retry)
		}
	}
}

// TestBucketModel compares random request sequences with rate.Limiter: the
// decision, Remaining (whole tokens left, from rate's TokensAt), and
// RetryAfter (rate's reservation delay, rounded up, after which the request
// is admitted).
func TestBucketModel(t *testing.T) {
	limits := []float64{0.001, 0.3, 1, 7.5, 10, 1000, 1e6}
	rng := rand.New(rand.NewPCG(1, 2))
	for iter := range 2000 {
		p := policyMath{limit: limits[rng.IntN(len(limits))], n: 1 + rng.IntN(20)}
		p.burst = float64(p.n)
		b := newBucket(p.burst, 0)
		oracle := rate.NewLimiter(rate.Limit(p.limit), p.n)
		var admitted []op // replayed to copy the oracle: rate.Limiter cannot be copied
		replay := func() *rate.Limiter {
			r := rate.NewLimiter(rate.Limit(p.limit), p.n)
			for _, o := range admitted {
				r.AllowN(o.at, o.n)
			}
			return r
		}
		now := int64(rng.IntN(1000))
		for step := range 50 {
			now += randomStep(rng, p.limit)
			n := 1 + rng.IntN(p.n)
			at := t0.Add(time.Duration(now))
			d, _ := b.allow(&p, now, n, nil)
			if want := oracle.AllowN(at, n); d.Allowed != want {
				t.Fatalf("iter %d step %d (%v/s burst %d, n %d at %v): allowed %v, rate.Limiter says %v",
					iter, step, p.limit, p.n, n, time.Duration(now), d.Allowed, want)
			}
			if want := max(int(oracle.TokensAt(at)), 0); d.Remaining != want {
				t.Fatalf("iter %d step %d: Remaining %d, want %d (rate.Limiter.TokensAt)", iter, step, d.Remaining, want)
			}
			if d.Allowed {
				admitted = append(admitted, op{at, n})
				continue
			}
			// rate.Limiter's own wait, truncated; ours is rounded up.
			wait := replay().ReserveN(at, n).DelayFrom(at)
			if d.RetryAfter < wait || d.RetryAfter > wait+1 {
				t.Fatalf("iter %d step %d: RetryAfter %v, want rate.Limiter's delay %v rounded up; limit %v n %d tokens %v %v", iter, step, d.RetryAfter, wait, p.limit, n, oracle.TokensAt(at), b.level())
			}
			if d.RetryAfter < 1<<50 && !replay().AllowN(at.Add(d.RetryAfter), n) {
				t.Fatalf("iter %d step %d: rate.Limiter denies n=%d at now+RetryAfter (%v)", iter, step, n, d.RetryAfter)
			}
		}
	}
}

type op struct {
	at time.Time
	n  int
}

// randomStep picks a time step that often lands near token boundaries.
func randomStep(rng *rand.Rand, limit float64) int64 {
	perToken := float64(time.Second) / limit
	switch rng.IntN(4) {
	case 0:
		return 0
	case 1:
		return int64(rng.IntN(3)) // nanosecond steps
	case 2:
		return int64(perToken * float64(rng.IntN(3))) // whole tokens
	default:
		return int64(rng.Float64() * 2 * perToken)
	}
}

func TestBucketRetire(t *testing.T) {
	p := policyMath{limit: 1, burst: 2, n: 2}
	b := newBucket(p.burst, 0)
	b.allow(&p, 0, 1, nil)
	if b.retire(&p, ns(999*time.Millisecond), nil) {
		t.Fatal("retire(just under a refill) = true, want false: the bucket is not full")
	}
	if !b.retire(&p, ns(time.Second), nil) {
		t.Fatal("retire(after refill) = false, want true")
	}
	if _, o := b.allow(&p, ns(time.Second), 1, nil); o.decided() {
		t.Fatal("allow on a retired bucket reported live")
	}
	if !b.retire(&p, ns(time.Second), nil) {
		t.Fatal("retire on a retired bucket = false, want true (so a sweeper can delete it)")
	}
	pend := newBucket(0, pending)
	if pend.retire(&p, ns(time.Hour), nil) {
		t.Fatal("retire on a pending bucket = true, want false")
	}
}

// FuzzBucket drives a bucket and rate.Limiter with the same byte-coded
// requests (time step, cost) and fails on the first decision they disagree
// on. The seed corpus in testdata/fuzz runs as an ordinary test.
func FuzzBucket(f *testing.F) {
	f.Add(uint16(10), uint8(3), []byte{0, 1, 0, 1, 0, 1, 200, 2, 1, 1})
	f.Add(uint16(1), uint8(1), []byte{255, 1, 0, 1, 1, 1})
	f.Add(uint16(65535), uint8(20), []byte{3, 20, 0, 1, 7, 19})
	f.Fuzz(func(t *testing.T, limit uint16, burst uint8, ops []byte) {
		if limit == 0 || burst == 0 {
			return
		}
		p := policyMath{limit: float64(limit) / 16, burst: float64(burst), n: int(burst)}
		b := newBucket(p.burst, 0)
		oracle := rate.NewLimiter(rate.Limit(p.limit), p.n)
		var now int64
		for i := 0; i+1 < len(ops); i += 2 {
			now += int64(ops[i]) * int64(ops[i]) * int64(time.Millisecond) / 16
			n := 1 + int(ops[i+1])%p.n
			d, _ := b.allow(&p, now, n, nil)
			if want := oracle.AllowN(t0.Add(time.Duration(now)), n); d.Allowed != want {
				t.Fatalf("op %d (n=%d at %v, %v/s burst %d): allowed %v, rate.Limiter %v", i/2, n, time.Duration(now), p.limit, p.n, d.Allowed, want)
			}
		}
	})
}

// TestSecondsIsDurationSeconds: seconds, advance's shortcut under a second,
// is time.Duration.Seconds bit for bit, at the edges and at random.
func TestSecondsIsDurationSeconds(t *testing.T) {
	ds := []int64{0, 1, -1, 999_999_999, -999_999_999, 1e9, -1e9, 1e9 + 1, math.MaxInt64, math.MinInt64, 1 << 53, 1<<53 + 1}
	r := rand.New(rand.NewPCG(1, 2))
	for range 100_000 {
		ds = append(ds, r.Int64N(2e9)-1e9, r.Int64(), int64(r.Uint64()>>r.IntN(64)))
	}
	for _, d := range ds {
		if got, want := seconds(d), time.Duration(d).Seconds(); math.Float64bits(got) != math.Float64bits(want) {
			t.Fatalf("seconds(%d) = %v (%#x), Duration.Seconds = %v (%#x)", d, got, math.Float64bits(got), want, math.Float64bits(want))
		}
	}
}
