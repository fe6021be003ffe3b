package limiter

import (
	"context"
	"testing"
	"testing/synctest"
	"time"
)

// waitAcrossSetPolicy drains key at 1/s burst 3, starts a WaitN(3) (due in
// 3 s), raises the policy to 10/s, burst 3 at once, so that the bucket is
// full again after 0.6 s while the waiter is still due at 3 s, and returns
// the waiter's cancel and a channel closed when it has returned.
func waitAcrossSetPolicy(t *testing.T, l *Limiter, key string) (cancel func(), done <-chan struct{}) {
	t.Helper()
	ctx := context.Background()
	if d, err := l.AllowN(ctx, key, 3); err != nil || !d.Allowed {
		t.Fatalf("draining AllowN(3): %+v, %v", d, err)
	}
	wctx, cancel := context.WithCancel(ctx)
	ch := make(chan struct{})
	go func() {
		defer close(ch)
		if err := l.WaitN(wctx, key, 3); err == nil {
			t.Error("WaitN returned nil; it was to be cancelled before its time")
		}
	}()
	synctest.Wait() // the waiter has reserved
	if err := l.SetPolicy(Policy{Rate: 10, Burst: 3}); err != nil {
		t.Fatal(err)
	}
	return cancel, ch
}

// TestCancelAfterSetPolicyDoesNotMint: a waiter that reserved under a
// slower policy and is cancelled after the bucket has refilled under a
// faster one gives nothing back. Its tokens were regained by the refill
// (and spent: AllowN(1) below), so giving them back, as
// rate.Reservation.CancelAt would, admitted 4 at one instant against a
// Burst of 3.
func TestCancelAfterSetPolicyDoesNotMint(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := mustNew(t, Policy{Rate: 1, Burst: 3}, WithSweepInterval(time.Hour))
		cancel, done := waitAcrossSetPolicy(t, l, "k")
		time.Sleep(time.Second)
		ctx := context.Background()
		if d, _ := l.AllowN(ctx, "k", 1); !d.Allowed {
			t.Fatalf("AllowN(1) a second after the bucket refilled at 10/s: %+v", d)
		}
		cancel()
		<-done
		if d, _ := l.AllowN(ctx, "k", 3); d.Allowed {
			t.Fatalf("AllowN(3) right after AllowN(1) and the cancel: admitted, 4 tokens at one instant against a Burst of 3")
		}
	})
}

// TestSweepKeepsBucketWithReservationAhead: a bucket that is full again
// while a waiter's reservation is still due is not retired, since undoing
// an admission reads that reservation's time, which a new bucket lacks.
// Two limiters, one swept every 10 ms and one never, make the same
// decisions: a duplicate AllowAll's refund gives back the same on both.
func TestSweepKeepsBucketWithReservationAhead(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		swept := mustNew(t, Policy{Rate: 1, Burst: 3}, WithSweepInterval(10*time.Millisecond))
		kept := mustNew(t, Policy{Rate: 1, Burst: 3}, WithSweepInterval(time.Hour))
		var cancels []func()
		var dones []<-chan struct{}
		for _, l := range []*Limiter{swept, kept} {
			c, d := waitAcrossSetPolicy(t, l, "k")
			cancels, dones = append(cancels, c), append(dones, d)
		}
		time.Sleep(time.Second) // both full again; the waiters still due at 3 s
		if s := swept.Stats(); s.Keys != 1 {
			t.Fatalf("swept limiter: %d keys tracked, want 1 (the bucket with a reservation ahead is kept)", s.Keys)
		}
		ctx := context.Background()
		var got [2][2]bool
		for i, l := range []*Limiter{swept, kept} {
			cd, err := AllowAll(ctx, Limit{Limiter: l, Key: "k", Cost: 2}, Limit{Limiter: l, Key: "k", Cost: 2})
			if err != nil || cd.Allowed {
				t.Fatalf("duplicate AllowAll(2, 2) on a Burst of 3: %+v, %v; want a denial", cd, err)
			}
			d, _ := l.AllowN(ctx, "k", 3)
			got[i] = [2]bool{cd.Allowed, d.Allowed}
		}
		if got[0] != got[1] {
			t.Fatalf("swept and never-swept limiters decide differently: %v vs %v", got[0], got[1])
		}
		for i := range cancels {
			cancels[i]()
			<-dones[i]
		}
	})
}
