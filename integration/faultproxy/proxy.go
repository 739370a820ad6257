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

// pipe copies src to dst; toClient is the server's direction. Each chunk
// is delivered its delay after it was read (latency, not a throughput
// limit: chunks read together arrive together), unless the path is
// stalled or muted by then.
func (p *Proxy) pipe(dst, src net.Conn, toClient bool) {
	defer p.wg.Done()
	defer src.Close()
	defer dst.Close()
	type chunk struct {
		b   []byte
		due time.Time
	}
	q := make(chan chunk, 1024)
	wrote := make(chan struct{})
	go func() {
		defer close(wrote)
		for c := range q {
			if d := time.Until(c.due); d > 0 {
				time.Sleep(d)
			}
			p.mu.Lock()
			drop, flowing := toClient && p.mute, p.mode == forward
			p.mu.Unlock()
			if drop || !flowing {
				continue
			}
			if _, err := dst.Write(c.b); err != nil {
				src.Close() // unblock the reader
				for range q {
				}
				return
			}
		}
	}()
	defer func() { <-wrote }()
	defer close(q)
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.mu.Lock()
			delay := p.delay
			p.mu.Unlock()
			q <- chunk{b: append([]byte(nil), buf[:n]...), due: time.Now().Add(delay)}
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
