package redistest

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

// helperEnv tells a re-executed test binary to run TestHelperDies as the
// process that dies with a server running.
const helperEnv = "FLOODGATE_REDISTEST_HELPER"

// TestHelperDies is not a test of its own: TestServerDiesWithTestProcess
// re-executes the test binary to run it. It starts a server, prints
// "server <pid> <addr>", and dies as $FLOODGATE_REDISTEST_HELPER says,
// without running its cleanups.
func TestHelperDies(t *testing.T) {
	mode := os.Getenv(helperEnv)
	if mode == "" {
		t.Skip("run by TestServerDiesWithTestProcess")
	}
	s := Start(t)
	fmt.Printf("server %d %s\n", s.cmd.Process.Pid, s.Addr())
	switch mode {
	case "exit":
		os.Exit(3)
	case "timeout":
		time.Sleep(time.Hour) // until -test.timeout panics
	}
	t.Fatalf("unknown %s=%q", helperEnv, mode)
}

// TestServerDiesWithTestProcess runs a test process that starts a server
// and dies without its cleanups — by os.Exit, and by `go test -timeout`
// firing, the case that used to leave redis-server running under PID 1 —
// and checks that the server's port stops answering.
func TestServerDiesWithTestProcess(t *testing.T) {
	Need(t, "redis-server")
	if runtime.GOOS != "linux" {
		t.Skip("servers are tied to the test process on Linux only")
	}
	for _, mode := range []string{"exit", "timeout"} {
		t.Run(mode, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestHelperDies$", "-test.timeout=3s")
			cmd.Env = append(os.Environ(), helperEnv+"="+mode)
			var stderr strings.Builder
			cmd.Stderr = &stderr
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			var pid int
			var addr string
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				if n, _ := fmt.Sscanf(sc.Text(), "server %d %s", &pid, &addr); n == 2 {
					break
				}
			}
			go func() {
				for sc.Scan() {
				}
			}() // drain, so the helper never blocks writing
			err = cmd.Wait()
			if addr == "" {
				t.Fatalf("helper (%v) printed no server line; stderr:\n%s", err, stderr.String())
			}
			if err == nil {
				t.Fatalf("helper exited cleanly, want it to die; stderr:\n%s", stderr.String())
			}
			deadline := time.Now().Add(5 * time.Second)
			for Ping(addr) == nil {
				if time.Now().After(deadline) {
					syscall.Kill(pid, syscall.SIGKILL) // don't leak it ourselves
					t.Fatalf("redis-server (pid %d) on %s still answers 5s after its test process died (%v)", pid, addr, err)
				}
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
}

// TestServerOutlivesStartingThread starts a server from a goroutine that
// ends locked to its OS thread, so that the thread exits. The parent-death
// signal follows the forking thread, not the caller's; the server must go
// on answering.
func TestServerOutlivesStartingThread(t *testing.T) {
	Need(t, "redis-server")
	s := newServer(t)
	t.Cleanup(s.Kill)
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread exits with this goroutine
		errc <- s.start()
	}()
	if err := <-errc; err != nil {
		t.Fatalf("start: %v", err)
	}
	for deadline := time.Now().Add(500 * time.Millisecond); time.Now().Before(deadline); {
		if err := Ping(s.Addr()); err != nil {
			t.Fatalf("Ping(%s) after the starting thread exited: %v, want PONG", s.Addr(), err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
