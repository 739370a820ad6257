package testserver_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/regent-sched/regent/integration/testserver"
)

func TestZooKeeperEnsemble(t *testing.T) {
	e := testserver.StartZooKeeperEnsemble(t, 3)
	members := e.Members()
	if len(members) != 3 || len(e.Servers()) != 3 || e.ConnectString() != strings.Join(e.Servers(), ",") {
		t.Fatalf("%d members, Servers() = %v, ConnectString() = %q; want three", len(members), e.Servers(), e.ConnectString())
	}
	for i, z := range members {
		if z.MyID() != i+1 || z.Addr() != e.Servers()[i] {
			t.Fatalf("member %d: MyID() = %d, Addr() = %s; want %d, %s", i, z.MyID(), z.Addr(), i+1, e.Servers()[i])
		}
	}

	// A write through the ensemble is read through each member.
	conn := e.Conn(t)
	if _, err := conn.Create("/drill", []byte("quorum"), 0, zk.WorldACL(zk.PermAll)); err != nil {
		t.Fatalf("create /drill: %v", err)
	}
	for _, z := range members {
		syncGet(t, z.Conn(t), "/drill", "quorum")
	}

	// Killing the leader leaves a quorum, which elects another.
	first := e.WaitLeader(10 * time.Second)
	first.Kill()
	second := e.WaitLeader(20 * time.Second)
	if second == first {
		t.Fatalf("member %d still leads after Kill", first.MyID())
	}
	waitFor(t, 20*time.Second, "a write with one member down", func() bool {
		_, err := conn.Create("/drill/one-down", []byte("2"), 0, zk.WorldACL(zk.PermAll))
		return err == nil || errors.Is(err, zk.ErrNodeExists)
	})

	// Killing the new leader too loses the quorum.
	second.Kill()
	var survivor *testserver.ZooKeeper
	for _, z := range members {
		if z != first && z != second {
			survivor = z
		}
	}
	waitFor(t, 15*time.Second, "the survivor to stop serving", func() bool { return survivor.Mode() == "" })

	// Both come back together, and the data is still there.
	e.Restart(first, second)
	e.WaitLeader(10 * time.Second)
	for _, z := range []*testserver.ZooKeeper{first, second} {
		c := z.Conn(t)
		syncGet(t, c, "/drill", "quorum")
		syncGet(t, c, "/drill/one-down", "2")
	}
}

// syncGet brings the member behind conn up to date and checks path.
func syncGet(t *testing.T, conn *zk.Conn, path, want string) {
	t.Helper()
	if _, err := conn.Sync(path); err != nil {
		t.Fatalf("sync %s through %s: %v", path, conn.Server(), err)
	}
	if data, _, err := conn.Get(path); err != nil || string(data) != want {
		t.Fatalf("get %s through %s = %q, %v; want %q", path, conn.Server(), data, err, want)
	}
}
