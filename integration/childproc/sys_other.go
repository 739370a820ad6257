//go:build !linux

package childproc

import (
	"errors"
	"syscall"
)

// sysProcAttr gives the child a process group of its own if asked. There
// is no parent-death signal here; the owner's Stop or Kill ends the child.
func sysProcAttr(ownGroup bool) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: ownGroup}
}

// stopped cannot tell here whether a process is stopped.
func stopped(pid int) (bool, error) { return false, errors.ErrUnsupported }
