package testserver

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/regent-sched/regent/internal/zkdial"
)

func TestIsAddrInUse(t *testing.T) {
	wrapped := fmt.Errorf("listen: %w", &os.SyscallError{Syscall: "bind", Err: syscall.EADDRINUSE})
	for _, tc := range []struct {
		err  error
		log  string
		want bool
	}{
		{wrapped, "", true},
		{errors.New("listen tcp 127.0.0.1:1: bind: address already in use"), "", true},
		{nil, "java.net.BindException: Address already in use\n", true},
		{errors.New("permission denied"), "all good", false},
		{nil, "", false},
	} {
		if got := isAddrInUse(tc.err, tc.log); got != tc.want {
			t.Errorf("isAddrInUse(%v, %q) = %v, want %v", tc.err, tc.log, got, tc.want)
		}
	}
}

func TestTailFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "log")
	if err := os.WriteFile(p, []byte("first\nsecond\nthird\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got, want := tailFile(p, 100), "first\nsecond\nthird\n"; got != want {
		t.Errorf("tailFile(whole) = %q, want %q", got, want)
	}
	if got, want := tailFile(p, 8), "...\nthird\n"; got != want {
		t.Errorf("tailFile(8) = %q, want %q", got, want)
	}
}

func TestFreePortsDistinct(t *testing.T) {
	ports, err := freePorts(6)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	for _, p := range ports {
		if p <= 0 || seen[p] {
			t.Fatalf("freePorts returned %v: want distinct positive ports", ports)
		}
		seen[p] = true
	}
}

// TestHandshakeDialerBoundsHandshake checks that a client whose connect
// request is never answered (as by a server that accepts while it is
// still starting) gives up and dials again within the handshake bound,
// not after go-zookeeper's ten receive timeouts (over a minute here).
func TestHandshakeDialerBoundsHandshake(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	accepted := make(chan net.Conn, 16)
	go func() {
		defer close(accepted)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted <- c // held open, never answered
		}
	}()
	defer func() {
		l.Close()
		for c := range accepted {
			c.Close()
		}
	}()

	conn, events, err := zk.Connect([]string{l.Addr().String()}, 10*time.Second,
		zk.WithDialer(zkdial.Handshake(300*time.Millisecond)), zk.WithLogger(nopLogger{}), zk.WithLogInfo(false))
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		conn.Close()
		for range events {
		}
	}()

	timeout := time.After(5 * time.Second)
	for n := 0; n < 2; n++ {
		select {
		case c := <-accepted:
			defer c.Close()
		case <-timeout:
			t.Fatalf("%d connection(s) after 5s, want the client to give up its unanswered handshake and dial again", n)
		}
	}
}

type nopLogger struct{}

func (nopLogger) Printf(string, ...any) {}
