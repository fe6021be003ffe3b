package redisstore_test

import (
	"context"
	"net"
	"testing"
	"testing/synctest"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/floodgate-go/floodgate/internal/redistest"
	"github.com/floodgate-go/floodgate/store"
)

// newBubbleClient returns a client for a Redis outside a synctest bubble
// (miniredis, started before synctest.Test), to be used from inside it:
// no deadline, timeout or retry of go-redis's applies to its round trips.
//
// A round trip to a server outside the bubble takes real time and no fake
// time: a goroutine waiting on the network is not durably blocked, so the
// bubble's clock stands still. A deadline from a context, in fake time,
// must then never pass during one; but go-redis turns it into a socket
// deadline, which internal/poll measures with the bubble's time.Until and
// the runtime's poller then waits for in real time. A Store call under the
// limiter's 100 ms Timeout thus had 100 ms of real time to complete: on a
// loaded machine it timed out (a Fallback with the Store up), or go-redis
// retried the read timeout, which ran the script again (tokens taken twice)
// after a backoff slept in fake time (the clock moved during the call); the
// dial had the same deadline. So this client sets no socket deadline
// (ReadTimeout and WriteTimeout -2), dials without the context's deadline,
// and never retries: a Store call's latency is what the test sleeps in fake
// time (clockStore.delay), and the limiter's Timeout is still in force
// around it (clockStore checks the context after its delay).
func newBubbleClient(t testing.TB, addr string) *redis.Client {
	c := redis.NewClient(&redis.Options{
		Addr: addr, ContextTimeoutEnabled: true, Protocol: 2,
		ReadTimeout: -2, WriteTimeout: -2, MaxRetries: -1,
		Dialer: func(ctx context.Context, network, addr string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(context.WithoutCancel(ctx), network, addr)
		},
	})
	t.Cleanup(func() { c.Close() })
	return c
}

// A Store call from inside a bubble to a Redis outside it that takes more
// real time to answer than the call's timeout in fake time: no fake time
// passes, so it must succeed and take once. With newClient it times out,
// or takes more than once, as TestLimiterModel's Store calls did on a
// loaded machine.
func TestBubbleClientIgnoresRealLatency(t *testing.T) {
	m := miniredis.RunT(t)
	proxy := redistest.StartProxy(t, m.Addr()) // outside the bubble too
	proxy.SetDelay(150 * time.Millisecond)
	synctest.Test(t, func(t *testing.T) {
		s := clocked{freshStore(t, newBubbleClient(t, proxy.Addr)), m}
		req := store.Request{Rate: 1, Burst: 10, Cost: 1}
		start := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		res, err := s.Take(ctx, "k", req)
		if err != nil || !res.Allowed {
			t.Fatalf("Take: got %+v, %v; want admitted", res, err)
		}
		if since := time.Since(start); since != 0 {
			t.Errorf("the round trip took %v of fake time, want 0", since)
		}
		if res, err := s.Peek(context.Background(), "k", req); err != nil || res.Remaining != 8 {
			t.Fatalf("Peek(1) after one Take of 1 from Burst 10: got %+v, %v; want Remaining 8", res, err)
		}
	})
}
