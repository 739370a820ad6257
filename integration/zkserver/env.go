package zkserver

import (
	"fmt"
	"net"
	"os"
	"strings"
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

// childEnv returns the environment for the server: this process's
// environment without variables whose name starts with any of drop.
func childEnv(drop ...string) []string {
	var env []string
next:
	for _, kv := range os.Environ() {
		for _, prefix := range drop {
			if strings.HasPrefix(kv, prefix) {
				continue next
			}
		}
		env = append(env, kv)
	}
	return env
}
