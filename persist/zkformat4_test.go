package persist

import (
	"errors"
	"maps"
	"strings"
	"testing"

	"github.com/go-zookeeper/zk"
)

// testZKBlobListing commits records in parts under the longest keys there
// are, whose format 3 names (escaped three times over) took about 3 KB
// each, to a store with the smallest multis (the most parts per byte),
// and checks every child list below blobs/ against the bound doc.go
// states: blobs/ lists at most 256 buckets, and a bucket at most
// ceil(parts/256) names of at most maxHashedPartName bytes per record.
func testZKBlobListing(t *testing.T, h *harness, conn *zk.Conn) {
	fw := uniqueFW(t.Name())
	s := newSmallZK(t, conn, fw)
	f := h.grant(t, testPrefix, fw)
	long := func(c string) string { return strings.Repeat("/", maxKeyBytes-1) + c }
	m := newModel()
	for _, b := range []Batch{
		{
			PutEntries: map[string][]byte{long("a"): value("a", 3<<20), long("b"): value("b", 3<<20), long("c"): value("c", 2<<20)},
			PutTasks:   map[string][]byte{strings.Repeat("%", maxKeyBytes): value("task", 1<<20), "small": []byte("s")},
		},
		// A new generation of one record, another deleted.
		{PutEntries: map[string][]byte{long("a"): value("a2", 3<<20)}, DeleteEntries: []string{long("c")}},
	} {
		mustCommit(t, s, f, b)
		m.apply(b)
	}
	checkModel(t, newSmallZK(t, conn, fw), m)
	checkClean(t, h, fw)

	// What the listings hold, as ZooKeeper sends them: each name with a
	// 4-byte length.
	listing := func(rel string) ([]string, int) {
		names, _, err := conn.Children(testPrefix + "/" + fw + "/" + rel)
		if err != nil {
			t.Fatalf("list %s: %v", rel, err)
		}
		bytes := 0
		for _, n := range names {
			bytes += 4 + len(n)
		}
		return names, bytes
	}
	partSize := s.pk.lim.partSize
	perBucket, parts, oldBytes := 0, 0, 0
	for _, recs := range []map[string][]byte{m.tasks, m.entries} {
		for k, v := range recs {
			if len(v)+inlineOverhead(k) <= partSize {
				continue
			}
			n := (len(v) + partSize - 1) / partSize
			parts += n
			perBucket += (n + blobBuckets - 1) / blobBuckets
			// The same parts under format 3 names: blobs/<t|e>.<escaped key>.<gen>.<n>.
			oldBytes += n * (4 + len(layout{}.part(recKey{kindTask, k}, 2, 100)) - len(blobsDir) - 1)
		}
	}
	buckets, topBytes := listing(blobsDir)
	if len(buckets) > blobBuckets || topBytes > blobBuckets*(4+2) {
		t.Errorf("blobs/ lists %d names in %d bytes; want at most %d in %d", len(buckets), topBytes, blobBuckets, blobBuckets*6)
	}
	maxBucket, listed := 0, 0
	for _, b := range buckets {
		if !validBucket(b) {
			t.Fatalf("blobs/%s is not a bucket", b)
		}
		names, bytes := listing(blobsDir + "/" + b)
		listed += len(names)
		maxBucket = max(maxBucket, bytes)
		if len(names) > perBucket || bytes > perBucket*(4+maxHashedPartName) {
			t.Errorf("blobs/%s lists %d names in %d bytes; want at most %d in %d",
				b, len(names), bytes, perBucket, perBucket*(4+maxHashedPartName))
		}
	}
	if listed != parts {
		t.Errorf("the buckets list %d parts, the records have %d", listed, parts)
	}
	t.Logf("%d parts of %d bytes under keys of %d bytes: blobs/ lists %d buckets in %d bytes, the largest bucket lists %d bytes; "+
		"format 3 would have listed %d bytes in blobs/ (ZooKeeper's limit: %d)",
		parts, partSize, maxKeyBytes, len(buckets), topBytes, maxBucket, oldBytes, DefaultZKMaxRequestBytes)
	if oldBytes <= DefaultZKMaxRequestBytes {
		t.Errorf("the test's parts took %d bytes under format 3 names: not beyond ZooKeeper's limit, as meant", oldBytes)
	}
}

