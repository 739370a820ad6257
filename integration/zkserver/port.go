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
