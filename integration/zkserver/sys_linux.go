package zkserver

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// listens reports whether process pid has a TCP socket listening on port,
// by matching the listening sockets in /proc/<pid>/net/tcp{,6} against the
// process's file descriptors.
func listens(pid, port int) (bool, error) {
	suffix := fmt.Sprintf(":%04X", port)
	sockets := map[string]bool{}
	for _, name := range []string{"tcp", "tcp6"} {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/%s", pid, name))
		if err != nil {
			if name == "tcp6" && errors.Is(err, fs.ErrNotExist) {
				continue // no IPv6 here
			}
			return false, err
		}
		for _, line := range strings.Split(string(b), "\n") {
			// sl local_address rem_address st ... uid timeout inode
			f := strings.Fields(line)
			if len(f) >= 10 && f[3] == "0A" && strings.HasSuffix(f[1], suffix) {
				sockets["socket:["+f[9]+"]"] = true
			}
		}
	}
	if len(sockets) == 0 {
		return false, nil
	}
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	fds, err := os.ReadDir(dir)
	if err != nil {
		return false, err
	}
	for _, fd := range fds {
		if target, err := os.Readlink(filepath.Join(dir, fd.Name())); err == nil && sockets[target] {
			return true, nil
		}
	}
	return false, nil
}

// ephemeralPortMin returns the lowest port of the range the kernel picks
// ports from for sockets bound to port 0 and for outgoing connections.
func ephemeralPortMin() (int, error) {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 0, err
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return 0, fmt.Errorf("ip_local_port_range %q: want two ports", b)
	}
	return strconv.Atoi(f[0])
}
