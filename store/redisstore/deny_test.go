package redisstore_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/floodgate-go/floodgate/limiter"
	"github.com/floodgate-go/floodgate/store"
	"github.com/floodgate-go/floodgate/store/redisstore"
)

// A denial changes no state, as in rate.Limiter: the script does not write
// the level advanced to the denial's time back, which would round it (a
// level of 3 read back as 2.99…, one token short of rate.Limiter's). The
// sequence is TestLimiterModel's seed 27, shrunk: at 3/s, burst 3, take 1,
// deny a take of 3 while a slow second limit answers, refund the 1 when it
// fails, take 2. rate.Limiter's arithmetic (with the refund rule) leaves 1;
// writing the denial left 0.999…, Remaining 0.
func TestDenialLeavesLevelExact(t *testing.T) {
	m := miniredis.RunT(t)
	s := freshStore(t, newClient(t, m.Addr()))
	ctx := context.Background()
	p := limiter.Policy{Rate: 3, Burst: 3}
	req := func(n int) store.Request { return store.Request{Rate: p.Rate, Burst: p.Burst, Cost: n} }
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	local := &refBucket{p: p, tokens: 3, last: t0}
	at := func(µs int64) time.Time {
		now := t0.Add(time.Duration(µs) * time.Microsecond)
		m.SetTime(now)
		return now
	}
	now := at(0)
	first, err := s.Take(ctx, "k", req(1))
	if err != nil || !first.Allowed {
		t.Fatalf("take 1 of 3: %+v, %v", first, err)
	}
	local.allow(now, 1)
	now = at(139_374)
	if res, err := s.Take(ctx, "k", req(3)); err != nil || res.Allowed {
		t.Fatalf("take 3 with 2.4 left: %+v, %v; want denied", res, err)
	}
	local.allow(now, 3)
	checkState(t, m, s.Key("k"), local, now, "after the denial")
	now = at(278_749)
	if err := s.Refund(ctx, "k", req(1), first.At); err != nil {
		t.Fatal(err)
	}
	local.refund(now, time.UnixMicro(first.At), 1)
	checkState(t, m, s.Key("k"), local, now, "after the refund")
	res, err := s.Take(ctx, "k", req(2))
	want, _ := local.allow(now, 2)
	if err != nil || !res.Allowed || res.Remaining != 1 || want.Remaining != 1 {
		t.Fatalf("take 2 of a full bucket of 3: %+v, %v; want allowed, Remaining 1 (the reference: %+v)", res, err, want)
	}
}

// A denied Take leaves the stored bucket's bytes as they were, and issues
// no SET, on miniredis and on a real redis-server: a flooded key costs
// Redis reads only. Its expiry stays when the bucket will be full (within
// the millisecond the TTL is rounded up to).
func TestDenialWritesNothing(t *testing.T) {
	onBothServers(t, func(t *testing.T, name string, m *miniredis.Miniredis, c *redis.Client, s *redisstore.Store) {
		ctx := context.Background()
		req := store.Request{Rate: 1, Burst: 3, Cost: 3}
		if res, err := s.Take(ctx, "k", req); err != nil || !res.Allowed {
			t.Fatalf("take 3 of 3: %+v, %v", res, err)
		}
		state, ttl := c.Get(ctx, s.Key("k")).Val(), c.PTTL(ctx, s.Key("k")).Val()
		real := name == "redis-server"
		var sets int
		if real {
			sets = callsOf(t, c, "set")
		}
		for i := range 200 {
			if i%50 == 49 && !real {
				m.SetTime(time.Now().Add(time.Duration(i) * time.Millisecond)) // Redis TIME moves on
			}
			res, err := s.Take(ctx, "k", req)
			if err != nil || res.Allowed {
				t.Fatalf("denial %d: %+v, %v; want denied", i, res, err)
			}
			if got := c.Get(ctx, s.Key("k")).Val(); got != state {
				t.Fatalf("denial %d: the bucket changed from %x to %x", i, state, got)
			}
		}
		if got := c.PTTL(ctx, s.Key("k")).Val(); got > ttl+time.Millisecond || got < ttl-time.Second {
			t.Fatalf("after the denials the key expires in %v; after the take, %v", got, ttl)
		}
		if real {
			if got := callsOf(t, c, "set"); got != sets {
				t.Fatalf("%d SETs during 200 denials, want none", got-sets)
			}
		}
	})
}

