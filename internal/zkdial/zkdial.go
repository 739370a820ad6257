// Package zkdial bounds the wait for a ZooKeeper server's answer to a
// client's connect request: go-zookeeper allows ten receive timeouts there
// (over a minute with a 10 s session), and a server that is starting, or
// an ensemble member losing or regaining its quorum, can take the
// connection and never answer. The Java client gives up after the session
// timeout divided by the number of servers; callers choose the bound.
package zkdial

import (
	"net"
	"sync/atomic"
	"time"

	"github.com/go-zookeeper/zk"
)

// Handshake dials ZooKeeper connections whose first read deadline, the one
// on the server's answer to the connect request, is at most limit away.
// Pass it to zk.Connect with zk.WithDialer.
func Handshake(limit time.Duration) zk.Dialer {
	return func(network, address string, timeout time.Duration) (net.Conn, error) {
		c, err := net.DialTimeout(network, address, timeout)
		if err != nil {
			return nil, err
		}
		return &conn{Conn: c, limit: limit}, nil
	}
}

// conn caps the first read deadline set on it, which go-zookeeper sets for
// the handshake, and passes later deadlines through.
type conn struct {
	net.Conn
	limit  time.Duration
	shaken atomic.Bool // the handshake's deadline has been set
}

// SetReadDeadline implements net.Conn.
func (c *conn) SetReadDeadline(t time.Time) error {
	if !t.IsZero() && !c.shaken.Swap(true) {
		if bound := time.Now().Add(c.limit); t.After(bound) {
			t = bound
		}
	}
	return c.Conn.SetReadDeadline(t)
}
