//go:build !unix

package limiter

import "time"

// cpuTime returns 0: this platform's process CPU time is not read, and the
// benchmarks then report no cpu-ns/op.
func cpuTime() time.Duration { return 0 }
