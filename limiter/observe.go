package limiter

import (
	"context"
	"expvar"
	"log/slog"
)

// An Event describes one decision, for an observer set with WithObserver.
type Event struct {
	Key      string // as the caller passed it
	Cost     int
	Decision Decision
	// Overflow reports that the shared overflow bucket decided, because the
	// table of tracked keys was full.
	Overflow bool
	// Err is the error the call returned, if any (from the remote tier).
	Err error
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
	if e.Overflow {
		attrs = append(attrs, slog.Bool("overflow", true))
	}
	if e.Err != nil {
		attrs = append(attrs, slog.Any("error", e.Err))
	}
	return slog.GroupValue(attrs...)
}

// WithObserver calls observe after every decision AllowN makes (not for
// calls rejected as invalid), on the caller's goroutine: keep it fast, or
// hand the Event to a channel. Without an observer (the default) the check
// costs one nil comparison.
func WithObserver(observe func(context.Context, Event)) Option {
	return func(c *config) error {
		c.observe = observe
		return nil
	}
}

// LogDenials returns an observer for WithObserver that logs each denial and
// each error to logger at level, and ignores admitted requests.
func LogDenials(logger *slog.Logger, level slog.Level) func(context.Context, Event) {
	return func(ctx context.Context, e Event) {
		switch {
		case e.Err != nil:
			logger.LogAttrs(ctx, max(level, slog.LevelWarn), "rate limiter error", slog.Any("event", e))
		case !e.Decision.Allowed:
			logger.LogAttrs(ctx, level, "rate limited", slog.Any("event", e))
		}
	}
}

// StatsVar returns an expvar.Var that reports l.Stats() as JSON. Publish it
// to serve the counters on /debug/vars:
//
//	expvar.Publish("ratelimit", l.StatsVar())
func (l *Limiter) StatsVar() expvar.Var {
	return expvar.Func(func() any { return l.Stats() })
}
