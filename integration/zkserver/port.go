package zkserver

import (
	"fmt"
	"math/rand/v2"
	"net"
	"slices"
	"strconv"
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

// ensemblePortMin is the lowest port ensemblePorts picks.
const ensemblePortMin = 10000

// ensemblePorts returns n distinct TCP ports on 127.0.0.1 that were free
// when it was called, for the members of an ensemble. A member holds its
// ports only while it runs, and its peer port only while it leads, so a
// port from the kernel's ephemeral range could meanwhile be handed to any
// socket bound to port 0 or connecting out, and keep the member from
// restarting or, silently, from leading. Where that range is known
// (Linux), the ports are therefore picked at random below it, from
// ensemblePortMin up, where the kernel assigns none; elsewhere, or when
// too few are free there, they come from the ephemeral range.
func ensemblePorts(n int) ([]int, error) {
	low, err := ephemeralPortMin()
	if err != nil || low-ensemblePortMin < 64*n {
		return freePorts(n)
	}
	ports := make([]int, 0, n)
	for tries := 0; len(ports) < n && tries < 16*n; tries++ {
		port := ensemblePortMin + rand.IntN(low-ensemblePortMin)
		if slices.Contains(ports, port) {
			continue
		}
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			continue // taken
		}
		defer l.Close()
		ports = append(ports, port)
	}
	if len(ports) < n {
		return freePorts(n)
	}
	return ports, nil
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
