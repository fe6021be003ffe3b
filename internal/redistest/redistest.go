// Package redistest starts real redis-server processes for tests and
// benchmarks: standalone servers and three-master clusters on free
// loopback ports, without persistence, stopped when the test ends.
//
// When redis-server (Debian package redis-server) or, for clusters,
// redis-cli (redis-tools) is not on PATH, the test is skipped with a
// message — unless the environment sets FLOODGATE_REQUIRE_REDIS=1, as CI
// does, and then the test fails, so missing binaries cannot silently skip
// the integration tests.
package redistest

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// RequireEnv is the environment variable that turns a skip into a failure.
const RequireEnv = "FLOODGATE_REQUIRE_REDIS"

// Need skips tb (or fails it under FLOODGATE_REQUIRE_REDIS=1) unless every
// named binary is on PATH.
func Need(tb testing.TB, binaries ...string) {
	tb.Helper()
	for _, b := range binaries {
		if _, err := exec.LookPath(b); err != nil {
			msg := fmt.Sprintf("redistest: %s not found on PATH (apt-get install redis-server redis-tools)", b)
			if os.Getenv(RequireEnv) == "1" {
				tb.Fatalf("%s, and %s=1 requires it", msg, RequireEnv)
			}
			tb.Skip(msg + "; skipping the real-Redis test")
		}
	}
}

// A Server is one redis-server process on 127.0.0.1.
type Server struct {
	Port int
	args []string
	dir  string
	cmd  *exec.Cmd
	done chan struct{}
}

// Addr is the server's host:port.
func (s *Server) Addr() string { return "127.0.0.1:" + strconv.Itoa(s.Port) }

// Start starts a standalone redis-server on a free loopback port with no
// persistence, waits until it answers PING, and stops it when tb ends.
// On Linux the server is also killed when the test process dies without
// running its cleanups (a -timeout panic, os.Exit, a signal); see startTied.
// Extra arguments are passed to redis-server.
func Start(tb testing.TB, extra ...string) *Server {
	tb.Helper()
	Need(tb, "redis-server")
	var err error
	for range 5 { // a port found free can be taken before the server binds it
		s := newServer(tb, extra...)
		if err = s.start(); err == nil {
			tb.Cleanup(s.Kill)
			return s
		}
	}
	tb.Fatalf("redistest: starting redis-server: %v", err)
	return nil
}

// newServer chooses a free port and a data directory for a server that
// is not started yet.
func newServer(tb testing.TB, extra ...string) *Server {
	tb.Helper()
	s := &Server{Port: freePort(tb), dir: tb.TempDir()}
	s.args = append([]string{"--port", strconv.Itoa(s.Port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", s.dir, "--protected-mode", "no"}, extra...)
	return s
}

func (s *Server) start() error {
	cmd := exec.Command("redis-server", s.args...)
	cmd.Dir = s.dir
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	exited, err := startTied(cmd)
	if err != nil {
		return err
	}
	s.cmd, s.done = cmd, make(chan struct{})
	go func() { <-exited; close(s.done) }()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-s.done:
			return fmt.Errorf("redis-server exited: %s", out.String())
		default:
		}
		if Ping(s.Addr()) == nil {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.Kill()
	return fmt.Errorf("redis-server on %s did not answer within 10s: %s", s.Addr(), out.String())
}

// Kill stops the server at once (SIGKILL), as a crash would. It is a no-op
// on a stopped server.
func (s *Server) Kill() {
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Kill()
	<-s.done
	s.cmd = nil
}

// Restart starts the server again on the same port after Kill. Its data
// (and script cache) is gone, as after a real restart without persistence.
func (s *Server) Restart(tb testing.TB) {
	tb.Helper()
	s.Kill()
	var err error
	for range 50 { // the port can linger briefly after the kill
		if err = s.start(); err == nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	tb.Fatalf("redistest: restarting redis-server on %s: %v", s.Addr(), err)
}

// Ping sends PING to addr and reports an error unless it answers PONG
// within a second.
func Ping(addr string) error { return command(addr, "PING", "+PONG") }

func command(addr, cmd, want string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte(cmd + "\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, want) {
		return fmt.Errorf("%s: got %q, want %q", cmd, strings.TrimSpace(line), want)
	}
	return nil
}

// freePort returns a loopback port that is free, and whose cluster bus
// port (port+10000) is free too.
func freePort(tb testing.TB) int {
	tb.Helper()
	for range 100 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			tb.Fatalf("redistest: %v", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if port+10000 > 65535 {
			continue
		}
		if bus, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port+10000)); err == nil {
			bus.Close()
			return port
		}
	}
	tb.Fatalf("redistest: no free port pair found")
	return 0
}
