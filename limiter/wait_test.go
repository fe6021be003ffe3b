package limiter

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"
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
