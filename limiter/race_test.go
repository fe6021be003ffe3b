//go:build race

package limiter

// raceEnabled reports whether the race detector is on: it multiplies the
// cost of each operation, so the million-key tests scale down under it.
const raceEnabled = true