// testZKRenameCrash kills the first format 4 writer of a format 3 store
// while it copies parts to their new names, before its commit point: the
// current code loads the format 3 state, the format 3 code refuses the
// buckets it does not know (ErrForeign) and writes nothing, and the next
// leader's commit migrates the store.
func testZKRenameCrash(t *testing.T, h *harness, conn *zk.Conn) {
	fw := uniqueFW("rename-crash")
	f1 := h.grant(t, testPrefix, fw)
	m := newModel()
	mustCommit(t, newZKFormat(t, conn, testPrefix, fw, formatWriter), f1, crashBatch("pre"))
	m.apply(crashBatch("pre"))
	lines := crashChild(t, crashConfig{
		Backend: h.crash.backend, Addrs: h.crash.addrs, Prefix: testPrefix, Framework: fw,
		Fence: f1, Batch: "main", PausePhase: phaseRename, PauseN: 1,
	}, 0)
	t.Logf("helper said: %s", strings.Join(lines, ", "))
	if countParts(t, h, fw, true) == 0 {
		t.Fatal("the crashed writer renamed no part")
	}
	r := h.newStore(t, testPrefix, fw)
	if snap := mustLoad(t, r); snap.Format != formatWriter || m.diff(snap) != "" {
		t.Fatalf("after the crash Load saw format %d, want %d: %s", snap.Format, formatWriter, m.diff(snap))
	}
	before := h.raw.dump(t, testPrefix, fw)
	_, err := newZKFormat(t, conn, testPrefix, fw, formatWriter).Load(testCtx(t))
	if !errors.Is(err, ErrForeign) || !strings.Contains(err.Error(), testPrefix+"/"+fw+"/"+blobsDir+"/") {
		t.Fatalf("format 3 code loading a store whose migration crashed: %v, want ErrForeign naming a bucket", err)
	}
	if !maps.Equal(before, h.raw.dump(t, testPrefix, fw)) {
		t.Fatal("the format 3 code changed the store")
	}
	h.revoke(t, f1)
	f2 := h.grant(t, testPrefix, fw)
	mustCommit(t, r, f2, crashBatch("follow"))
	m.apply(crashBatch("follow"))
	if snap := mustLoad(t, h.newStore(t, testPrefix, fw)); snap.Format != formatHashedParts || m.diff(snap) != "" {
		t.Fatalf("migrated store loaded as format %d: %s", snap.Format, m.diff(snap))
	}
	checkClean(t, h, fw)
	if n := countParts(t, h, fw, false); n != 0 {
		t.Fatalf("%d parts left under format 3 names", n)
	}
}

// testZKFenceVersion: a commit checks that the fence's znode has data
// version 0, as ha's candidate znodes keep for life. A fence whose znode
// was modified is refused (ErrFenced), whether the store verified it
// before or not, and nothing is written.
func testZKFenceVersion(t *testing.T, h *harness, conn *zk.Conn) {
	fw := uniqueFW(t.Name())
	s := h.newStore(t, testPrefix, fw)
	f := h.grant(t, testPrefix, fw)
	m := newModel()
	b := Batch{PutTasks: map[string][]byte{"a": []byte("1")}, PutEntries: map[string][]byte{"big": value("big", 200<<10)}}
	mustCommit(t, s, f, b) // s verified f's czxid
	m.apply(b)
	if _, err := conn.Set(f.Key, []byte("modified"), -1); err != nil {
		t.Fatalf("set the fence's znode: %v", err)
	}
	before := h.raw.dump(t, testPrefix, fw)
	for name, st := range map[string]Store{"the same store": s, "a new store": h.newStore(t, testPrefix, fw)} {
		for _, b := range []Batch{
			// First (when s still trusts the fence it verified): parts staged
			// before the commit point, whose multi checks the fence.
			{PutEntries: map[string][]byte{"big": value("big2", 300<<10)}},
			{PutTasks: map[string][]byte{"b": []byte("2")}},
		} {
			_, err := st.Commit(testCtx(t), f, b)
			if !errors.Is(err, ErrFenced) || !strings.Contains(err.Error(), f.Key) {
				t.Fatalf("%s: commit under a modified fence: %v, want ErrFenced naming %s", name, err, f.Key)
			}
		}
	}
	if !maps.Equal(before, h.raw.dump(t, testPrefix, fw)) {
		t.Fatal("a commit under a modified fence changed the store")
	}
	checkModel(t, h.newStore(t, testPrefix, fw), m)
	f2 := h.grant(t, testPrefix, fw)
	b = Batch{PutTasks: map[string][]byte{"b": []byte("2")}}
	mustCommit(t, s, f2, b)
	m.apply(b)
	checkModel(t, h.newStore(t, testPrefix, fw), m)
}
