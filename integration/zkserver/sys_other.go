//go:build !linux

package zkserver

import (
	"errors"
	"os/exec"
)

// setChildAttrs is a no-op where no parent-death signal exists; Close
// still ends the server.
func setChildAttrs(cmd *exec.Cmd) {}

// listens cannot tell here which process listens on a port.
func listens(pid, port int) (bool, error) { return false, errors.ErrUnsupported }

// stopped cannot tell here whether a process is stopped.
func stopped(pid int) (bool, error) { return false, errors.ErrUnsupported }
