package redisstore_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/floodgate-go/floodgate/internal/redistest"
	"github.com/floodgate-go/floodgate/limiter"
	"github.com/floodgate-go/floodgate/store"
	"github.com/floodgate-go/floodgate/store/redisstore"
	"github.com/floodgate-go/floodgate/store/storetest"
)

// newClient returns a client for addr with context deadlines honoured, as
// New requires.
func newClient(t testing.TB, addr string) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: addr, ContextTimeoutEnabled: true, Protocol: 2})
	t.Cleanup(func() { c.Close() })
	return c
}

var namespaces atomic.Int64

// freshStore returns a Store in a namespace of its own on client.
func freshStore(t testing.TB, client redis.UniversalClient, opts ...redisstore.Option) *redisstore.Store {
	s, err := redisstore.New(client, append([]redisstore.Option{redisstore.WithPrefix("t" + strings.Repeat("x", int(namespaces.Add(1)%3)) +
		":" + t.Name() + ":" + string(rune('a'+namespaces.Load()%26)))}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// onBothServers runs f as a subtest on miniredis (name "miniredis") and on
// a real redis-server ("redis-server"; see redistest.Start for when there
// is none), each time with a Store of its own. m is the miniredis, whose
// clock f may set.
func onBothServers(t *testing.T, f func(t *testing.T, name string, m *miniredis.Miniredis, c *redis.Client, s *redisstore.Store)) {
	m := miniredis.RunT(t)
	srv := redistest.Start(t)
	for name, c := range map[string]*redis.Client{"miniredis": newClient(t, m.Addr()), "redis-server": newClient(t, srv.Addr())} {
		t.Run(name, func(t *testing.T) { f(t, name, m, c, freshStore(t, c)) })
	}
}

func TestConformanceMiniredis(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		m := miniredis.RunT(t)
		return freshStore(t, newClient(t, m.Addr()))
	})
}

func TestConformanceRedis(t *testing.T) {
	srv := redistest.Start(t)
	client := newClient(t, srv.Addr())
	storetest.Run(t, func(t *testing.T) store.Store { return freshStore(t, client) })
}

func TestConformanceCluster(t *testing.T) {
	c := redistest.StartCluster(t)
	client := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs(), ContextTimeoutEnabled: true, Protocol: 2})
	t.Cleanup(func() { client.Close() })
	storetest.Run(t, func(t *testing.T) store.Store { return freshStore(t, client) })
}

func TestNewNeedsContextTimeouts(t *testing.T) {
	m := miniredis.RunT(t)
	c := redis.NewClient(&redis.Options{Addr: m.Addr()})
	defer c.Close()
	if _, err := redisstore.New(c); !errors.Is(err, redisstore.ErrInvalidOption) {
		t.Fatalf("New(client without ContextTimeoutEnabled): got %v, want ErrInvalidOption", err)
	}
	if _, err := redisstore.New(nil); !errors.Is(err, redisstore.ErrInvalidOption) {
		t.Fatalf("New(nil): got %v, want ErrInvalidOption", err)
	}
	for _, p := range []string{"", strings.Repeat("p", 129)} {
		if _, err := redisstore.New(newClient(t, m.Addr()), redisstore.WithPrefix(p)); !errors.Is(err, redisstore.ErrInvalidOption) {
			t.Fatalf("WithPrefix(len %d): got %v, want ErrInvalidOption", len(p), err)
		}
	}
}

