package limiter

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing/synctest"
	"time"

	"golang.org/x/time/rate"

	"github.com/floodgate-go/floodgate/internal/ratemodel"
	"github.com/floodgate-go/floodgate/store"
)

// The WaitN steps of TestModel: our WaitN and the oracle's rate.Limiter
// WaitN run in goroutines from the same fake instant, and the model cancels
// them (from the test goroutine, at an instant it drew) or lets them run
// out; both must return at the same instant with the same kind of error.

// A pendingWait is a WaitN that has reserved and not yet returned.
type pendingWait struct {
	call           string
	o              *ratemodel.Oracle
	seg            *ratemodel.Segment // the ledger segment it was reserved under
	n              int
	res            ratemodel.Reservation
	cancelAt       time.Time // zero: not cancelled
	cancel         []context.CancelFunc
	ours, theirs   chan waitResult // theirs nil when the oracle has no rate.Limiter
	oursF, theirsF waitResult      // received results
}

type waitResult struct {
	kind string
	at   time.Time
}

// errKind classifies a Wait error for comparison between ours and rate's.
func errKind(err error) string {
	switch {
	case err == nil:
		return "nil"
	case errors.Is(err, context.Canceled):
		return "context.Canceled"
	case errors.Is(err, context.DeadlineExceeded):
		return "context.DeadlineExceeded"
	case errors.Is(err, ErrWouldExceedDeadline), strings.Contains(err.Error(), "would exceed context deadline"):
		return "would exceed deadline"
	}
	return "error " + err.Error()
}

// event is when the model must next look at w: its due time, or its
// cancellation if that comes first.
func (w *pendingWait) event() time.Time {
	if !w.cancelAt.IsZero() && w.cancelAt.Before(w.res.TimeToAct) {
		return w.cancelAt
	}
	return w.res.TimeToAct
}

// wait runs a WaitN step, one of: no deadline; cancelled at a random
// instant (never a reservation's due instant, where both select branches
// are ready); a deadline at a random instant, possibly already past or
// too close for the wait (ErrWouldExceedDeadline, rate's "would exceed
// context deadline").
func (r *modelRun) wait(s *subject, key string) {
	n, now, o := r.cost(s), time.Now(), r.oracle(s, key)
	w := &pendingWait{o: o, seg: o.Ledger.Current(), n: n, ours: make(chan waitResult, 1)}
	delay := o.WaitFor(now, n)
	maxFuture := rate.InfDuration
	mode := r.rng.IntN(3)
	var deadline time.Time
	switch mode {
	case 1:
		w.cancelAt = r.freeInstant(now.Add(time.Duration(1 + r.rng.Int64N(2*int64(delay)+1))))
	case 2:
		deadline = now.Add(time.Duration(r.rng.Int64N(2*int64(delay) + 2)))
		if deadline.Equal(now.Add(delay)) {
			deadline = deadline.Add(1)
		}
		maxFuture = deadline.Sub(now)
	}
	w.call = fmt.Sprintf("%s.WaitN(%s, %d) at %v, cancel at %v, deadline %v",
		s.name, keyName(key), n, now.Format(stamp), w.cancelAt.Format(stamp), deadline.Format(stamp))
	r.call = w.call
	ctxs := r.waitContexts(w, mode, deadline)
	r.launch(s, key, w, ctxs)
	synctest.Wait() // both have reserved, or returned
	if deadline.IsZero() || deadline.After(now) {
		w.res = o.Reserve(now, n, maxFuture)
	}
	if !w.res.OK || w.res.TimeToAct.Equal(now) {
		r.settleNow(w, deadline, now)
		return
	}
	r.waits = append(r.waits, w)
	if r.received(w) {
		r.fatalf("returned at once (%s), want a wait until %v", w.oursF.kind, w.res.TimeToAct.Format(stamp))
	}
}

const stamp = "15:04:05.000000000"

// freeInstant returns at, moved on by nanoseconds until no pending event
// is due then, so that the order of events is the model's.
func (r *modelRun) freeInstant(at time.Time) time.Time {
	for slices.ContainsFunc(r.waits, func(w *pendingWait) bool {
		return w.res.TimeToAct.Equal(at) || w.cancelAt.Equal(at)
	}) {
		at = at.Add(1)
	}
	return at
}

// waitContexts returns the contexts for ours and the oracle's WaitN.
func (r *modelRun) waitContexts(w *pendingWait, mode int, deadline time.Time) [2]context.Context {
	var ctxs [2]context.Context
	for i := range ctxs {
		var cancel context.CancelFunc
		switch mode {
		case 0, 1: // cancellable either way, so that a failed run can end its goroutines

			ctxs[i], cancel = context.WithCancel(context.Background())
		case 2:
			ctxs[i], cancel = context.WithDeadline(context.Background(), deadline)
		}
		w.cancel = append(w.cancel, cancel)
	}
	return ctxs
}

