package testserver_test

import (
	"context"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/goleak"

	"github.com/regent-sched/regent/integration/testserver"
)

// TestMain fails the package if any test leaves a goroutine behind: the
// embedded etcd server, the etcd and zk clients and the process reapers
// must all be shut down by the harness's cleanups.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// opTimeout bounds single requests that are expected to succeed.
const opTimeout = 10 * time.Second

func TestEtcdEmbedded(t *testing.T) {
	e := testserver.StartEtcd(t)
	cli := e.Client(t)

	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	if _, err := cli.Put(ctx, "/testserver/key", "value"); err != nil {
		t.Fatalf("put: %v", err)
	}
	resp, err := cli.Get(ctx, "/testserver/key")
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	if len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "value" {
		t.Fatalf("get returned %v, want one key with value %q", resp.Kvs, "value")
	}
}

func TestEtcdCluster3(t *testing.T) {
	c := testserver.StartEtcdCluster(t, 3)
	cli := c.Client(t)

	putEventually(t, cli, "/testserver/before", "1")

	// Losing one member of three keeps a quorum.
	first := c.WaitLeader(opTimeout)
	first.Kill()
	if first.Running() {
		t.Fatalf("member %s still running after Kill", first.Name())
	}
	putEventually(t, cli, "/testserver/one-down", "2")

	// Losing a second member loses the quorum: writes must not succeed.
	var second *testserver.EtcdMember
	for _, m := range c.Members() {
		if m != first {
			second = m
			break
		}
	}
	second.Kill()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	_, err := cli.Put(ctx, "/testserver/no-quorum", "3")
	cancel()
	if err == nil {
		t.Fatal("put succeeded with two of three members killed; want failure without quorum")
	}
	t.Logf("put without quorum failed as expected: %v", err)

	// Bringing one back restores the quorum, and the data is still there.
	second.Restart()
	c.WaitHealthy(30 * time.Second)
	putEventually(t, cli, "/testserver/after", "4")
	for key, want := range map[string]string{"/testserver/before": "1", "/testserver/one-down": "2", "/testserver/after": "4"} {
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		resp, err := cli.Get(ctx, key)
		cancel()
		if err != nil {
			t.Fatalf("get %s: %v", key, err)
		}
		if len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != want {
			t.Fatalf("get %s returned %v, want value %q", key, resp.Kvs, want)
		}
	}
}

// putEventually writes key=value, retrying for a while: right after a
// member dies the client may still pick its endpoint or wait for a new
// leader.
func putEventually(t *testing.T, cli *clientv3.Client, key, value string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := cli.Put(ctx, key, value)
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("put %s: %v", key, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestZooKeeper(t *testing.T) {
	z := testserver.StartZooKeeper(t)
	conn := z.Conn(t)

	if _, err := conn.Create("/regent", []byte("persistent"), 0, zk.WorldACL(zk.PermAll)); err != nil {
		t.Fatalf("create /regent: %v", err)
	}
	if _, err := conn.Create("/regent/ephemeral", []byte("e"), zk.FlagEphemeral, zk.WorldACL(zk.PermAll)); err != nil {
		t.Fatalf("create /regent/ephemeral: %v", err)
	}
	data, _, err := conn.Get("/regent")
	if err != nil {
		t.Fatalf("get /regent: %v", err)
	}
	if string(data) != "persistent" {
		t.Fatalf("get /regent = %q, want %q", data, "persistent")
	}
	session := conn.SessionID()

	z.Restart()

	// The persistent node survives because the data directory is kept.
	// The session is persisted too, so the client reconnects to it and its
	// ephemeral node is still there.
	other := z.Conn(t)
	data, _, err = other.Get("/regent")
	if err != nil {
		t.Fatalf("get /regent after restart: %v", err)
	}
	if string(data) != "persistent" {
		t.Fatalf("get /regent after restart = %q, want %q", data, "persistent")
	}
	if ok, _, err := other.Exists("/regent/ephemeral"); err != nil || !ok {
		t.Fatalf("ephemeral node after restart: exists=%v err=%v, want it kept with its session", ok, err)
	}
	waitFor(t, 15*time.Second, "first client to resume its session", func() bool {
		_, _, err := conn.Get("/regent")
		return err == nil && conn.State() == zk.StateHasSession
	})
	if got := conn.SessionID(); got != session {
		t.Fatalf("session after restart = %#x, want the original %#x", got, session)
	}

	// Closing the owning session removes the ephemeral node.
	conn.Close()
	waitFor(t, 10*time.Second, "ephemeral node to vanish", func() bool {
		ok, _, err := other.Exists("/regent/ephemeral")
		return err == nil && !ok
	})
}

// waitFor polls cond until it holds, failing the test after timeout.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
