package limiter

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// recorder is an observer that keeps every Event.
type recorder struct {
	mu     sync.Mutex
	events []Event
}

func (r *recorder) observe(_ context.Context, e Event) {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
}

func (r *recorder) take() []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.events
	r.events = nil
	return out
}

func TestObserverSeesEveryDecision(t *testing.T) {
	var rec recorder
	l := mustNew(t, PerMinute(1), WithMaxKeys(1), WithObserver(rec.observe))
	l.Allow(ctx, "a")
	l.Allow(ctx, "a")
	l.AllowN(ctx, "b", 1) // overflow
	l.AllowN(ctx, "a", 5) // invalid: no decision, no event
	events := rec.take()
	if len(events) != 3 {
		t.Fatalf("%d events, want 3: %+v", len(events), events)
	}
	if e := events[1]; e.Key != "a" || e.Decision.Allowed {
		t.Errorf("second event %+v, want a's denial", e)
	}
	if e := events[2]; e.Key != "b" || !e.Decision.Allowed {
		t.Errorf("third event %+v, want b admitted (by the overflow bucket)", e)
	}
}

// AllowAll reports each limit it decided to that limit's Limiter's
// observer, with the request's outcome: a limit whose tokens were given
// back reports a denial. Inspected limits report nothing.
func TestObserverSeesAllowAll(t *testing.T) {
	var ipRec, planRec, lastRec recorder
	perIP := mustNew(t, PerMinute(10), WithObserver(ipRec.observe))
	plan := mustNew(t, PerMinute(1), WithObserver(planRec.observe))
	last := mustNew(t, PerMinute(1), WithObserver(lastRec.observe))
	all := func() CompositeDecision {
		d, err := AllowAll(ctx, Limit{Name: "ip", Limiter: perIP, Key: "ip"}, Limit{Name: "plan", Limiter: plan, Key: "u", Cost: 1}, Limit{Name: "last", Limiter: last, Key: "z"})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	if d := all(); !d.Allowed {
		t.Fatalf("first request denied: %+v", d)
	}
	for _, r := range []*recorder{&ipRec, &planRec, &lastRec} {
		if ev := r.take(); len(ev) != 1 || !ev[0].Decision.Allowed {
			t.Fatalf("first request: events %+v, want one admission per limit", ev)
		}
	}
	d := all() // plan denies: ip is refunded, last only inspected
	ip, pl, ls := ipRec.take(), planRec.take(), lastRec.take()
	if d.Allowed || len(ip) != 1 || ip[0].Decision.Allowed || ip[0].Decision.RetryAfter != d.RetryAfter ||
		len(pl) != 1 || pl[0].Decision.Allowed || len(ls) != 0 {
		t.Fatalf("second request %+v: events ip %+v, plan %+v, last %+v; want ip and plan denied, last none", d, ip, pl, ls)
	}
	if s := perIP.Stats(); s.Allowed != 1 || s.Denied != 1 {
		t.Fatalf("per-IP Stats %+v: want the refunded admission counted as denied (1 allowed, 1 denied)", s)
	}
}

// WaitN reports its decision when it returns: admitted, or denied when the
// wait would pass the deadline or ctx ended first (its tokens given back).
func TestObserverSeesWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var rec recorder
		l := mustNew(t, PerSecond(1), WithObserver(rec.observe))
		if err := l.Wait(ctx, "k"); err != nil { // at once
			t.Fatal(err)
		}
		if err := l.Wait(ctx, "k"); err != nil { // after a second
			t.Fatal(err)
		}
		c, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		defer cancel()
		if err := l.Wait(c, "k"); !errors.Is(err, ErrWouldExceedDeadline) {
			t.Fatalf("Wait with a short deadline = %v", err)
		}
		c2, cancel2 := context.WithCancel(ctx)
		time.AfterFunc(100*time.Millisecond, cancel2)
		if err := l.Wait(c2, "k"); !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled Wait = %v", err)
		}
		ev := rec.take()
		want := []bool{true, true, false, false}
		if len(ev) != len(want) {
			t.Fatalf("events %+v, want %d", ev, len(want))
		}
		for i, w := range want {
			if ev[i].Decision.Allowed != w {
				t.Fatalf("event %d %+v, want Allowed %v", i, ev[i], w)
			}
		}
		if s := l.Stats(); s.Allowed != 2 || s.Denied != 2 {
			// the deadline's denial, and the cancelled Wait's undone admission
			t.Fatalf("Stats %+v: want 2 allowed and 2 denied", s)
		}
	})
}

// Counters never go backwards between snapshots, even while buckets are
// retired and AllowAll refunds, under -race.
func TestStatsNeverDecrease(t *testing.T) {
	l := mustNew(t, PerSecond(1000), WithSweepInterval(time.Millisecond), WithMaxKeys(64))
	drained := mustNew(t, PerHour(1))
	drained.Allow(ctx, "x")
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for g := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				key := string(rune('a' + (g*7+i)%100))
				if i%3 == 0 {
					AllowAll(ctx, Limit{Name: "l", Limiter: l, Key: key}, Limit{Name: "d", Limiter: drained, Key: "x"})
				} else {
					l.Allow(ctx, key)
				}
			}
		})
	}
	var prev Stats
	for range 300 {
		s := l.Stats()
		if s.Allowed < prev.Allowed || s.Denied < prev.Denied || s.Retired < prev.Retired || s.Overflowed < prev.Overflowed || s.Sweeps < prev.Sweeps {
			t.Fatalf("a counter went backwards: %+v after %+v", s, prev)
		}
		prev = s
	}
	close(stop)
	wg.Wait()
}

// Logging denials is an observer of a few lines (see ExampleWithObserver);
// a hostile long key is truncated by Event.LogValue.
func TestEventLogValue(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var buf bytes.Buffer
		logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{
			ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
				if a.Key == slog.TimeKey {
					return slog.Attr{}
				}
				return a
			},
		}))
		l := mustNew(t, PerMinute(1), WithObserver(func(ctx context.Context, e Event) {
			if !e.Decision.Allowed {
				logger.LogAttrs(ctx, slog.LevelInfo, "rate limited", slog.Any("event", e))
			}
		}))
		l.Allow(ctx, "198.51.100.1")
		l.Allow(ctx, "198.51.100.1")
		want := "level=INFO msg=\"rate limited\" event.key=198.51.100.1 event.allowed=false event.cost=1 event.remaining=0 event.retry_after=1m0s\n"
		if got := buf.String(); got != want {
			t.Fatalf("logged:\n%s\nwant:\n%s", got, want)
		}
		l.Allow(ctx, strings.Repeat("x", 1000))
		l.Allow(ctx, strings.Repeat("x", 1000))
		if line := buf.String()[len(want):]; len(line) > 300 || !strings.Contains(line, "xxx…") {
			t.Fatalf("long key logged as %q, want it truncated", line)
		}
	})
}

func TestObserverUnsetCostsNoAllocation(t *testing.T) {
	l := mustNew(t, PerSecond(1_000_000), WithObserver(func(context.Context, Event) {}))
	l.Allow(ctx, "k")
	if n := testing.AllocsPerRun(1000, func() { l.Allow(ctx, "k") }); n != 0 {
		t.Errorf("Allow with an observer: %v allocs, want 0", n)
	}
}
