// Package faultproxy is a loopback TCP proxy that tests put between a
// client and a server to inject real network faults: a partition (Cut:
// every connection closed, new ones refused), a hang (Stall: new
// connections accepted but nothing forwarded), lost answers (Mute: what
// the server sends is dropped), and latency (Delay). The server keeps
// running throughout; only this path to it fails.
package faultproxy

import (
	"fmt"
	"net"
	"sync"
	"time"
)

// Proxy forwards connections made to Addr to a target.
type Proxy struct {
	ln     net.Listener
	target string
	wg     sync.WaitGroup

	mu      sync.Mutex
	mode    mode
	mute    bool
	delay   time.Duration
	conns   []net.Conn
	stalled int
	closed  bool
}

type mode int

const (
	forward mode = iota
	refuse
	stall
)

// Start listens on a free loopback port and forwards to target (host:port).
func Start(target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("faultproxy: listen: %w", err)
	}
	p := &Proxy{ln: ln, target: target}
	p.wg.Add(1)
	go p.serve()
	return p, nil
}

// Addr is the proxy's host:port: give it to the client instead of the
// server's.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

func (p *Proxy) serve() {
	defer p.wg.Done()
	for {
		down, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		switch {
		case p.closed || p.mode == refuse:
			down.Close()
		case p.mode == stall:
			p.conns = append(p.conns, down)
			p.stalled++
		default:
			up, err := net.DialTimeout("tcp", p.target, time.Second)
			if err != nil {
				down.Close()
				break
			}
			p.conns = append(p.conns, down, up)
			p.wg.Add(2)
			go p.pipe(up, down, false) // client to server
			go p.pipe(down, up, true)  // server to client
		}
		p.mu.Unlock()
	}
}

// pipe copies src to dst; toClient is the server's direction.
func (p *Proxy) pipe(dst, src net.Conn, toClient bool) {
	defer p.wg.Done()
	defer src.Close()
	defer dst.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		p.mu.Lock()
		delay := p.delay
		p.mu.Unlock()
		if delay > 0 {
			time.Sleep(delay)
		}
		// A chunk still on its way (delayed) when the path stalls is held
		// too, as it would be on a real path.
		p.mu.Lock()
		drop, flowing := toClient && p.mute, p.mode == forward
		p.mu.Unlock()
		if n > 0 && !drop && flowing {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// Cut closes every connection and refuses new ones: a partition.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.mode = refuse
	p.closeConnsLocked()
}

// Stall keeps new connections open without forwarding anything, and stops
// forwarding on the open ones: a server (or a path) that hangs.
func (p *Proxy) Stall() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.mode = stall
}

// Heal forwards again: new connections go through; connections that were
// stalled stay dead (the client must reconnect, as after a real hang).
func (p *Proxy) Heal() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.mode == stall {
		// What they sent meanwhile is gone: close them rather than let
		// them forward a stream with a hole in it.
		p.closeConnsLocked()
	}
	p.mode = forward
}

// Mute drops (true) or passes (false) what the server sends: requests
// arrive, answers are lost.
func (p *Proxy) Mute(on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.mute = on
}

// Delay adds d of latency to every chunk in both directions (0: none).
func (p *Proxy) Delay(d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.delay = d
}

// Stalled is how many connections were accepted while stalled.
func (p *Proxy) Stalled() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stalled
}

func (p *Proxy) closeConnsLocked() {
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// Close stops the proxy, closes every connection and waits for its
// goroutines.
func (p *Proxy) Close() error {
	p.mu.Lock()
	p.closed = true
	p.closeConnsLocked()
	p.mu.Unlock()
	err := p.ln.Close()
	p.wg.Wait()
	return err
}
