package redisstore_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/time/rate"

	"github.com/floodgate-go/floodgate/internal/redistest"
	"github.com/floodgate-go/floodgate/limiter"
	"github.com/floodgate-go/floodgate/store"
	"github.com/floodgate-go/floodgate/store/storetest"
)

// dirty returns how many writes Redis has counted since its last save
// (INFO persistence, rdb_changes_since_last_save): a command that writes
// nothing leaves it as it was.
func dirty(t *testing.T, c *redis.Client) int64 {
	t.Helper()
	info, err := c.Info(context.Background(), "persistence").Result()
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(info, "\n") {
		if rest, ok := strings.CutPrefix(line, "rdb_changes_since_last_save:"); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(rest), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatal("INFO persistence has no rdb_changes_since_last_save")
	return 0
}

// On a real redis-server, Store.Peek and Limiter.Peek through it write
// nothing: on keys Redis does not hold (hostile ones included) no key is
// created (DBSIZE unchanged); on a key it holds, its value and TTL stay as
// they were; and Redis counts no write at all.
func TestPeekWritesNothingRedis(t *testing.T) {
	srv := redistest.Start(t)
	client := newClient(t, srv.Addr())
	ctx := context.Background()
	s := freshStore(t, client)
	p := limiter.Policy{Rate: rate.Every(time.Hour), Burst: 4}
	req := store.Request{Rate: p.Rate, Burst: p.Burst, Cost: 1}
	if _, err := s.Take(ctx, "held", store.Request{Rate: p.Rate, Burst: p.Burst, Cost: 3}); err != nil {
		t.Fatal(err)
	}
	l := newLimiter(t, p, store.Config{Store: s})
	value, err := client.Get(ctx, s.Key("held")).Result()
	if err != nil {
		t.Fatal(err)
	}
	ttl := client.PTTL(ctx, s.Key("held")).Val()
	keys, writes := client.DBSize(ctx).Val(), dirty(t, client)

	for cost := 1; cost <= p.Burst; cost++ {
		req.Cost, req.Extra = cost, 2
		for _, k := range append(storetest.HostileKeys(), "held") {
			res, err := s.Peek(ctx, k, req)
			if err != nil {
				t.Fatalf("Peek(%.20q, cost %d): %v", k, cost, err)
			}
			if want := k != "held" || cost == 1; res.Allowed != want || res.Extra != 0 {
				t.Fatalf("Peek(%.20q, cost %d): got %+v, want allowed %v, Extra 0", k, cost, res, want)
			}
			d, err := l.Peek(ctx, k, cost)
			if err != nil || d.Fallback || d.Allowed != (k != "held" || cost == 1) {
				t.Fatalf("Limiter.Peek(%.20q, %d): got %+v, %v", k, cost, d, err)
			}
		}
	}
	if got := client.DBSize(ctx).Val(); got != keys {
		t.Errorf("DBSIZE %d after peeks, %d before: a peek created keys", got, keys)
	}
	if got := client.Get(ctx, s.Key("held")).Val(); got != value {
		t.Errorf("bucket %q after peeks, %q before", got, value)
	}
	if got := client.PTTL(ctx, s.Key("held")).Val(); got > ttl || got < ttl-time.Minute {
		t.Errorf("PTTL %v after peeks, %v before: a peek moved it", got, ttl)
	}
	if got := dirty(t, client); got != writes {
		t.Errorf("Redis counted %d writes during the peeks, want 0", got-writes)
	}
	if st := l.Stats(); st.Keys != 0 || st.Allowed+st.Denied != 0 || st.Store.CachedKeys != 0 {
		t.Errorf("Limiter.Stats after peeks: %+v, want no keys, no decisions, no cached keys", st)
	}
}
