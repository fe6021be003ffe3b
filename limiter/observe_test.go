package limiter

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"testing/synctest"
)

func TestObserverSeesEveryDecision(t *testing.T) {
	var events []Event
	l := mustNew(t, PerMinute(1), WithMaxKeys(1), WithObserver(func(_ context.Context, e Event) { events = append(events, e) }))
	l.Allow(ctx, "a")
	l.Allow(ctx, "a")
	l.AllowN(ctx, "b", 1) // overflow
	l.AllowN(ctx, "a", 5) // invalid: no decision, no event
	if len(events) != 3 {
		t.Fatalf("%d events, want 3: %+v", len(events), events)
	}
	if e := events[1]; e.Key != "a" || e.Decision.Allowed || e.Overflow {
		t.Errorf("second event %+v, want a's denial", e)
	}
	if e := events[2]; e.Key != "b" || !e.Overflow || !e.Decision.Allowed {
		t.Errorf("third event %+v, want b admitted by the overflow bucket", e)
	}
}

func TestLogDenials(t *testing.T) {
	synctest.Test(t, testLogDenials)
}

func testLogDenials(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		},
	}))
	l := mustNew(t, PerMinute(1), WithObserver(LogDenials(logger, slog.LevelInfo)))
	l.Allow(ctx, "198.51.100.1")
	l.Allow(ctx, "198.51.100.1")
	l.Allow(ctx, strings.Repeat("x", 1000))
	want := "level=INFO msg=\"rate limited\" event.key=198.51.100.1 event.allowed=false event.cost=1 event.remaining=0 event.retry_after=1m0s\n"
	if got := buf.String(); got != want {
		t.Fatalf("logged:\n%s\nwant:\n%s", got, want)
	}
	// A long hostile key is truncated in the log line.
	l.Allow(ctx, strings.Repeat("x", 1000))
	if line := buf.String()[len(want):]; len(line) > 300 || !strings.Contains(line, "xxx…") {
		t.Fatalf("long key logged as %q, want it truncated", line)
	}
}

func TestObserverUnsetCostsNoAllocation(t *testing.T) {
	l := mustNew(t, PerSecond(1_000_000), WithObserver(func(context.Context, Event) {}))
	l.Allow(ctx, "k")
	if n := testing.AllocsPerRun(1000, func() { l.Allow(ctx, "k") }); n != 0 {
		t.Errorf("Allow with an observer: %v allocs, want 0", n)
	}
}

func TestStatsVar(t *testing.T) {
	l := mustNew(t, PerMinute(1))
	l.Allow(ctx, "a")
	l.Allow(ctx, "a")
	var got Stats
	if err := json.Unmarshal([]byte(l.StatsVar().String()), &got); err != nil {
		t.Fatal(err)
	}
	if got.Allowed != 1 || got.Denied != 1 || got.Keys != 1 {
		t.Fatalf("StatsVar reported %+v", got)
	}
}
