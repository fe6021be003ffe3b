//go:build race

package nethttpmw

// raceEnabled reports whether the race detector is on: under it, sync.Pool
// drops a quarter of what is put in it, so the value blocks (see newValues)
// are replaced more often.
const raceEnabled = true
