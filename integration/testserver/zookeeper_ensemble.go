package testserver

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/regent-sched/regent/integration/zkserver"

	"github.com/regent-sched/regent/integration/tb"
)

// ZooKeeperEnsemble is a replicated ZooKeeper ensemble whose members run
// as child processes of the test, a [zkserver.Ensemble] that fails the
// test instead of returning errors. Each member is a [ZooKeeper] that can
// be killed, stopped, paused and restarted on its own; the ensemble serves
// requests while a majority of its members is up. Its methods, and those
// of its members, must be called from the goroutine running the test that
// started it.
type ZooKeeperEnsemble struct {
	t       tb.TB
	ens     *zkserver.Ensemble
	members []*ZooKeeper
}

// StartZooKeeperEnsemble starts an n-member ZooKeeper ensemble (normally
// 3) from the Debian package (QuorumPeerMain on the JVM) with
// [zkserver.StartEnsemble]: every member on its own free 127.0.0.1 ports
// with its zoo.cfg, data directory and log under t.TempDir(), all started
// together, and waits until each serves requests as leader or follower.
// The options apply to every member. The processes are killed and reaped
// by t.Cleanup; the tail of each member's log is printed if the test
// failed.
//
// If ZooKeeper or Java is not installed the test fails (it is never
// skipped) with a message naming the install command. ZOOKEEPER_CLASSPATH
// overrides the class path and JAVA the java binary.
func StartZooKeeperEnsemble(t tb.TB, n int, opts ...ZooKeeperOption) *ZooKeeperEnsemble {
	t.Helper()
	ens, err := zkserver.StartEnsemble(context.Background(), n, zooKeeperOptions(t, opts))
	if err != nil {
		t.Fatalf("testserver: %v", err) // the error quotes the failing member's output
	}
	e := &ZooKeeperEnsemble{t: t, ens: ens}
	for _, srv := range ens.Members() {
		e.members = append(e.members, &ZooKeeper{t: t, srv: srv})
	}
	t.Cleanup(e.shutdown)
	return e
}

// shutdown kills every member; it runs at t.Cleanup.
func (e *ZooKeeperEnsemble) shutdown() {
	for _, z := range e.members {
		if err := z.srv.Kill(); err != nil {
			e.t.Errorf("testserver: ZooKeeper ensemble cleanup: member %d: %v", z.MyID(), err)
		}
	}
	if e.t.Failed() {
		var b strings.Builder
		for _, z := range e.members {
			fmt.Fprintf(&b, "---- ZooKeeper member %d (%s) ----\n%s\n", z.MyID(), z.LogPath(), tailFile(z.LogPath(), logTailBytes))
		}
		e.t.Logf("testserver: ZooKeeper ensemble logs (tail):\n%s", b.String())
	}
	if err := e.ens.Close(); err != nil {
		e.t.Errorf("testserver: ZooKeeper ensemble cleanup: %v", err)
	}
}

// Members returns the ensemble's members in the order of their ids: the
// member with id i is Members()[i-1].
func (e *ZooKeeperEnsemble) Members() []*ZooKeeper {
	return append([]*ZooKeeper(nil), e.members...)
}

// Servers returns the client addresses of all members, running or not,
// for zk.Connect.
func (e *ZooKeeperEnsemble) Servers() []string { return e.ens.Servers() }

// ConnectString returns the client addresses of all members separated by
// commas, as ZooKeeper connect strings and zk:// URLs list them.
func (e *ZooKeeperEnsemble) ConnectString() string { return e.ens.ConnectString() }

// Conn returns a client of the whole ensemble with an established session
// (10 s session timeout), as [ZooKeeper.Conn] does for one server: it
// moves to another member when the one it talks to goes away.
func (e *ZooKeeperEnsemble) Conn(t tb.TB) *zk.Conn {
	t.Helper()
	conn, _ := zkConnect(t, e.Servers(), zkDefaultSession, false)
	return conn
}

// ConnEvents is like [ZooKeeperEnsemble.Conn] with the given session
// timeout, and also returns the connection's events, as
// [ZooKeeper.ConnEvents] does.
func (e *ZooKeeperEnsemble) ConnEvents(t tb.TB, sessionTimeout time.Duration) (*zk.Conn, <-chan zk.Event) {
	t.Helper()
	return zkConnect(t, e.Servers(), sessionTimeout, true)
}

// Restart restarts the given members (every member when none is given)
// together, each as [ZooKeeper.Restart] does, and waits until all of them
// serve requests. Members killed until the quorum was lost must come back
// this way: none of them serves again before a majority runs, so
// restarting them one after the other would wait in vain for the first.
func (e *ZooKeeperEnsemble) Restart(members ...*ZooKeeper) {
	e.t.Helper()
	srvs := make([]*zkserver.Server, len(members))
	for i, z := range members {
		if z == nil {
			e.t.Fatalf("testserver: restart ZooKeeper ensemble: member %d of %d is nil", i+1, len(members))
		}
		srvs[i] = z.srv
	}
	if err := e.ens.Restart(context.Background(), srvs...); err != nil {
		e.t.Fatalf("testserver: %v", err) // the error quotes the failing member's output
	}
}

// WaitLeader waits until exactly one member says it leads, which it does
// only with a quorum of followers, and returns that member. Members that
// do not run or do not answer are passed over. It fails the test after
// timeout.
func (e *ZooKeeperEnsemble) WaitLeader(timeout time.Duration) *ZooKeeper {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		var leaders []*ZooKeeper
		modes := make([]string, len(e.members))
		for i, z := range e.members {
			modes[i] = "down"
			if !z.Running() {
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			mode, err := z.srv.Mode(ctx)
			cancel()
			switch {
			case err != nil:
				modes[i] = "no answer"
			case mode == "":
				modes[i] = "not serving"
			default:
				modes[i] = mode
			}
			if mode == "leader" {
				leaders = append(leaders, z)
			}
		}
		if len(leaders) == 1 {
			return leaders[0]
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("testserver: no single ZooKeeper leader after %v; member modes: %s", timeout, strings.Join(modes, ", "))
		}
		time.Sleep(pollInterval)
	}
}
