package limiter

import "github.com/floodgate-go/floodgate/internal/breaker"

// satAdd is a + b for b >= 0, saturating at MaxInt64 (a deadline or a
// cooldown of MaxInt64 must mean "never", not a time in the past).
func satAdd(a, b int64) int64 { return breaker.SatAdd(a, b) }
