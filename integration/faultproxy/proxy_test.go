package faultproxy

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// echo serves lines back until the listener closes, counting them.
func echo(t *testing.T, received *atomic.Int64) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					received.Add(1)
					c.Write([]byte(line))
				}
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	return ln.Addr().String()
}

func roundTrip(c net.Conn, r *bufio.Reader, timeout time.Duration) (string, error) {
	c.SetDeadline(time.Now().Add(timeout))
	if _, err := c.Write([]byte("ping\n")); err != nil {
		return "", err
	}
	return r.ReadString('\n')
}

func dial(t *testing.T, p *Proxy) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, bufio.NewReader(c)
}

func TestFaults(t *testing.T) {
	var received atomic.Int64
	p, err := Start(echo(t, &received))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	c, r := dial(t, p)
	if got, err := roundTrip(c, r, time.Second); err != nil || got != "ping\n" {
		t.Fatalf("forward: %q %v", got, err)
	}

	// Mute: the request arrives, the answer is lost.
	p.Mute(true)
	before := received.Load()
	if _, err := roundTrip(c, r, 200*time.Millisecond); err == nil {
		t.Fatal("muted proxy passed an answer")
	}
	if received.Load() != before+1 {
		t.Fatal("muted proxy did not pass the request")
	}
	p.Mute(false)
	c, r = dial(t, p)

	// Delay: answers come, later.
	p.Delay(100 * time.Millisecond)
	start := time.Now()
	if got, err := roundTrip(c, r, 2*time.Second); err != nil || got != "ping\n" {
		t.Fatalf("delayed: %q %v", got, err)
	}
	if took := time.Since(start); took < 200*time.Millisecond {
		t.Fatalf("round trip through a 100 ms delay each way took %v", took)
	}
	p.Delay(0)

	// Cut: the open connection dies, new ones are refused or closed.
	p.Cut()
	if _, err := roundTrip(c, r, time.Second); err == nil {
		t.Fatal("a cut connection still answers")
	}
	if c2, err := net.Dial("tcp", p.Addr()); err == nil {
		c2.SetReadDeadline(time.Now().Add(time.Second))
		if _, err := c2.Read(make([]byte, 1)); err == nil {
			t.Fatal("a connection made while cut is served")
		}
		c2.Close()
	}

	// Stall: connections are accepted and hang.
	p.Stall()
	c3, r3 := dial(t, p)
	if _, err := roundTrip(c3, r3, 200*time.Millisecond); err == nil {
		t.Fatal("a stalled connection answered")
	}
	if p.Stalled() != 1 {
		t.Fatalf("stalled = %d", p.Stalled())
	}

	// A chunk delayed when the path stalls is held too.
	p.Heal()
	c5, r5 := dial(t, p)
	p.Delay(300 * time.Millisecond)
	if _, err := fmt.Fprint(c5, "ping\n"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond) // read by the proxy, sleeping on its delay
	p.Stall()
	c5.SetReadDeadline(time.Now().Add(time.Second))
	if got, err := r5.ReadString('\n'); err == nil {
		t.Fatalf("a chunk delayed into a stall arrived: %q", got)
	}
	p.Delay(0)

	// Heal: connections that were stalled are closed (they lost bytes);
	// new connections work again.
	p.Heal()
	c3.SetReadDeadline(time.Now().Add(time.Second))
	if _, err := c3.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("a connection stalled before the heal: %v, want closed", err)
	}
	c4, r4 := dial(t, p)
	if got, err := roundTrip(c4, r4, time.Second); err != nil || got != "ping\n" {
		t.Fatalf("healed: %q %v", got, err)
	}
}
