//go:build linux

package redistest

import (
	"os/exec"
	"syscall"
)

// tie asks the kernel to SIGKILL cmd's process when the thread that starts
// it exits (prctl PR_SET_PDEATHSIG); startTied keeps that thread alive for
// as long as the process runs. The fork path in package syscall also
// checks, after setting the signal, whether the parent has already died.
func tie(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
}
