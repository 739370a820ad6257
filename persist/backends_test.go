package persist

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/regent-sched/regent/integration/testserver"
)

// TestEtcd runs the contract against a one-member etcd running as a child
// process: unlike the embedded server, it does not run under the race
// detector with the tests, which keeps the 100k-task and crash tests fast.
func TestEtcd(t *testing.T) {
	t.Parallel()
	c := testserver.StartEtcdCluster(t, 1, testserver.WithEtcdLogLevel("warn"))
	runContract(t, etcdHarness(c.Client(t), c.Endpoints()))
}

// TestZooKeeper runs the contract against the real ZooKeeper server.
func TestZooKeeper(t *testing.T) {
	t.Parallel()
	z := startZooKeeper(t)
	authed, anonymous, conn := z.Conn(t), z.Conn(t), z.Conn(t) // helpers run on this goroutine only
	h := zkHarness(conn, z.Servers())
	runContract(t, h)
	t.Run("DigestACL", func(t *testing.T) { testZKDigest(t, authed, anonymous) })
	t.Run("Migration", func(t *testing.T) { testZKMigration(t, h, conn) })
	t.Run("RenameCrash", func(t *testing.T) { testZKRenameCrash(t, h, conn) })
	t.Run("BlobListing", func(t *testing.T) { testZKBlobListing(t, h, conn) })
	t.Run("FenceVersion", func(t *testing.T) { testZKFenceVersion(t, h, conn) })
	t.Run("Compaction", func(t *testing.T) { testZKCompaction(t, h, conn) })
	t.Run("ModifiedSnapshot", func(t *testing.T) { testZKModifiedSnapshot(t, h) })
}

// startZooKeeper starts the test ZooKeeper. Its JVM has a 256 MB heap, and
// ZooKeeper keeps its last 500 transactions in memory besides the data
// tree (zookeeper.commitLogCount, which it refuses to lower): the store's
// 128 KiB multis (DefaultZKMaxMultiBytes) keep that within the heap.
func startZooKeeper(t testing.TB) *testserver.ZooKeeper {
	return testserver.StartZooKeeper(t)
}

// TestMemory runs the contract against the memory store.
func TestMemory(t *testing.T) {
	runContract(t, memoryHarness())
}

// TestMemoryFailures checks the memory store's failure injection, which
// core's tests use.
func TestMemoryFailures(t *testing.T) {
	m, err := NewMemory("fw")
	if err != nil {
		t.Fatal(err)
	}
	f := Fence{Key: "leader", Revision: 1}
	m.SetLeader(f)
	ctx := context.Background()
	boom := errors.New("boom")

	m.FailNextCommit(boom)
	if _, err := m.Commit(ctx, f, Batch{PutTasks: map[string][]byte{"a": []byte("1")}}); !errors.Is(err, boom) {
		t.Fatalf("FailNextCommit: %v", err)
	}
	if snap := mustLoad(t, m); snap.Generation != 0 || len(snap.Tasks) != 0 {
		t.Fatalf("a failed commit changed the store: %+v", snap)
	}
	m.FailNextCommitAfterApply(boom)
	if _, err := m.Commit(ctx, f, Batch{PutTasks: map[string][]byte{"a": []byte("1")}}); !errors.Is(err, boom) {
		t.Fatalf("FailNextCommitAfterApply: %v", err)
	}
	if snap := mustLoad(t, m); snap.Generation != 1 || string(snap.Tasks["a"]) != "1" {
		t.Fatalf("FailNextCommitAfterApply did not apply: %+v", snap)
	}
	if gen := mustCommit(t, m, f, Batch{}); gen != 2 {
		t.Fatalf("the failure injection outlived one commit: generation %d", gen)
	}
	// Loaded state is a copy.
	snap := mustLoad(t, m)
	snap.Tasks["a"][0] = 'X'
	if string(mustLoad(t, m).Tasks["a"]) != "1" {
		t.Fatal("Load returned the store's own memory")
	}
	m.SetLeader(Fence{Key: "leader", Revision: 2})
	if _, err := m.Commit(ctx, f, Batch{}); !errors.Is(err, ErrFenced) {
		t.Fatalf("old fence after SetLeader: %v", err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Load(ctx); err == nil {
		t.Fatal("Load after Close succeeded")
	}
}

// TestOptions checks option validation.
func TestOptions(t *testing.T) {
	for _, fw := range []string{"", "a/b", ".", "..", "tab\there", string([]byte{0xff})} {
		if _, err := NewMemory(fw); err == nil {
			t.Errorf("framework name %q accepted", fw)
		}
		if _, err := NewEtcd(nil, EtcdOptions{Framework: fw}); err == nil {
			t.Errorf("NewEtcd accepted framework %q", fw)
		}
	}
	for _, p := range []string{"regent", "/", "/a/", "//a", "/a//b", "/a/./b", "/a/../b"} {
		if _, err := validateCommon(p, "fw", nil, 0); err == nil {
			t.Errorf("prefix %q accepted", p)
		}
	}
	if c, err := validateCommon("", "fw", nil, 0); err != nil || c.prefix != DefaultPrefix || c.maxRecord != DefaultMaxRecordBytes {
		t.Errorf("defaults: %+v, %v", c, err)
	}
	if _, err := validateCommon("/a/b", "my-framework.v2", nil, 0); err != nil {
		t.Errorf("valid options refused: %v", err)
	}
	// A record too large for the decoder's part limit at the smallest
	// transactions is refused up front, not written and then unloadable.
	_, err := txnLimits(zkMaxOps, minTxnBytes, maxRecordCap, false)
	if err == nil || !strings.Contains(err.Error(), "MaxRecordBytes") || !strings.Contains(err.Error(), "parts") {
		t.Errorf("1 GiB records in the smallest transactions: %v", err)
	}
	if _, err := txnLimits(zkMaxOps, DefaultZKMaxMultiBytes, maxRecordCap, false); err != nil {
		t.Errorf("1 GiB records in default ZooKeeper multis: %v", err)
	}
}
