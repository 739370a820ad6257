package drill

import (
	"time"

	"github.com/regent-sched/regent/integration/faultproxy"
)

// Path is one replica's way to a service: a fault proxy per server (one
// per etcd member, one for the ZooKeeper server or the Mesos master). A
// fault on a Path hits every server behind it, as a cable pulled on the
// replica's side would. A nil Path (Mesos behind ZooKeeper detection,
// where the replicas dial the masters ZooKeeper names) does nothing.
type Path []*faultproxy.Proxy

// Cut closes every connection and refuses new ones until Heal.
func (p Path) Cut() { p.each((*faultproxy.Proxy).Cut) }

// Stall forwards nothing, on open and new connections, which stay open: a
// path that hangs. After Heal, connections that were stalled stay dead
// (the client must notice and reconnect, as after a real hang).
func (p Path) Stall() { p.each((*faultproxy.Proxy).Stall) }

// Heal forwards again (new connections go through).
func (p Path) Heal() { p.each((*faultproxy.Proxy).Heal) }

// Delay adds d of latency to every write in both directions (0 removes it).
func (p Path) Delay(d time.Duration) {
	p.each(func(x *faultproxy.Proxy) { x.Delay(d) })
}

// Addrs are the proxies' listening addresses, in server order.
func (p Path) Addrs() []string {
	out := make([]string, len(p))
	for i, x := range p {
		out[i] = x.Addr()
	}
	return out
}

func (p Path) each(f func(*faultproxy.Proxy)) {
	for _, x := range p {
		f(x)
	}
}