// A wrapper that embeds a go-redis client has that client's Options, and
// is judged by them; a UniversalClient implemented some other way cannot
// show that it honours context deadlines, and is refused.
func TestNewClientTypes(t *testing.T) {
	m := miniredis.RunT(t)
	type wrapped struct{ *redis.Client }
	type wrappedCluster struct{ *redis.ClusterClient }
	type wrappedRing struct{ *redis.Ring }
	type foreign struct{ redis.UniversalClient }
	newRing := func(enabled bool) *redis.Ring {
		r := redis.NewRing(&redis.RingOptions{Addrs: map[string]string{"a": m.Addr()}, ContextTimeoutEnabled: enabled})
		t.Cleanup(func() { r.Close() })
		return r
	}
	newCluster := func(enabled bool) *redis.ClusterClient {
		c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{m.Addr()}, ContextTimeoutEnabled: enabled})
		t.Cleanup(func() { c.Close() })
		return c
	}
	without := redis.NewClient(&redis.Options{Addr: m.Addr()})
	t.Cleanup(func() { without.Close() })
	with := newClient(t, m.Addr())
	for _, tc := range []struct {
		name   string
		client redis.UniversalClient
		ok     bool
	}{
		{"*redis.Client", with, true},
		{"*redis.Client without", without, false},
		{"*redis.ClusterClient", newCluster(true), true},
		{"*redis.ClusterClient without", newCluster(false), false},
		{"*redis.Ring", newRing(true), true},
		{"*redis.Ring without", newRing(false), false},
		{"embedded *redis.Client", wrapped{with}, true},
		{"embedded *redis.Client without", wrapped{without}, false},
		{"embedded *redis.ClusterClient", wrappedCluster{newCluster(true)}, true},
		{"embedded *redis.ClusterClient without", wrappedCluster{newCluster(false)}, false},
		{"embedded *redis.Ring", wrappedRing{newRing(true)}, true},
		{"embedded *redis.Ring without", wrappedRing{newRing(false)}, false},
		{"foreign UniversalClient", foreign{with}, false},
	} {
		s, err := redisstore.New(tc.client)
		if tc.ok && (err != nil || s == nil) {
			t.Errorf("New(%s): %v, want a store", tc.name, err)
		}
		if !tc.ok && !errors.Is(err, redisstore.ErrInvalidOption) {
			t.Errorf("New(%s): got %v, want ErrInvalidOption", tc.name, err)
		}
		if err != nil {
			t.Logf("New(%s): %v", tc.name, err)
		}
	}
	// An accepted wrapper works.
	s, err := redisstore.New(wrapped{with})
	if err != nil {
		t.Fatal(err)
	}
	res, err := s.Take(context.Background(), "k", store.Request{Rate: limiter.PerHour(1).Rate, Burst: 1, Cost: 1})
	if err != nil || !res.Allowed {
		t.Fatalf("Take through a wrapper: %+v, %v", res, err)
	}
}

// replyHook replaces the script's reply with reply.
type replyHook struct{ reply []int64 }

func (h replyHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h replyHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

func (h replyHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		if c, ok := cmd.(*redis.IntSliceCmd); ok && err == nil {
			c.SetVal(h.reply)
		}
		return err
	}
}

// A reply of the wrong shape (the 6 elements of the script before At, a
// negative At, …) is ErrBadReply, from Take and from Refund.
func TestBadReply(t *testing.T) {
	m := miniredis.RunT(t)
	p := limiter.PerHour(5)
	ctx := context.Background()
	for _, reply := range [][]int64{
		{1, 4, 0, 720000000000, 0, 0},
		{1, 4, 0, 720000000000, 0, 0, 1, 1},
		{1, 4, 0, 720000000000, 0, 0, -1},
		{2, 4, 0, 720000000000, 0, 0, 1},
		{1, 4, 0, 720000000000, 1, 0, 1}, // extra tokens that were not asked for
		{},
	} {
		client := newClient(t, m.Addr())
		client.AddHook(replyHook{reply})
		s := freshStore(t, client)
		if _, err := s.Take(ctx, "k", store.Request{Rate: p.Rate, Burst: p.Burst, Cost: 1}); !errors.Is(err, redisstore.ErrBadReply) {
			t.Errorf("Take with reply %v: got %v, want ErrBadReply", reply, err)
		}
		if len(reply) == 7 {
			continue // Refund checks the length only: it uses nothing else
		}
		if err := s.Refund(ctx, "k", store.Request{Rate: p.Rate, Burst: p.Burst, Cost: 1}, 1); !errors.Is(err, redisstore.ErrBadReply) {
			t.Errorf("Refund with reply %v: got %v, want ErrBadReply", reply, err)
		}
	}
}

