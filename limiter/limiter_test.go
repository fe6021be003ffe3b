package limiter

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/time/rate"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var ctx = context.Background()

func mustNew(t testing.TB, p Policy, opts ...Option) *Limiter {
	t.Helper()
	l, err := New(p, opts...)
	if err != nil {
		t.Fatalf("New(%v): %v", p, err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func TestNewRejectsBadInput(t *testing.T) {
	for _, tc := range []struct {
		name string
		p    Policy
		opts []Option
		want error
	}{
		{"zero policy", Policy{}, nil, ErrInvalidPolicy},
		{"NaN rate", Policy{Rate: rate.Limit(math.NaN()), Burst: 1}, nil, ErrInvalidPolicy},
		{"negative rate", Policy{Rate: -1, Burst: 1}, nil, ErrInvalidPolicy},
		{"negative infinity", Policy{Rate: rate.Limit(math.Inf(-1)), Burst: 1}, nil, ErrInvalidPolicy},
		{"zero burst", Policy{Rate: 1, Burst: 0}, nil, ErrInvalidPolicy},
		{"negative burst", Policy{Rate: 1, Burst: -3}, nil, ErrInvalidPolicy},
		{"PerSecond(0)", PerSecond(0), nil, ErrInvalidPolicy},
		{"PerMinute(-1)", PerMinute(-1), nil, ErrInvalidPolicy},
		{"inf with negative burst", Policy{Rate: rate.Inf, Burst: -1}, nil, ErrInvalidPolicy},
		{"zero max keys", PerSecond(1), []Option{WithMaxKeys(0)}, ErrInvalidOption},
		{"negative max keys", PerSecond(1), []Option{WithMaxKeys(-5)}, ErrInvalidOption},
		{"zero sweep interval", PerSecond(1), []Option{WithSweepInterval(0)}, ErrInvalidOption},
		{"negative sweep interval", PerSecond(1), []Option{WithSweepInterval(-time.Second)}, ErrInvalidOption},
		{"sub-millisecond sweep", PerSecond(1), []Option{WithSweepInterval(time.Microsecond)}, ErrInvalidOption},
		{"nil option", PerSecond(1), []Option{nil}, ErrInvalidOption},
	} {
		l, err := New(tc.p, tc.opts...)
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: New(%+v) error = %v, want %v", tc.name, tc.p, err, tc.want)
		}
		if l != nil {
			t.Errorf("%s: New returned a Limiter with an error", tc.name)
			l.Close()
		}
	}
}

func TestPolicyConstructors(t *testing.T) {
	for _, tc := range []struct {
		got  Policy
		rate float64
	}{
		{PerSecond(5), 5},
		{PerMinute(120), 2},
		{PerHour(7200), 2},
		{PerMinute(7), 7.0 / 60},
	} {
		if float64(tc.got.Rate) != tc.rate {
			t.Errorf("%+v: rate %v, want %v", tc.got, tc.got.Rate, tc.rate)
		}
	}
	if p := PerHour(30); p.Burst != 30 {
		t.Errorf("PerHour(30).Burst = %d, want 30", p.Burst)
	}
}

func TestAllowNRejectsBadCost(t *testing.T) {
	l := mustNew(t, PerSecond(3))
	for _, n := range []int{0, -1, 4, math.MaxInt} {
		if _, err := l.AllowN(ctx, "k", n); !errors.Is(err, ErrInvalidCost) {
			t.Errorf("AllowN(n=%d) error = %v, want ErrInvalidCost", n, err)
		}
	}
	if got := l.Stats(); got.Keys != 0 || got.Allowed+got.Denied != 0 {
		t.Errorf("bad costs changed state: %+v", got)
	}
}

func TestClosed(t *testing.T) {
	l := mustNew(t, PerSecond(3))
	if err := l.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("second Close() = %v", err)
	}
	if _, err := l.Allow(ctx, "k"); !errors.Is(err, ErrClosed) {
		t.Errorf("Allow after Close: error %v, want ErrClosed", err)
	}
	if err := l.Reset(ctx, "k"); !errors.Is(err, ErrClosed) {
		t.Errorf("Reset after Close: error %v, want ErrClosed", err)
	}
}

func TestInfAllowsEverythingAndStoresNothing(t *testing.T) {
	l := mustNew(t, Policy{Rate: rate.Inf, Burst: 0})
	for i := range 1000 {
		d, err := l.AllowN(ctx, string(rune('a'+i%26))+strings.Repeat("x", i%100), 1+i%5)
		if err != nil || !d.Allowed {
			t.Fatalf("Allow on rate.Inf = %+v, %v", d, err)
		}
	}
	if s := l.Stats(); s.Keys != 0 {
		t.Errorf("rate.Inf tracked %d keys, want 0", s.Keys)
	}
}

func TestAllowExistingKeyDoesNotAllocate(t *testing.T) {
	l := mustNew(t, PerSecond(1_000_000))
	l.Allow(ctx, "203.0.113.9")
	if n := testing.AllocsPerRun(1000, func() { l.Allow(ctx, "203.0.113.9") }); n != 0 {
		t.Errorf("Allow on a tracked key: %v allocs, want 0", n)
	}
	drained := mustNew(t, PerHour(1))
	drained.Allow(ctx, "k")
	if n := testing.AllocsPerRun(1000, func() { drained.Allow(ctx, "k") }); n != 0 {
		t.Errorf("denied Allow on a tracked key: %v allocs, want 0", n)
	}
}

func TestLongKeysAreHashed(t *testing.T) {
	l := mustNew(t, PerHour(1))
	huge := strings.Repeat("k", 1<<20)
	a, b := huge+"a", huge+"b"
	if d, _ := l.Allow(ctx, a); !d.Allowed {
		t.Fatal("first request for a long key denied")
	}
	if d, _ := l.Allow(ctx, a); d.Allowed {
		t.Fatal("a long key is not limited: second request allowed on PerHour(1)")
	}
	if d, _ := l.Allow(ctx, b); !d.Allowed {
		t.Fatal("two long keys that differ in the last byte share a bucket")
	}
	// A raw key equal to a digest form is still a different key, since it is
	// longer than maxKeyLen and is itself hashed.
	if d, _ := l.Allow(ctx, digest(a)); !d.Allowed {
		t.Fatal("a key spelled like a's digest shares a's bucket")
	}
	l.table.Range(func(k tableKey, _ *bucket) bool {
		if s, ok := k.(string); ok && len(s) > maxKeyLen+1 {
			t.Errorf("stored key of %d bytes, want at most %d", len(s), maxKeyLen+1)
		}
		return true
	})
	if s := l.Stats(); s.Keys != 3 {
		t.Errorf("Keys = %d, want 3", s.Keys)
	}
}

// TestKeyForms: keys around every change of table form (15/16, 31/32,
// 64/65 bytes) and keys that differ only by trailing NULs are all distinct
// clients, and each is limited.
func TestKeyForms(t *testing.T) {
	l := mustNew(t, PerHour(1))
	var keys []string
	for _, n := range []int{0, 1, 14, 15, 16, 30, 31, 32, 63, 64, 65, 200} {
		k := strings.Repeat("k", n)
		keys = append(keys, k, k+"\x00", k+"\x00\x00")
	}
	for _, k := range keys {
		if d, _ := l.Allow(ctx, k); !d.Allowed {
			t.Errorf("first request for a %d-byte key %q denied: it shares a bucket", len(k), k)
		}
	}
	for _, k := range keys {
		if d, _ := l.Allow(ctx, k); d.Allowed {
			t.Errorf("second request for a %d-byte key %q allowed on PerHour(1)", len(k), k)
		}
	}
	if s := l.Stats(); s.Keys != len(keys) {
		t.Errorf("Keys = %d, want %d", s.Keys, len(keys))
	}
}

func TestStatsCounts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := mustNew(t, PerSecond(2), WithMaxKeys(2), WithSweepInterval(time.Second))
		for _, k := range []string{"a", "a", "a", "b", "c", "c"} {
			l.Allow(ctx, k)
		}
		// a: 2 allowed, 1 denied. b: tracked, allowed. c: overflow (cap 2,
		// nothing retirable), the shared bucket is full: 2 allowed. The
		// overflow kicked the sweeper for a pass, which retired nothing.
		synctest.Wait()
		want := Stats{Keys: 2, MaxKeys: 2, Allowed: 5, Denied: 1, Overflowed: 2, Sweeps: 1}
		if got := l.Stats(); got != want {
			t.Fatalf("Stats() = %+v, want %+v", got, want)
		}
		// a and b refill, and the periodic pass at 1s retires them.
		time.Sleep(1500 * time.Millisecond)
		got := l.Stats()
		// (Each of c's requests kicked: the second kick is coalesced with
		// the first or honoured after the cooldown, so 2 or 3 passes.)
		if got.Keys != 0 || got.Retired != 2 || got.Sweeps < 2 {
			t.Fatalf("after a sweep: Stats() = %+v, want Keys 0, Retired 2, Sweeps at least 2", got)
		}
	})
}
