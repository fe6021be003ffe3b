package echomw

import (
	"runtime"
	"time"

	"golang.org/x/sys/unix"
)

// threadCPU returns the CPU time consumed by the calling OS thread, and
// lockThread pins the goroutine to its thread so that the reading means
// something. Time the thread spends descheduled — other processes on a
// shared machine — is not counted, which is what makes BenchmarkPaired
// usable on a loaded machine. Work done on other threads (the garbage
// collector's background workers) is not counted either; that favours the
// implementations that allocate more, that is Echo's RateLimiter.
func threadCPU() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
		panic(err)
	}
	return time.Duration(ts.Nano())
}

func lockThread() func() {
	runtime.LockOSThread()
	return runtime.UnlockOSThread
}