func TestKey(t *testing.T) {
	m := miniredis.RunT(t)
	s, err := redisstore.New(newClient(t, m.Addr()), redisstore.WithPrefix("fg"))
	if err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]string{
		"192.0.2.1":             "fg:r2:192.0.2.1",
		"user_42-x":             "fg:r2:user_42-x",
		strings.Repeat("a", 64): "fg:r2:" + strings.Repeat("a", 64),
	} {
		if got := s.Key(key); got != want {
			t.Errorf("Key(%q) = %q, want %q", key, got, want)
		}
	}
	seen := map[string]string{}
	for _, key := range storetest.HostileKeys() {
		got := s.Key(key)
		if !strings.HasPrefix(got, "fg:r2:") && !strings.HasPrefix(got, "fg:h2:") {
			t.Errorf("Key(%.20q) = %q: no marker", key, got)
		}
		if len(got) > len("fg:h2:")+64 || strings.ContainsAny(got[3:], "{}") || strings.Count(got, ":") != 2 {
			t.Errorf("Key(%.20q) = %q: too long, a hash tag or an extra ':'", key, got)
		}
		if prev, ok := seen[got]; ok {
			t.Errorf("Key(%.20q) = Key(%.20q) = %q", key, prev, got)
		}
		seen[got] = key
	}
}

// Redis loses its script cache when it restarts; Take must fall back to
// EVAL by itself.
func TestScriptFlushFallback(t *testing.T) {
	m := miniredis.RunT(t)
	client := newClient(t, m.Addr())
	s := freshStore(t, client)
	p := limiter.PerHour(3)
	ctx := context.Background()
	for i := range 3 {
		if i == 1 {
			if err := client.ScriptFlush(ctx).Err(); err != nil {
				t.Fatal(err)
			}
		}
		res, err := s.Take(ctx, "k", store.Request{Rate: p.Rate, Burst: p.Burst, Cost: 1})
		if err != nil || !res.Allowed || res.Remaining != 2-i {
			t.Fatalf("request %d: got %+v, %v; want allowed with %d left", i, res, err, 2-i)
		}
	}
}

// A bucket's key lives exactly as long as the bucket needs to refill, so
// idle clients cost Redis no memory.
func TestKeyTTL(t *testing.T) {
	m := miniredis.RunT(t)
	s := freshStore(t, newClient(t, m.Addr()))
	p := limiter.Policy{Rate: 2, Burst: 10} // 3 tokens refill in 1.5 s
	if _, err := s.Take(context.Background(), "k", store.Request{Rate: p.Rate, Burst: p.Burst, Cost: 3}); err != nil {
		t.Fatal(err)
	}
	if ttl := m.TTL(s.Key("k")); ttl != 1500*time.Millisecond {
		t.Fatalf("TTL %v after taking 3 of 10 at 2/s, want 1.5s", ttl)
	}
	m.FastForward(1500 * time.Millisecond)
	if m.Exists(s.Key("k")) {
		t.Fatalf("key still there after its refill time")
	}
}

// TestCompositeRefund: a request admitted by a Redis-backed limit and
// denied by a second limit gives its tokens back to Redis, so the denial
// burns no quota on any instance.
func TestCompositeRefund(t *testing.T) {
	m := miniredis.RunT(t)
	client := newClient(t, m.Addr())
	s := freshStore(t, client)
	newL := func(p limiter.Policy, opts ...limiter.Option) *limiter.Limiter {
		l, err := limiter.New(p, opts...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		return l
	}
	perIP := newL(limiter.PerMinute(10), limiter.WithStore(store.Config{Store: s}))
	perKey := newL(limiter.PerMinute(1))
	ctx := context.Background()
	for i := range 6 {
		d, err := limiter.AllowAll(ctx,
			limiter.Limit{Name: "per-ip", Limiter: perIP, Key: "198.51.100.1"},
			limiter.Limit{Name: "per-key", Limiter: perKey, Key: "k"},
		)
		if err != nil || d.Allowed != (i == 0) {
			t.Fatalf("request %d: %+v, %v", i, d, err)
		}
	}
	// Another instance on the same Redis sees 9 tokens: 1 spent, 5 refunded.
	other := newL(limiter.PerMinute(10), limiter.WithStore(store.Config{Store: s}))
	d, err := other.Allow(ctx, "198.51.100.1")
	if err != nil || d.Remaining != 8 {
		t.Fatalf("another instance: %+v, %v; want Remaining 8 (the denied requests were refunded)", d, err)
	}
}
