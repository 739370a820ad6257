package persist

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
)

// testZKCompaction commits random batches to a store with small multis
// (so shards split and merge often) and checks, against a model, every
// few commits what a new replica loads, and the bounds the layout
// promises: shards within their size, a log Load can read quickly.
func testZKCompaction(t *testing.T, h *harness, conn *zk.Conn) {
	for _, tc := range []struct {
		name       string
		ratio      int
		maxEntries int
		commits    int
		maxOps     int
		merges     bool // shards must merge as the state shrinks
	}{
		{"default pace", compactRatio, maxLogEntries, 300, 120, false},
		{"fast pace", 64, maxLogEntries, 300, 120, true},
		{"no credit, short log", 0, 12, 160, 3, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			seed := uint64(time.Now().UnixNano())
			t.Logf("seed %d", seed)
			rng := rand.New(rand.NewPCG(seed, 1))
			fw := uniqueFW(t.Name())
			s := newSmallZK(t, conn, fw)
			s.pk.ratio, s.pk.maxEntries = tc.ratio, tc.maxEntries
			f := h.grant(t, testPrefix, fw)
			m := newModel()
			maxLeaves := 0
			for i := 1; i <= tc.commits; i++ {
				b := randomBatch(rng, m, i, tc.maxOps, i > tc.commits/2)
				mustCommit(t, s, f, b)
				m.apply(b)
				v := s.pk.v
				if len(v.log) > 2*tc.maxEntries+1 {
					t.Fatalf("commit %d: %d log entries, more than twice %d", i, len(v.log), tc.maxEntries)
				}
				maxLeaves = max(maxLeaves, v.leaves())
				if i%40 == 0 || i == tc.commits {
					r := newSmallZK(t, conn, fw)
					checkModel(t, r, m)
					checkShards(t, r.pk)
				}
			}
			// Commits that change nothing still trim the log.
			for i := 0; i < min(3*tc.maxEntries, 100); i++ {
				mustCommit(t, s, f, Batch{})
				m.apply(Batch{})
			}
			if n := len(s.pk.v.log); n > tc.maxEntries+1 {
				t.Errorf("%d log entries after empty commits", n)
			}
			checkModel(t, newSmallZK(t, conn, fw), m)
			leaves := s.pk.v.leaves()
			t.Logf("%d tasks left; %d shards at most, %d at the end; %d log entries", len(m.tasks), maxLeaves, leaves, len(s.pk.v.log))
			if maxLeaves < 3 || (tc.merges && leaves*2 > maxLeaves) {
				t.Errorf("shards did not split and merge: %d at most, %d at the end", maxLeaves, leaves)
			}
		})
	}
}

// testZKModifiedSnapshot: a caller that writes into the values Load
// returned (which share memory with what the store keeps for compaction)
// cannot make the store write them: the commit is durable, its compaction
// is refused, and the next commit reads the store again.
func testZKModifiedSnapshot(t *testing.T, h *harness) {
	fw := uniqueFW(t.Name())
	s := h.newStore(t, testPrefix, fw)
	f := h.grant(t, testPrefix, fw)
	m := newModel()
	b := bigBatch("t", 300, 100)
	mustCommit(t, s, f, b)
	m.apply(b)
	for round := 0; round < 2; round++ {
		r := h.newStore(t, testPrefix, fw)
		snap := mustLoad(t, r)
		for _, v := range snap.Tasks {
			v[0] ^= 0xff
		}
		b = Batch{PutTasks: map[string][]byte{"t-00001": []byte("changed")}}
		mustCommit(t, r, f, b)
		m.apply(b)
		if r.(*ZKStore).pk.v != nil {
			t.Fatal("the commit compacted values the caller had modified")
		}
		checkModel(t, h.newStore(t, testPrefix, fw), m)
	}
}

// newSmallZK returns a store whose multis carry 32 KiB, the least allowed.
func newSmallZK(t *testing.T, conn *zk.Conn, fw string) *ZKStore {
	t.Helper()
	s, err := NewZooKeeper(conn, ZKOptions{Prefix: testPrefix, Framework: fw, MaxMultiBytes: minTxnBytes})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// randomBatch puts, replaces and deletes random tasks, and now and then a
// large entry; shrinking, it mostly deletes.
func randomBatch(rng *rand.Rand, m *model, i, maxOps int, shrink bool) Batch {
	b := Batch{PutTasks: map[string][]byte{}, PutEntries: map[string][]byte{}}
	for n := 1 + rng.IntN(maxOps); n > 0; n-- {
		k := fmt.Sprintf("task-%04d", rng.IntN(3000))
		if _, ok := m.tasks[k]; ok && (shrink || rng.IntN(4) == 0) {
			b.DeleteTasks = append(b.DeleteTasks, k)
			continue
		}
		if !shrink {
			b.PutTasks[k] = value(fmt.Sprint(k, i), 50+rng.IntN(250))
		}
	}
	switch rng.IntN(10) {
	case 0:
		b.PutEntries["big"] = value(fmt.Sprint("big", i), 20<<10+rng.IntN(40<<10))
	case 1:
		b.DeleteEntries = []string{"big"}
	case 2:
		b.FrameworkID = strp(fmt.Sprint("id-", i))
	}
	return b
}

// checkShards checks the trie of a loaded store: every shard within the
// shard size (or one record), and its records where their hash says.
func checkShards(t *testing.T, p *packer) {
	t.Helper()
	p.v.root.walkLeaves(func(l *snode) {
		sv, err := decodeShard(l.raw)
		if err != nil {
			t.Fatalf("shard %s: %v", l.name(), err)
		}
		if len(l.raw) > p.shardMax && len(sv.recs) > 1 {
			t.Errorf("shard %s has %d bytes in %d records, more than %d", l.name(), len(l.raw), len(sv.recs), p.shardMax)
		}
		if l.parent != nil && l.parent.kids[hashBit(l.prefix<<(64-l.depth), l.depth-1)] != l {
			t.Errorf("shard %s is not where its prefix says", l.name())
		}
	})
	if n := len(p.v.log); n > p.maxEntries+maxForcedSteps {
		t.Errorf("%d log entries after a load", n)
	}
}
