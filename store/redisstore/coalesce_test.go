package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/floodgate-go/floodgate/internal/redistest"
	"github.com/floodgate-go/floodgate/store"
	"github.com/floodgate-go/floodgate/store/redisstore"
)

// pipelineCounter is a go-redis hook counting the round trips that carry
// script calls: single commands and pipelines, with the calls they
// carried. (go-redis sends pipelines of its own to set up a connection.)
type pipelineCounter struct {
	singles, pipelines, piped atomic.Int64
}

func (*pipelineCounter) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *pipelineCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if isScript(cmd) {
			h.singles.Add(1)
		}
		return next(ctx, cmd)
	}
}
func (h *pipelineCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		n := 0
		for _, c := range cmds {
			if isScript(c) {
				n++
			}
		}
		if n > 0 {
			h.pipelines.Add(1)
			h.piped.Add(int64(n))
		}
		return next(ctx, cmds)
	}
}

func isScript(cmd redis.Cmder) bool { return cmd.Name() == "evalsha" || cmd.Name() == "eval" }

// hammer runs workers goroutines, each on keys of its own, making rounds
// Takes, Peeks and Refunds with costs of its own, and checks that every
// call got exactly its own answer: each worker's bucket (burst 1000, a
// rate too slow to refill within the test) goes down by exactly its cost
// per Take, a Peek sees the level the worker's own calls left, and a Refund
// right after a Take gives its cost back.
func hammer(t *testing.T, s *redisstore.Store, workers, rounds int) {
	t.Helper()
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			ctx := context.Background()
			key := fmt.Sprintf("w%d", w)
			cost := 1 + w%7
			req := store.Request{Rate: 1e-3, Burst: 1000, Cost: cost}
			left := 1000
			for i := range rounds {
				res, err := s.Take(ctx, key, req)
				left -= cost
				if err != nil || !res.Allowed || res.Remaining != left {
					t.Errorf("worker %d round %d: Take: %+v, %v; want allowed with %d left", w, i, res, err, left)
					return
				}
				switch i % 3 {
				case 1:
					if err := s.Refund(ctx, key, req, res.At); err != nil {
						t.Errorf("worker %d round %d: Refund: %v", w, i, err)
						return
					}
					left += cost
				case 2:
					res, err := s.Peek(ctx, key, req)
					if err != nil || !res.Allowed || res.Remaining != left-cost {
						t.Errorf("worker %d round %d: Peek: %+v, %v; want allowed with %d left after it", w, i, res, err, left-cost)
						return
					}
				}
			}
		})
	}
	wg.Wait()
}

// Concurrent calls share round trips, and each gets exactly its own
// answer; without coalescing, every call is its own round trip.
func TestCoalescing(t *testing.T) {
	srv := redistest.Start(t)
	for _, coalesce := range []bool{true, false} {
		t.Run(fmt.Sprintf("coalesce=%v", coalesce), func(t *testing.T) {
			client := newClient(t, srv.Addr())
			h := &pipelineCounter{}
			client.AddHook(h)
			var opts []redisstore.Option
			if !coalesce {
				opts = append(opts, redisstore.WithoutCoalescing())
			}
			s := freshStore(t, client, opts...)
			const workers, rounds = 64, 30
			hammer(t, s, workers, rounds)
			calls := int64(workers * rounds * 5 / 3)
			trips := h.singles.Load() + h.pipelines.Load()
			t.Logf("%d calls: %d single, %d pipelines carrying %d", calls, h.singles.Load(), h.pipelines.Load(), h.piped.Load())
			if got := h.singles.Load() + h.piped.Load(); got < calls {
				t.Fatalf("%d commands sent for %d calls", got, calls)
			}
			if coalesce && trips*2 > calls {
				t.Fatalf("%d round trips for %d calls from %d goroutines: want fewer than half", trips, calls, workers)
			}
			if !coalesce && h.pipelines.Load() != 0 {
				t.Fatalf("%d pipelines without coalescing, want none", h.pipelines.Load())
			}
		})
	}
}

// Pipelined calls fall back to EVAL when Redis lost its script cache.
func TestCoalescingScriptFlush(t *testing.T) {
	srv := redistest.Start(t)
	client := newClient(t, srv.Addr())
	h := &pipelineCounter{}
	client.AddHook(h)
	s := freshStore(t, client)
	stop := make(chan struct{})
	var flushed sync.WaitGroup
	flushed.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			client.ScriptFlush(context.Background())
			time.Sleep(time.Millisecond)
		}
	})
	hammer(t, s, 32, 30)
	close(stop)
	flushed.Wait()
	if h.pipelines.Load() == 0 {
		t.Fatal("no pipeline was sent")
	}
}

