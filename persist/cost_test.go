package persist

import (
	"fmt"
	"testing"
)

// countedStore is a store whose transactions a test can count.
type countedStore interface {
	setStats(c *txnStats)
}

func (s *EtcdStore) setStats(c *txnStats) { s.stats = c }
func (s *ZKStore) setStats(c *txnStats)   { s.stats = c }

// commitCost is what commits wrote: transactions, ops (fence and manifest
// checks included), bytes of keys and values.
type commitCost struct {
	txns, ops, bytes int64
}

func (c commitCost) String() string {
	return fmt.Sprintf("%d txns, %d ops, %d bytes", c.txns, c.ops, c.bytes)
}

// costTask is a task record of about 200 bytes, as BenchmarkEtcd writes.
func costTask(i, version int) []byte { return benchTask(i, version) }

// testCommitCost checks that a commit's cost grows with its batch, not
// with the state: the same change of 10 tasks, committed again and again
// by a new leader, to a store of 100 tasks and to one of 20,000, writes
// within the same bounds (counted ops and bytes, not time). The 10 tasks
// are spread over the whole store, so that each falls in another shard
// of ZooKeeper's packed layout.
func testCommitCost(t *testing.T, h *harness) {
	const changed, commits = 10, 24
	measure := func(t *testing.T, n int) (worst, total commitCost, batchBytes int, slack int) {
		fw := uniqueFW(t.Name())
		s := h.newStore(t, testPrefix, fw)
		f := h.grant(t, testPrefix, fw)
		for i := 0; i < n; i += h.bulk {
			b := Batch{PutTasks: map[string][]byte{}}
			for j := i; j < min(n, i+h.bulk); j++ {
				b.PutTasks[fmt.Sprintf("task-%06d", j)] = costTask(j, 0)
			}
			mustCommit(t, s, f, b)
		}
		r := h.newStore(t, testPrefix, fw) // the next leader's replica
		mustLoad(t, r)
		if zs, ok := r.(*ZKStore); ok {
			// The shard rewrites compaction may add to one commit: one shard,
			// or two when it splits.
			slack = 2 * zs.pk.shardMax
		}
		st := &txnStats{}
		r.(countedStore).setStats(st)
		for c := 1; c <= commits; c++ {
			b := Batch{PutTasks: map[string][]byte{}}
			batchBytes = 0
			for j := 0; j < changed; j++ {
				i := j * (n / changed)
				k := fmt.Sprintf("task-%06d", i)
				b.PutTasks[k] = costTask(i, c)
				batchBytes += len(k) + len(b.PutTasks[k])
			}
			before := commitCost{st.txns.Load(), st.ops.Load(), st.bytes.Load()}
			mustCommit(t, r, f, b)
			d := commitCost{st.txns.Load() - before.txns, st.ops.Load() - before.ops, st.bytes.Load() - before.bytes}
			worst = commitCost{max(worst.txns, d.txns), max(worst.ops, d.ops), max(worst.bytes, d.bytes)}
		}
		total = commitCost{st.txns.Load(), st.ops.Load(), st.bytes.Load()}
		checkModelSize(t, h.newStore(t, testPrefix, fw), n)
		return worst, total, batchBytes, slack
	}
	// One bound for both sizes, from the batch alone: per commit, a few
	// transactions; ops for the fence and manifest, each task, and
	// ZooKeeper's log chunk, shard writes and log deletes; bytes for each
	// task's key and value about four times over (etcd: once; ZooKeeper:
	// the log entry, then the shard rewrites it pays for), the keys'
	// prefixes, the manifest, plus ZooKeeper's one-shard slack.
	var small commitCost
	for _, n := range []int{100, 20_000} {
		worst, total, batchBytes, slack := measure(t, n)
		maxOps := int64(4*changed + 16)
		maxBytes := int64(4*batchBytes + slack + 8<<10)
		t.Logf("%d tasks, %d commits of %d tasks (%d bytes): worst commit %v; all %v (bounds: %d ops, %d bytes a commit)",
			n, commits, changed, batchBytes, worst, total, maxOps, maxBytes)
		if worst.txns > 4 || worst.ops > maxOps || worst.bytes > maxBytes {
			t.Errorf("%d tasks: a commit of %d tasks wrote %v; want at most 4 transactions, %d ops, %d bytes",
				n, changed, worst, maxOps, maxBytes)
		}
		// And over all commits, the large store costs no more than the small
		// one (whose one shard, all of the state, is rewritten by nearly
		// every commit: a store's first shard costs up to one shard a
		// commit, the next ones their share of twice the log).
		if n == 100 {
			small = total
		} else if total.ops > 2*small.ops+int64(commits) || total.bytes > 2*small.bytes+int64(slack) {
			t.Errorf("commits to %d tasks cost %v, to 100 tasks %v: the cost grows with the state", n, total, small)
		}
	}
}

// checkModelSize checks that a store holds n tasks.
func checkModelSize(t *testing.T, s Store, n int) {
	t.Helper()
	if got := len(mustLoad(t, s).Tasks); got != n {
		t.Fatalf("the store holds %d tasks, want %d", got, n)
	}
}
