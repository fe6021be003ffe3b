package limiter

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"golang.org/x/time/rate"
)

// Waiters are served at the policy's rate, in order, and never before their
// tokens exist.
func TestWaitPacesAtTheRate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := mustNew(t, PerSecond(2)) // burst 2, then one every 500ms
		start := time.Now()
		var got []time.Duration
		for range 6 {
			if err := l.Wait(ctx, "api"); err != nil {
				t.Fatal(err)
			}
			got = append(got, time.Since(start))
		}
		want := []time.Duration{0, 0, 500 * time.Millisecond, time.Second, 1500 * time.Millisecond, 2 * time.Second}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("Wait returned at %v, want %v", got, want)
			}
		}
	})
}

func TestWaitConcurrentWaitersStayWithinTheBound(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := PerSecond(10)
		l := mustNew(t, p)
		start := time.Now()
		var mu sync.Mutex
		var done []time.Duration
		var wg sync.WaitGroup
		for range 50 {
			wg.Go(func() {
				if err := l.Wait(ctx, "api"); err != nil {
					t.Error(err)
				}
				mu.Lock()
				done = append(done, time.Since(start))
				mu.Unlock()
			})
		}
		wg.Wait()
		checkWindows(t, "waiters", p, done)
		// 50 requests at 10/s with a burst of 10 take 4s: not more.
		if took := time.Since(start); took != 4*time.Second {
			t.Fatalf("50 waiters finished after %v, want 4s", took)
		}
	})
}

func TestWaitDeadlineShorterThanTheWaitReturnsAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := mustNew(t, PerMinute(1))
		l.Allow(ctx, "api") // drained: the next token is a minute away
		c, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		start := time.Now()
		err := l.Wait(c, "api")
		if !errors.Is(err, ErrWouldExceedDeadline) {
			t.Fatalf("Wait = %v, want ErrWouldExceedDeadline", err)
		}
		if waited := time.Since(start); waited != 0 {
			t.Fatalf("Wait took %v before failing, want 0", waited)
		}
		// Nothing was reserved: after a minute the token is there.
		time.Sleep(time.Minute)
		if d, _ := l.Allow(ctx, "api"); !d.Allowed {
			t.Fatal("the failed Wait reserved a token")
		}
	})
}

func TestWaitCancelledGivesTheTokensBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := mustNew(t, PerSecond(1))
		l.Allow(ctx, "api")
		c, cancel := context.WithCancel(ctx)
		errc := make(chan error)
		go func() { errc <- l.Wait(c, "api") }()
		time.Sleep(300 * time.Millisecond)
		cancel()
		if err := <-errc; !errors.Is(err, context.Canceled) {
			t.Fatalf("Wait = %v, want context.Canceled", err)
		}
		time.Sleep(700 * time.Millisecond) // the token the waiter reserved is due now
		if d, _ := l.Allow(ctx, "api"); !d.Allowed {
			t.Fatal("the cancelled Wait kept its reservation")
		}
	})
}

func TestWaitDoneContext(t *testing.T) {
	l := mustNew(t, PerSecond(1))
	c, cancel := context.WithCancel(ctx)
	cancel()
	if err := l.Wait(c, "api"); !errors.Is(err, context.Canceled) {
		t.Fatalf("Wait on a done context = %v, want context.Canceled", err)
	}
	if s := l.Stats(); s.Allowed != 0 {
		t.Fatalf("a Wait on a done context took tokens: %+v", s)
	}
	if err := l.WaitN(ctx, "api", 2); !errors.Is(err, ErrInvalidCost) {
		t.Fatalf("WaitN beyond the burst = %v, want ErrInvalidCost", err)
	}
}

// waiter is one WaitN in a scripted run: it starts at start and, if cancel
// is not zero, its context is cancelled at cancel (both from the run's
// start).
type waiter struct {
	start, cancel time.Duration
	n             int
}

// waitSchedule runs waiters against ours and theirs (rate.Limiter's) side
// by side in fake time, and returns when each one's calls returned and
// whether they were admitted.
func waitSchedule(ws []waiter, ours, theirs func(context.Context, int) error) (got, want []time.Duration, gotOK, wantOK []bool) {
	got, want = make([]time.Duration, len(ws)), make([]time.Duration, len(ws))
	gotOK, wantOK = make([]bool, len(ws)), make([]bool, len(ws))
	start := time.Now()
	var wg sync.WaitGroup
	run := func(w waiter, wait func(context.Context, int) error, at *time.Duration, ok *bool) {
		c, cancel := context.WithCancel(ctx)
		defer cancel()
		if w.cancel > 0 {
			stop := time.AfterFunc(w.cancel-time.Since(start), cancel)
			defer stop.Stop()
		}
		*ok = wait(c, w.n) == nil
		*at = time.Since(start)
	}
	for i, w := range ws {
		time.Sleep(w.start - time.Since(start))
		wg.Go(func() { run(w, ours, &got[i], &gotOK[i]) })
		wg.Go(func() { run(w, theirs, &want[i], &wantOK[i]) })
		synctest.Wait() // waiters reserve in the order given
	}
	wg.Wait()
	return got, want, gotOK, wantOK
}