// A call whose context ends while it waits for a pipeline (here, behind a
// round trip a slow proxy holds for 300 ms) leaves at once with its
// context's error; the calls that stay get their own answers.
func TestCoalescingCallerLeaves(t *testing.T) {
	srv := redistest.Start(t)
	p := redistest.StartProxy(t, srv.Addr())
	s := freshStore(t, newClient(t, p.Addr))
	ctx := context.Background()
	req := store.Request{Rate: 1e-3, Burst: 100, Cost: 1}
	if _, err := s.Take(ctx, "warm", req); err != nil { // a connection, and the script loaded
		t.Fatal(err)
	}
	p.SetDelay(300 * time.Millisecond)
	var wg sync.WaitGroup
	for i := range 2 { // fill the lane's two round trips
		wg.Go(func() {
			if res, err := s.Take(ctx, fmt.Sprintf("slow%d", i), req); err != nil || res.Remaining != 99 {
				t.Errorf("slow call %d: %+v, %v", i, res, err)
			}
		})
	}
	time.Sleep(50 * time.Millisecond) // both in flight
	var stayed sync.WaitGroup
	for i := range 4 { // queued, staying
		stayed.Go(func() {
			if res, err := s.Take(ctx, fmt.Sprintf("stay%d", i), req); err != nil || res.Remaining != 99 {
				t.Errorf("staying call %d: %+v, %v", i, res, err)
			}
		})
	}
	for i := range 4 { // queued, leaving after 20 ms
		wg.Go(func() {
			cctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
			defer cancel()
			start := time.Now()
			_, err := s.Take(cctx, fmt.Sprintf("leave%d", i), req)
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("leaving call %d: %v, want its deadline", i, err)
			}
			if waited := time.Since(start); waited > 200*time.Millisecond {
				t.Errorf("leaving call %d waited %v for a 20 ms deadline", i, waited)
			}
		})
	}
	wg.Wait()
	p.SetDelay(0)
	stayed.Wait()
	for i := range 4 { // the calls that left were never sent, or sent whole
		res, err := s.Peek(ctx, fmt.Sprintf("leave%d", i), req)
		if err != nil || res.Remaining < 98 {
			t.Fatalf("key of leaving call %d: %+v, %v", i, res, err)
		}
	}
}

// Pipelines on a Cluster go to each key's master, and answers stay each
// call's own.
func TestCoalescingCluster(t *testing.T) {
	c := redistest.StartCluster(t)
	client := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs(), ContextTimeoutEnabled: true, Protocol: 2})
	t.Cleanup(func() { client.Close() })
	h := &pipelineCounter{}
	client.AddHook(h)
	hammer(t, freshStore(t, client), 64, 20)
	if h.pipelines.Load() == 0 {
		t.Fatal("no pipeline was sent")
	}
}

// Callers whose deadlines end at random, while queued or while their
// pipeline is in flight, never receive another call's answer, and the
// calls that finish get their own: each worker peeks at a bucket of its
// own, drained to a level of its own, with deadlines of 0 to 2 ms.
func TestCoalescingAbandonStress(t *testing.T) {
	srv := redistest.Start(t)
	s := freshStore(t, newClient(t, srv.Addr()))
	const workers = 64
	ctx := context.Background()
	req := func(w int) store.Request { return store.Request{Rate: 1e-3, Burst: 1000, Cost: 1 + w%5} }
	for w := range workers {
		if _, err := s.Take(ctx, fmt.Sprintf("s%d", w), store.Request{Rate: 1e-3, Burst: 1000, Cost: 1 + w}); err != nil {
			t.Fatal(err)
		}
	}
	var answered, left atomic.Int64
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			want := 1000 - (1 + w) - (1 + w%5)
			for i := range 200 {
				cctx, cancel := context.WithTimeout(ctx, time.Duration((w*7+i*13)%2000)*time.Microsecond)
				res, err := s.Peek(cctx, fmt.Sprintf("s%d", w), req(w))
				dl, _ := cctx.Deadline()
				expired := !time.Now().Before(dl) // the socket's deadline can fire before the context's timer
				cancel()
				if err != nil {
					if !expired { // a deadline on the socket is an i/o timeout, not the context's error
						t.Errorf("worker %d: %v", w, err)
						return
					}
					left.Add(1)
					continue
				}
				answered.Add(1)
				if res.Remaining != want {
					t.Errorf("worker %d call %d: Remaining %d, want %d: another call's answer", w, i, res.Remaining, want)
					return
				}
			}
		})
	}
	wg.Wait()
	t.Logf("%d answered, %d left on their deadline", answered.Load(), left.Load())
	if answered.Load() == 0 || left.Load() == 0 {
		t.Fatalf("%d answered, %d left: the test needs both", answered.Load(), left.Load())
	}
}

// Calls queued by goroutines in a testing/synctest bubble leave nothing
// behind that belongs to the bubble: a channel made in a bubble and used
// outside it crashes the program ("select on synctest channel from outside
// bubble"), which recycled calls with their channels did when a test in a
// bubble ran before one outside it.
func TestCoalescingAcrossBubbles(t *testing.T) {
	m := miniredis.RunT(t)
	synctest.Test(t, func(t *testing.T) {
		hammer(t, freshStore(t, newBubbleClient(t, m.Addr())), 64, 20)
	})
	hammer(t, freshStore(t, newClient(t, m.Addr())), 64, 20)
}
