package chaos

import (
	"os/exec"
	"syscall"
)

// setDeathSignal makes the child die with the campaign, so an interrupted
// run leaves no worker or redis-server behind.
func setDeathSignal(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
