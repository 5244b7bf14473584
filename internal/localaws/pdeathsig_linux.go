package localaws

import (
	"os/exec"
	"syscall"
)

// setParentDeathSignal kills the kumo child when the parent dies without
// closing it (a test binary killed by a timeout), so no emulator outlives it.
func setParentDeathSignal(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
