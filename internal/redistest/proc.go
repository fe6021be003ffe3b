package redistest

import (
	"os/exec"
	"runtime"
)

// startTied starts cmd so that the operating system kills it when the test
// process dies, however it dies: a failed test that calls os.Exit, a panic,
// `go test -timeout` firing, or a SIGKILL. The returned channel receives
// cmd.Wait's result when the process ends.
//
// On Linux the child is started with a parent-death signal (SIGKILL, see
// tie_linux.go). That signal is sent when the *thread* that forked the
// child exits, not the process: a Go program's threads are shared by all
// goroutines, and one ends whenever a goroutine locked to it returns
// without unlocking. Locking the thread only around Start would not help —
// after UnlockOSThread the thread goes back to the pool, where any such
// goroutine can take it and end it, killing the server under a running
// test. So the child is started on a goroutine of its own that stays
// locked to its thread until the child has exited: no other goroutine ever
// runs there, the thread lives exactly as long as the child needs it, and
// the goroutine is gone once the server is (goleak stays quiet). The
// choice costs one parked OS thread per running server.
//
// Elsewhere tie does nothing and a server can outlive a test process that
// is killed before its cleanups run.
func startTied(cmd *exec.Cmd) (<-chan error, error) {
	tie(cmd)
	started, done := make(chan error, 1), make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		done <- cmd.Wait()
	}()
	if err := <-started; err != nil {
		return nil, err
	}
	return done, nil
}
