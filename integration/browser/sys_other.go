//go:build !linux

package browser

import (
	"os"
	"os/exec"
)

// setProcAttrs does nothing where process groups and parent-death signals
// are not available through the same fields; the browser is still killed
// when its context ends.
func setProcAttrs(cmd *exec.Cmd) {}

// killGroup kills only the process itself here.
func killGroup(pid int) error {
	p, err := os.FindProcess(pid)
	if err != nil {
		return nil
	}
	_ = p.Kill()
	return nil
}

// waitExited returns at once; Wait alone waits here.
func waitExited(pid int) error { return nil }

// killProcess kills pid, ignoring a process that is gone.
func killProcess(pid int) { _ = killGroup(pid) }

// runningProcesses cannot look into other processes without /proc: it
// reports none.
func runningProcesses(pgid int, mark string) []int { return nil }
