package redisstore_test

import (
	"context"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/floodgate-go/floodgate/internal/redistest"
	"github.com/floodgate-go/floodgate/limiter"
	"github.com/floodgate-go/floodgate/store"
	"github.com/floodgate-go/floodgate/store/redisstore"
)

// decodeState reads a bucket as script.lua stores it (16 bytes,
// big-endian): 2 bytes (e + 1100) * 2 + sign, 7 bytes |m| * 2^53 with
// tokens = m * 2^e as math.frexp splits them, 7 bytes the last update in
// microseconds of Redis TIME.
func decodeState(s string) (tokens float64, last int64, err error) {
	if len(s) != 16 {
		return 0, 0, fmt.Errorf("bucket state %q: %d bytes, want 16", s, len(s))
	}
	be := func(b string) (v uint64) {
		for i := range len(b) {
			v = v<<8 | uint64(b[i])
		}
		return v
	}
	e := be(s[:2])
	tokens = math.Ldexp(float64(be(s[2:9])), int(e/2)-1100-53)
	if e%2 == 1 {
		tokens = -tokens
	}
	return tokens, int64(be(s[9:])), nil
}

// encodeState is decodeState's inverse, for tests that plant a bucket.
func encodeState(tokens float64, last int64) string {
	m, e := math.Frexp(tokens)
	ex := uint64(e+1100) * 2
	if m < 0 {
		m, ex = -m, ex+1
	}
	b := make([]byte, 16)
	b[0], b[1] = byte(ex>>8), byte(ex)
	mm := uint64(m * (1 << 53))
	for i := range 7 {
		b[8-i] = byte(mm >> (8 * i))
		b[15-i] = byte(uint64(last) >> (8 * i))
	}
	return string(b)
}

// The state encoding is exact on both Redis runtimes: a bucket planted
// with awkward levels (negative, tiny, subnormal, one ulp under Burst,
// Burst at 2^20) is read back by a Take as exactly that level (its reply
// equals the local arithmetic on it; a Peek just before agrees), and the
// Take stores exactly the level the local arithmetic leaves: a denied one
// leaves the stored bytes as they were.
func TestStateEncoding(t *testing.T) {
	onBothServers(t, func(t *testing.T, name string, m *miniredis.Miniredis, c *redis.Client, s *redisstore.Store) {
		ctx := context.Background()
		// Rates low enough that no admitted key expires (its TTL is the
		// refill time) between the Take and the GET that reads it back, on a
		// loaded machine too: at least 1/3 s.
		for i, p := range []limiter.Policy{{Rate: 1e-3, Burst: 1}, {Rate: 1e-3, Burst: 7}, {Rate: 3, Burst: 1 << 20}} {
			burst, b := p.Burst, float64(p.Burst)
			for j, level := range []float64{0, -1e-9, 5e-324, 1e-300, 0.1, math.Nextafter(b, 0), b - 1, b / 3, 1} {
				key := fmt.Sprintf("k%d-%d", i, j)
				last := time.Now().UnixMicro() - 1_000_000 // a second ago: the refill is a float too
				if err := c.Set(ctx, s.Key(key), encodeState(level, last), time.Hour).Err(); err != nil {
					t.Fatal(err)
				}
				if got, gotLast, err := decodeState(encodeState(level, last)); err != nil || got != level || gotLast != last {
					t.Fatalf("encodeState(%v, %d) decodes to %v, %d, %v", level, last, got, gotLast, err)
				}
				req := store.Request{Rate: p.Rate, Burst: p.Burst, Cost: 1}
				peek, err := s.Peek(ctx, key, req)
				if err != nil {
					t.Fatal(err)
				}
				res, err := s.Take(ctx, key, req)
				if err != nil {
					t.Fatal(err)
				}
				state, err := c.Get(ctx, s.Key(key)).Result()
				if err != nil {
					t.Fatal(err)
				}
				tokens, now, err := decodeState(state)
				if err != nil {
					t.Fatal(err)
				}
				if !res.Allowed { // a denial writes nothing: the reply's At is when it was decided
					if state != encodeState(level, last) {
						t.Fatalf("burst %d, level %v: denied, and the bucket became %v at %d", burst, level, tokens, now)
					}
					now = res.At
				}
				ref := &refBucket{p: p, tokens: level, last: time.UnixMicro(last)}
				want, _ := ref.allow(time.UnixMicro(now), 1)
				if got := (limiter.Decision{Allowed: res.Allowed, Limit: burst, Remaining: res.Remaining, RetryAfter: res.RetryAfter, ResetAfter: res.ResetAfter}); got != want {
					t.Fatalf("burst %d, level %v: Take %+v, the local arithmetic gives %+v", burst, level, got, want)
				}
				if tokens != ref.tokens {
					t.Fatalf("burst %d, level %v: stored %v, the local arithmetic leaves %v", burst, level, tokens, ref.tokens)
				}
				if peek.Allowed != res.Allowed {
					t.Fatalf("burst %d, level %v: Peek %+v before Take %+v", burst, level, peek, res)
				}
			}
		}
	})
}

