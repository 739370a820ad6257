package testserver

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"
)

// freePorts returns n distinct TCP ports on 127.0.0.1 that were free when
// it was called. All n listeners are held open together, so the ports are
// distinct; another process may still grab one before the caller binds it,
// which is why the callers retry startup on an address clash.
func freePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	listeners := make([]net.Listener, 0, n)
	defer func() {
		for _, l := range listeners {
			_ = l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("reserve free loopback port: %w", err)
		}
		listeners = append(listeners, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// isAddrInUse reports whether err, or a server log excerpt, says that a
// listen address was already taken.
func isAddrInUse(err error, logText string) bool {
	if err != nil && errors.Is(err, syscall.EADDRINUSE) {
		return true
	}
	if err != nil && strings.Contains(err.Error(), "address already in use") {
		return true
	}
	return strings.Contains(strings.ToLower(logText), "address already in use")
}
