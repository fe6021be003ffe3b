//go:build !linux

package redistest

import "os/exec"

// tie does nothing here: only Linux's parent-death signal is used (FreeBSD
// has one too, untested), so elsewhere a server is stopped by the test's
// cleanup alone and can outlive a test process that dies before it runs.
func tie(*exec.Cmd) {}