// A Store's bucket adopts a new policy at its next decision, as if in
// force since its last one; the TTL its last write set was its refill time
// under the old policy. A denial under a slower policy writes no state,
// but extends the key's life to the refill time under the new one:
// without that, the key would expire, full, while the new policy still has
// it nearly empty.
func TestDenialKeepsBucketUnderNewPolicy(t *testing.T) {
	onBothServers(t, func(t *testing.T, name string, m *miniredis.Miniredis, c *redis.Client, s *redisstore.Store) {
		ctx := context.Background()
		now := time.Now()
		m.SetTime(now)
		if res, err := s.Take(ctx, "k", store.Request{Rate: 1, Burst: 1, Cost: 1}); err != nil || !res.Allowed {
			t.Fatalf("take 1 of 1 at 1/s: %+v, %v", res, err)
		}
		if ttl := c.PTTL(ctx, s.Key("k")).Val(); ttl > time.Second {
			t.Fatalf("TTL %v after taking 1 of 1 at 1/s, want 1s at most", ttl)
		}
		state := c.Get(ctx, s.Key("k")).Val()
		slow := store.Request{Rate: 0.01, Burst: 5, Cost: 3} // SetPolicy: refills in 500 s
		res, err := s.Take(ctx, "k", slow)
		if err != nil || res.Allowed {
			t.Fatalf("take 3 of 5 at 0.01/s, nearly empty: %+v, %v; want denied", res, err)
		}
		if got := c.Get(ctx, s.Key("k")).Val(); got != state {
			t.Fatalf("the denial changed the bucket from %x to %x", state, got)
		}
		if ttl := c.PTTL(ctx, s.Key("k")).Val(); ttl < res.ResetAfter-time.Second || ttl > res.ResetAfter+time.Millisecond {
			t.Fatalf("after the denial the key expires in %v, want its refill time under the new policy, %v", ttl, res.ResetAfter)
		}
		if name != "miniredis" {
			return
		}
		m.SetTime(now.Add(1500 * time.Millisecond)) // the old policy's refill time has passed
		m.FastForward(1500 * time.Millisecond)
		if res, err := s.Take(ctx, "k", store.Request{Rate: 0.01, Burst: 5, Cost: 1}); err != nil || res.Allowed || res.Remaining != 0 {
			t.Fatalf("1.5s later at 0.01/s: %+v, %v; want denied, Remaining 0 (0.015 tokens)", res, err)
		}
	})
}

// TestRefundOfNothingKeepsBucketUnderNewPolicy: a refund that gives
// nothing back (the bucket regained the cost on its own since the take)
// writes nothing, as a denial does, and like a denial it extends the key's
// TTL when a policy changed since the last write (SetPolicy) refills the
// bucket later: a key that expired at the old policy's refill time would
// come back full under the new one, sooner than the adoption rule says.
func TestRefundOfNothingKeepsBucketUnderNewPolicy(t *testing.T) {
	onBothServers(t, func(t *testing.T, name string, m *miniredis.Miniredis, c *redis.Client, s *redisstore.Store) {
		ctx := context.Background()
		m.SetTime(time.Now())
		res, err := s.Take(ctx, "k", store.Request{Rate: 1, Burst: 1, Cost: 1})
		if err != nil || !res.Allowed {
			t.Fatalf("take 1 of 1 at 1/s: %+v, %v", res, err)
		}
		if ttl := c.PTTL(ctx, s.Key("k")).Val(); ttl > time.Second {
			t.Fatalf("TTL %v after taking 1 of 1 at 1/s, want 1s at most", ttl)
		}
		state := c.Get(ctx, s.Key("k")).Val()
		// Under the new policy (refills in 500 s) the bucket regains the
		// refund's cost of 3 in 300 s: a take 400 s back gives nothing.
		slow := store.Request{Rate: 0.01, Burst: 5, Cost: 3}
		if err := s.Refund(ctx, "k", slow, res.At-400_000_000); err != nil {
			t.Fatal(err)
		}
		if got := c.Get(ctx, s.Key("k")).Val(); got != state {
			t.Fatalf("the refund of nothing changed the bucket from %x to %x", state, got)
		}
		if ttl := c.PTTL(ctx, s.Key("k")).Val(); ttl < 499*time.Second || ttl > 500*time.Second+time.Millisecond {
			t.Fatalf("after the refund of nothing the key expires in %v, want its refill time under the new policy, 500s", ttl)
		}
	})
}

// callsOf is how many times a redis-server has run cmd, scripts'
// calls included (INFO commandstats).
func callsOf(t *testing.T, c *redis.Client, cmd string) int {
	t.Helper()
	info, err := c.Info(context.Background(), "commandstats").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(info, "\n") {
		if rest, ok := strings.CutPrefix(line, "cmdstat_"+cmd+":calls="); ok {
			n, err := strconv.Atoi(rest[:strings.IndexByte(rest, ',')])
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	return 0
}
