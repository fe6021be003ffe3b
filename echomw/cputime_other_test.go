//go:build !linux

package echomw

import "time"

var start = time.Now()

// threadCPU falls back to the monotonic clock where the thread CPU clock is
// not available.
func threadCPU() time.Duration { return time.Since(start) }

func lockThread() func() { return func() {} }
