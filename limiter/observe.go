package limiter

import (
	"context"
	"log/slog"
)

// An Event describes one decision, for an observer set with WithObserver.
type Event struct {
	Key      string // as the caller passed it
	Cost     int
	Decision Decision
}

// maxLoggedKey bounds how much of a key LogValue writes to a log line: keys
// can be client-controlled.
const maxLoggedKey = 64

// LogValue makes an Event a compact slog group.
func (e Event) LogValue() slog.Value {
	key := e.Key
	if len(key) > maxLoggedKey {
		key = key[:maxLoggedKey] + "…"
	}
	attrs := []slog.Attr{
		slog.String("key", key),
		slog.Bool("allowed", e.Decision.Allowed),
		slog.Int("cost", e.Cost),
		slog.Int("remaining", e.Decision.Remaining),
	}
	if !e.Decision.Allowed {
		attrs = append(attrs, slog.Duration("retry_after", e.Decision.RetryAfter))
	}
	if e.Decision.Fallback {
		attrs = append(attrs, slog.Bool("fallback", true))
	}
	return slog.GroupValue(attrs...)
}

// WithObserver calls observe once for every decision the Limiter makes —
// by AllowN, by WaitN when it returns (admitted, or denied because the wait
// would pass the deadline or ctx ended first; with a Store, each attempt),
// and by AllowAll for each of
// its limits on this Limiter, with the request's outcome (a limit whose
// tokens AllowAll gave back reports a denial) — on the caller's goroutine:
// keep it fast, or hand the Event to a channel. Calls that return an error
// made no decision and are not observed, nor is Peek, which decides
// nothing. Without an observer (the default)
// the check costs one nil comparison.
func WithObserver(observe func(context.Context, Event)) Option {
	return func(c *config) error {
		c.observe = observe
		return nil
	}
}

// observed reports d for key to the observer, if there is one.
func (l *Limiter) observed(ctx context.Context, key string, n int, d Decision) {
	if l.observe != nil {
		l.observe(ctx, Event{Key: key, Cost: n, Decision: d})
	}
}
