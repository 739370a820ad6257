//go:build !linux

package zkserver

import "errors"

// listens cannot tell here which process listens on a port.
func listens(pid, port int) (bool, error) { return false, errors.ErrUnsupported }
