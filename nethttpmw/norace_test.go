//go:build !race

package nethttpmw

const raceEnabled = false
