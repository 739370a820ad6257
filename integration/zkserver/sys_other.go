//go:build !linux

package zkserver

import "errors"

// listens cannot tell here which process listens on a port.
func listens(pid, port int) (bool, error) { return false, errors.ErrUnsupported }

// ephemeralPortMin cannot tell here which ports the kernel assigns.
func ephemeralPortMin() (int, error) { return 0, errors.ErrUnsupported }