func (r *modelRun) launch(s *subject, key string, w *pendingWait, ctxs [2]context.Context) {
	go func() {
		err := s.l.WaitN(ctxs[0], key, w.n)
		w.ours <- waitResult{errKind(err), time.Now()}
	}()
	if sh := w.o.Shadow(); sh != nil {
		w.theirs = make(chan waitResult, 1)
		go func() {
			err := sh.WaitN(ctxs[1], w.n)
			w.theirs <- waitResult{errKind(err), time.Now()}
		}()
	}
}

// received collects the results that have arrived and reports whether ours
// has.
func (r *modelRun) received(w *pendingWait) bool {
	select {
	case w.oursF = <-w.ours:
	default:
	}
	if w.theirs != nil {
		select {
		case w.theirsF = <-w.theirs:
		default:
		}
	}
	return w.oursF.kind != ""
}

// expect checks that ours and rate.Limiter's WaitN both returned at at
// with an error of kind want.
func (r *modelRun) expect(w *pendingWait, want string, at time.Time) {
	r.t.Helper()
	r.received(w)
	for _, c := range w.cancel {
		c()
	}
	want = fmt.Sprintf("%s at %s", want, at.Format(stamp))
	if got := w.result(w.oursF); got != want {
		r.fatalf("got %s, want %s", got, want)
	}
	if got := w.result(w.theirsF); w.theirs != nil && got != want {
		r.fatalf("oracle: rate.Limiter.WaitN got %s, the reference wants %s", got, want)
	}
}

func (w *pendingWait) result(res waitResult) string {
	if res.kind == "" {
		return "still waiting"
	}
	return fmt.Sprintf("%s at %s", res.kind, res.at.Format(stamp))
}

// settleNow checks a WaitN that must return at once.
func (r *modelRun) settleNow(w *pendingWait, deadline, now time.Time) {
	switch {
	case !deadline.IsZero() && !deadline.After(now):
		r.expect(w, "context.DeadlineExceeded", now)
	case !w.res.OK:
		r.expect(w, "would exceed deadline", now)
	default:
		r.expect(w, "nil", now)
		w.seg.Admit(now, w.n)
	}
}

// nextEvent returns the pending Wait to look at first, and when.
func (r *modelRun) nextEvent() (*pendingWait, time.Time) {
	var next *pendingWait
	for _, w := range r.waits {
		if next == nil || w.event().Before(next.event()) {
			next = w
		}
	}
	if next == nil {
		return nil, time.Time{}
	}
	return next, next.event()
}

// advance sleeps d, handling the pending Waits' events on the way: a
// cancellation is made by the model at its instant (both return
// context.Canceled then, and the oracle gives back by the refund rule, which
// is rate's CancelAt); a Wait that runs out returns nil at its due time and
// is admitted then.
func (r *modelRun) advance(d time.Duration) {
	end, call := time.Now().Add(d), r.call
	defer func() { r.call = call }()
	for {
		w, at := r.nextEvent()
		if w == nil || at.After(end) {
			break
		}
		time.Sleep(time.Until(at))
		r.waits = slices.DeleteFunc(r.waits, func(x *pendingWait) bool { return x == w })
		r.call = w.call
		r.note(fmt.Sprintf("at %s: the model handles %s", at.Format(stamp), w.call))
		if at.Equal(w.cancelAt) {
			for _, c := range w.cancel {
				c()
			}
			synctest.Wait()
			r.expect(w, "context.Canceled", at)
			r.check(w.o.CancelWait(w.res, at))
			continue
		}
		synctest.Wait()
		r.expect(w, "nil", at)
		w.seg.Admit(at, w.n)
	}
	time.Sleep(time.Until(end))
}

// slowStore is a Store whose every call takes delay of fake time, then
// answers outcome: the slow middle limit of AllowAll, during which the
// other limits' buckets refill.
type slowStore struct {
	delay   time.Duration
	outcome slowOutcome
	during  func() // if set, run halfway through the delay
}

type slowOutcome int

const (
	slowAdmit slowOutcome = iota
	slowDeny
	slowFail
)

func (o slowOutcome) String() string { return [...]string{"admit", "deny", "fail"}[o] }

func (s *slowStore) Take(_ context.Context, _ string, req store.Request) (store.Result, error) {
	time.Sleep(s.delay / 2)
	if s.during != nil {
		s.during()
	}
	time.Sleep(s.delay - s.delay/2)
	switch s.outcome {
	case slowFail:
		return store.Result{}, errors.New("slow store: failing on purpose")
	case slowDeny:
		return store.Result{RetryAfter: time.Nanosecond}, nil
	default:
		return store.Result{Allowed: true, Remaining: req.Burst}, nil
	}
}

// Peek answers at once, as the Take would after its delay.
func (s *slowStore) Peek(_ context.Context, _ string, req store.Request) (store.Result, error) {
	switch s.outcome {
	case slowFail:
		return store.Result{}, errors.New("slow store: failing on purpose")
	case slowDeny:
		return store.Result{RetryAfter: time.Nanosecond}, nil
	default:
		return store.Result{Allowed: true, Remaining: req.Burst}, nil
	}
}

func (s *slowStore) Reset(context.Context, string) error                        { return nil }
func (s *slowStore) Refund(context.Context, string, store.Request, int64) error { return nil }
