package bench

import (
	"flag"
	"os"
	"runtime/pprof"
	"testing"
)

var timedProfile = flag.String("timed.cpuprofile", "", "write a CPU profile of the timed part of each benchmark run to this file; "+
	"each run overwrites it, so it ends with the last run of the last benchmark: run one benchmark at a time (cmd/report does)")

// timed runs the timed part of a benchmark, under a CPU profile when
// -timed.cpuprofile is set. Unlike -test.cpuprofile, the profile leaves out
// the setup (building keys, tracking 100,000 of them, draining a burst) and
// the checks.
func timed(b *testing.B, f func()) {
	if *timedProfile == "" {
		f()
		return
	}
	file, err := os.Create(*timedProfile)
	if err != nil {
		b.Fatal(err)
	}
	if err := pprof.StartCPUProfile(file); err != nil {
		file.Close()
		b.Fatal(err)
	}
	f()
	pprof.StopCPUProfile()
	if err := file.Close(); err != nil {
		b.Fatal(err)
	}
}