// A cancelled WaitN gives back only what no later reservation counts on,
// as rate.Reservation.CancelAt does, on a key's own bucket: every waiter
// returns when rate.Limiter's would. On the cells, a cancelled WaitN gives
// nothing back (overflow.go): every waiter returns no earlier than
// rate.Limiter's, and the windows stay within Burst + Rate×T.
func TestWaitCancelMatchesRateLimiter(t *testing.T) {
	scripts := map[string][]waiter{
		// A (due 1s) cancels at 0.5s, B is due at 2s: C must wait until 3s,
		// not go at 2s with B.
		"later waiter counts on the cancelled tokens": {{0, 500 * time.Millisecond, 1}, {0, 0, 1}, {600 * time.Millisecond, 0, 1}},
		// The last reservation cancelled: its tokens come back whole.
		"last waiter cancels": {{0, 0, 1}, {0, 1500 * time.Millisecond, 1}, {1600 * time.Millisecond, 0, 1}},
		"costs":               {{0, 0, 2}, {0, 300 * time.Millisecond, 3}, {100 * time.Millisecond, 0, 1}, {400 * time.Millisecond, 0, 3}},
	}
	for _, overflowed := range []bool{false, true} {
		for name, ws := range scripts {
			t.Run(fmt.Sprintf("%s/overflow=%v", name, overflowed), func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					p := Policy{Rate: 1, Burst: 3}
					var opts []Option
					if overflowed {
						opts = append(opts, WithMaxKeys(1))
					}
					l := mustNew(t, p, opts...)
					if overflowed {
						l.AllowN(ctx, "tracked", 3) // drained: nothing can be retired for "api"
					}
					oracle := rate.NewLimiter(p.Rate, p.Burst)
					l.AllowN(ctx, "api", 3)
					oracle.AllowN(time.Now(), 3)
					got, want, gotOK, wantOK := waitSchedule(ws, func(c context.Context, n int) error { return l.WaitN(c, "api", n) }, oracle.WaitN)
					admitted := []time.Duration{0, 0, 0}
					for i := range ws {
						if gotOK[i] {
							admitted = append(admitted, got[i])
						}
						if overflowed && (!gotOK[i] || wantOK[i] && got[i] >= want[i]) {
							continue
						}
						if got[i] != want[i] || gotOK[i] != wantOK[i] {
							t.Errorf("waiter %d %+v: returned at %v (admitted %v), rate.Limiter's at %v (admitted %v)", i, ws[i], got[i], gotOK[i], want[i], wantOK[i])
						}
					}
					checkWindows(t, "api", p, admitted)
					if s := l.Stats(); overflowed != (s.Overflowed > 0) {
						t.Fatalf("Overflowed = %d, want overflow %v", s.Overflowed, overflowed)
					}
				})
			})
		}
	}
}

// The reported case: 100 queued waiters, the 50 earliest cancelled, then 50
// more. Before the fix the 50 newcomers were scheduled on the tokens the
// later waiters already counted on: 100 went through in a 4.9 s window
// against a bound of 50.
func TestWaitCancelledWaitersDoNotOverAdmit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := Policy{Rate: 10, Burst: 1}
		l := mustNew(t, p)
		l.Allow(ctx, "api")
		var ws []waiter
		for i := range 100 {
			w := waiter{n: 1}
			if i < 50 {
				w.cancel = 10 * time.Millisecond
			}
			ws = append(ws, w)
		}
		for range 50 {
			ws = append(ws, waiter{start: 20 * time.Millisecond, n: 1})
		}
		oracle := rate.NewLimiter(p.Rate, p.Burst)
		oracle.Allow()
		at, want, ok, _ := waitSchedule(ws, func(c context.Context, n int) error { return l.WaitN(c, "api", n) }, oracle.WaitN)
		var admitted []time.Duration
		for i := range at {
			if ok[i] {
				admitted = append(admitted, at[i])
			}
			if at[i] != want[i] {
				t.Errorf("waiter %d returned at %v, rate.Limiter's at %v", i, at[i], want[i])
			}
		}
		if len(admitted) != 100 {
			t.Fatalf("%d waiters admitted, want the 100 not cancelled", len(admitted))
		}
		checkWindows(t, "waiters", p, admitted)
	})
}
