package zkserver

import (
	"fmt"
	"net"
)

// freePort returns a TCP port on 127.0.0.1 that was free when it was
// called. Another process may take it before the server binds it, which is
// why Start retries on an address clash.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("reserve free loopback port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// freePorts returns n distinct TCP ports on 127.0.0.1 that were free when
// it was called: it holds all n listeners open together. Another process
// may still take one before a server binds it, which is why StartEnsemble
// retries on an address clash.
func freePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("reserve free loopback port: %w", err)
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}