// A rolling deploy from the version 1 state ("%.17g %.17g" under ":r:")
// shares one Redis with old and new instances: the new script never reads
// or touches a version 1 bucket (different key), and a value it cannot
// read, such as version 1 text under a new key, is an error, never a
// guess at a level.
func TestVersion1StateIsSeparate(t *testing.T) {
	for _, run := range []struct {
		name string
		addr func(t *testing.T) string
	}{
		{"miniredis", func(t *testing.T) string { return miniredis.RunT(t).Addr() }},
		{"redis-server", func(t *testing.T) string { return redistest.Start(t).Addr() }},
	} {
		t.Run(run.name, func(t *testing.T) {
			ctx := context.Background()
			c := newClient(t, run.addr(t))
			s, err := redisstore.New(c, redisstore.WithPrefix("fg"))
			if err != nil {
				t.Fatal(err)
			}
			// An old instance drains "a" with the version 1 script.
			if err := c.Eval(ctx, scriptV1, []string{"fg:r:a"}, 1, 3, 3, 0).Err(); err != nil {
				t.Fatal(err)
			}
			old, err := c.Get(ctx, "fg:r:a").Result()
			if err != nil || !strings.Contains(old, " ") {
				t.Fatalf("version 1 state %q, %v", old, err)
			}
			oldTTL := c.PTTL(ctx, "fg:r:a").Val()
			req := store.Request{Rate: 1, Burst: 3, Cost: 3}
			if res, err := s.Take(ctx, "a", req); err != nil || !res.Allowed {
				t.Fatalf("new instance on a key drained by version 1: %+v, %v; want its own full bucket", res, err)
			}
			if got := c.Get(ctx, "fg:r:a").Val(); got != old || c.PTTL(ctx, "fg:r:a").Val() > oldTTL {
				t.Fatalf("version 1 bucket changed: %q (was %q)", got, old)
			}
			// Version 1 text where a version 2 bucket belongs.
			if err := c.Set(ctx, s.Key("b"), old, time.Hour).Err(); err != nil {
				t.Fatal(err)
			}
			for _, f := range []func() error{
				func() error { _, err := s.Take(ctx, "b", req); return err },
				func() error { _, err := s.Peek(ctx, "b", req); return err },
				func() error { return s.Refund(ctx, "b", req, 0) },
			} {
				if err := f(); err == nil || !strings.Contains(err.Error(), "corrupt bucket state") {
					t.Fatalf("unreadable state: error %v, want corrupt bucket state", err)
				}
			}
			if got := c.Get(ctx, s.Key("b")).Val(); got != old {
				t.Fatalf("unreadable state overwritten with %q", got)
			}
		})
	}
}
