package persist

import (
	"errors"
	"maps"
	"strings"
	"testing"

	"github.com/go-zookeeper/zk"
)

// testZKMigration: a store written in format 1 (by the old layout's code
// path) loads, migrates on the first commit of the new code, loads again
// in the current format, and is then refused, untouched, by the old code.
func testZKMigration(t *testing.T, h *harness, conn *zk.Conn) {
	t.Run("RoundTrip", func(t *testing.T) { testMigrationRoundTrip(t, h, conn) })
	t.Run("InterruptedJournal", func(t *testing.T) { testMigrationJournal(t, h, conn) })
	t.Run("Crash", func(t *testing.T) { testMigrationCrash(t, h, conn) })
}

func testMigrationRoundTrip(t *testing.T, h *harness, conn *zk.Conn) {
	fw := uniqueFW(t.Name())
	old := newZKFormat1(t, conn, testPrefix, fw)
	f := h.grant(t, testPrefix, fw)
	m := newModel()
	first := bigBatch("t", 500, 200)
	first.FrameworkID = strp("v1-id")
	first.PutEntries = map[string][]byte{"big": value("big", 300<<10), "cfg": []byte("c"), "gone": value("gone", 100<<10)}
	for _, b := range []Batch{
		first,
		{DeleteTasks: []string{"t-00001", "t-00002"}, PutTasks: map[string][]byte{"t-00003": []byte("updated")}, DeleteEntries: []string{"gone"}},
	} {
		mustCommit(t, old, f, b)
		m.apply(b)
	}
	before := h.raw.dump(t, testPrefix, fw)
	s := h.newStore(t, testPrefix, fw)
	snap := mustLoad(t, s)
	if snap.Format != formatRecords || m.diff(snap) != "" {
		t.Fatalf("format 1 store loaded as format %d: %s", snap.Format, m.diff(snap))
	}
	if !maps.Equal(before, h.raw.dump(t, testPrefix, fw)) {
		t.Fatal("Load changed the format 1 store")
	}
	b := Batch{PutTasks: map[string][]byte{"new": []byte("n")}, DeleteTasks: []string{"t-00004"},
		PutEntries: map[string][]byte{"big": value("big2", 200<<10)}}
	mustCommit(t, s, f, b)
	m.apply(b)
	snap = mustLoad(t, h.newStore(t, testPrefix, fw))
	if snap.Format != h.format || snap.Writer != f || m.diff(snap) != "" {
		t.Fatalf("migrated store loaded as format %d written by %+v: %s", snap.Format, snap.Writer, m.diff(snap))
	}
	checkClean(t, h, fw)
	after := h.raw.dump(t, testPrefix, fw)
	for rel := range after {
		for _, dir := range []string{tasksDir, entriesDir, journalDir} {
			if rel == dir || strings.HasPrefix(rel, dir+"/") {
				t.Errorf("format 1 znode %s left after the migration", rel)
			}
		}
	}

	// The old code refuses the migrated store and leaves it as it is.
	_, err := newZKFormat1(t, conn, testPrefix, fw).Load(testCtx(t))
	if !errors.Is(err, ErrNewerFormat) {
		t.Fatalf("format 1 code loading a format %d store: %v, want ErrNewerFormat", h.format, err)
	}
	if _, err := newZKFormat1(t, conn, testPrefix, fw).Commit(testCtx(t), f, Batch{}); !errors.Is(err, ErrNewerFormat) {
		t.Fatalf("format 1 code committing to a format %d store: %v, want ErrNewerFormat", h.format, err)
	}
	if !maps.Equal(after, h.raw.dump(t, testPrefix, fw)) {
		t.Fatal("the format 1 code changed a format 2 store")
	}
	b = Batch{PutTasks: map[string][]byte{"later": []byte("l")}}
	mustCommit(t, s, f, b)
	m.apply(b)
	checkModel(t, h.newStore(t, testPrefix, fw), m)
}

// testMigrationJournal migrates a format 1 store whose last commit passed
// its commit point but was not applied (its writer lost the fence).
func testMigrationJournal(t *testing.T, h *harness, conn *zk.Conn) {
	fw := uniqueFW(t.Name())
	old := newZKFormat1(t, conn, testPrefix, fw)
	f := h.grant(t, testPrefix, fw)
	m := newModel()
	b := bigBatch("pre", 20, 100)
	b.PutEntries = map[string][]byte{"big": value("big", 200<<10)}
	mustCommit(t, old, f, b)
	m.apply(b)
	old.setHook(func(phase string, n int) {
		if phase == phaseMark {
			h.revoke(t, f)
		}
	})
	big := bigBatch("lost", 600, 2000)
	big.DeleteTasks = []string{"pre-00001"}
	big.PutEntries = map[string][]byte{"big": value("big2", 300<<10)}
	mustCommit(t, old, f, big)
	m.apply(big)
	man, _, err := decodeManifest(h.raw.get(t, testPrefix, fw, manifestName), maxFormat)
	if err != nil || !man.applying {
		t.Fatalf("the format 1 store has no journal mark: %+v, %v", man, err)
	}
	f2 := h.grant(t, testPrefix, fw)
	s := h.newStore(t, testPrefix, fw)
	checkModel(t, s, m)
	b = Batch{PutTasks: map[string][]byte{"after": []byte("a")}}
	mustCommit(t, s, f2, b)
	m.apply(b)
	if snap := mustLoad(t, h.newStore(t, testPrefix, fw)); snap.Format != h.format || m.diff(snap) != "" {
		t.Fatalf("migrated store loaded as format %d: %s", snap.Format, m.diff(snap))
	}
	checkClean(t, h, fw)
}

// testMigrationCrash kills the migrating writer at every step: a reader
// sees the format 1 store before the commit point and the migrated one
// after it, and the next leader's commit leaves a clean store.
func testMigrationCrash(t *testing.T, h *harness, conn *zk.Conn) {
	for _, c := range []crashPoint{
		{"after writing shards", phaseMigrate, 1, 0},
		{"after renaming parts", phaseRename, 1, 0},
		{"before the commit", "before " + phaseCommit, 1, 0},
		{"after the commit", phaseCommit, 1, 1},
		{"while deleting format 1 znodes", phaseLegacy, 1, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			fw := uniqueFW("migrate-crash")
			f1 := h.grant(t, testPrefix, fw)
			m0 := newModel()
			mustCommit(t, newZKFormat1(t, conn, testPrefix, fw), f1, crashBatch("pre"))
			m0.apply(crashBatch("pre"))
			m1 := m0.clone()
			m1.apply(crashBatch("main"))
			lines := crashChild(t, crashConfig{
				Backend: h.crash.backend, Addrs: h.crash.addrs, Prefix: testPrefix, Framework: fw,
				Fence: f1, Batch: "main", PausePhase: c.phase, PauseN: c.n,
			}, 0)
			t.Logf("helper said: %s", strings.Join(lines, ", "))
			r := h.newStore(t, testPrefix, fw)
			snap := mustLoad(t, r)
			want, format := m0, formatRecords
			if c.want == 1 {
				want, format = m1, h.format
			}
			if d := want.diff(snap); d != "" || snap.Format != format {
				t.Fatalf("after the crash Load saw format %d, want %d: %s", snap.Format, format, d)
			}
			h.revoke(t, f1)
			f2 := h.grant(t, testPrefix, fw)
			next := want.clone()
			next.apply(crashBatch("follow"))
			mustCommit(t, r, f2, crashBatch("follow"))
			checkModel(t, h.newStore(t, testPrefix, fw), next)
			checkClean(t, h, fw)
		})
	}
}

// upgradeBatch is what testWriterUpgrade commits with an older binary:
// tasks, and records in parts under keys as long as allowed, whose format
// 3 names (escaped) are three times that long.
func upgradeBatch() Batch {
	b := bigBatch("t", 50, 100)
	b.FrameworkID = strp("old-id")
	b.PutTasks[strings.Repeat("\u00e9", maxKeyBytes/2)] = value("long task", 150<<10)
	b.PutEntries = map[string][]byte{"big": value("big", 300<<10), strings.Repeat("/", maxKeyBytes): value("long", 200<<10)}
	return b
}

// testWriterUpgrade: a store written by the binary of an older format
// (etcd format 1; ZooKeeper formats 1 to 3), with records in parts, loads
// as it is (a writer only from format 3 on); the first commit of the
// current code writes the current format and names its fence (ZooKeeper:
// with every part under its format 4 name, the old names deleted); the
// old code then refuses the store, and leaves it untouched, until the
// current code writes again.
func testWriterUpgrade(t *testing.T, h *harness, o older) {
	fw := uniqueFW(t.Name())
	f1 := h.grant(t, testPrefix, fw)
	old := o.newStore(t, testPrefix, fw)
	m := newModel()
	for _, b := range []Batch{
		upgradeBatch(),
		{PutEntries: map[string][]byte{"big": value("big2", 250<<10)}, DeleteTasks: []string{"t-00002"}},
	} {
		mustCommit(t, old, f1, b)
		m.apply(b)
	}
	before := h.raw.dump(t, testPrefix, fw)
	if h.format == formatHashedParts && countParts(t, h, fw, false) == 0 {
		t.Fatalf("the format %d store has no parts", o.format)
	}
	s := h.newStore(t, testPrefix, fw)
	snap := mustLoad(t, s)
	wantWriter := Fence{}
	if o.format >= formatWriter {
		wantWriter = f1
	}
	if snap.Format != o.format || snap.Writer != wantWriter || m.diff(snap) != "" {
		t.Fatalf("old store loaded as format %d written by %+v, want format %d by %+v: %s",
			snap.Format, snap.Writer, o.format, wantWriter, m.diff(snap))
	}
	if !maps.Equal(before, h.raw.dump(t, testPrefix, fw)) {
		t.Fatal("Load changed the old store")
	}

	h.revoke(t, f1)
	f2 := h.grant(t, testPrefix, fw)
	b := Batch{PutTasks: map[string][]byte{"new": []byte("n")}, DeleteTasks: []string{"t-00001"}}
	mustCommit(t, s, f2, b)
	m.apply(b)
	snap = mustLoad(t, h.newStore(t, testPrefix, fw))
	if snap.Format != h.format || snap.Writer != f2 || m.diff(snap) != "" {
		t.Fatalf("upgraded store loaded as format %d written by %+v, want %d by %+v: %s",
			snap.Format, snap.Writer, h.format, f2, m.diff(snap))
	}
	checkClean(t, h, fw)
	if h.format == formatHashedParts {
		// Every part renamed, none left under its old name.
		want := livePartCount(s.(*ZKStore).pk.lim.partSize, m)
		if old, hashed := countParts(t, h, fw, false), countParts(t, h, fw, true); old != 0 || hashed != want || want == 0 {
			t.Fatalf("after the upgrade: %d parts under format 3 names, %d under format 4 names; want 0 and %d", old, hashed, want)
		}
	}

	after := h.raw.dump(t, testPrefix, fw)
	manPath := testPrefix + "/" + fw + "/" + manifestName
	_, err := o.newStore(t, testPrefix, fw).Load(testCtx(t))
	if !errors.Is(err, ErrNewerFormat) || !strings.Contains(err.Error(), manPath) {
		t.Fatalf("format %d code loading a format %d store: %v, want ErrNewerFormat naming %s", o.format, h.format, err, manPath)
	}
	if _, err := o.newStore(t, testPrefix, fw).Commit(testCtx(t), f2, Batch{PutTasks: map[string][]byte{"x": nil}}); !errors.Is(err, ErrNewerFormat) {
		t.Fatalf("format %d code committing to a format %d store: %v, want ErrNewerFormat", o.format, h.format, err)
	}
	if !maps.Equal(after, h.raw.dump(t, testPrefix, fw)) {
		t.Fatal("the old code changed the upgraded store")
	}
	b = Batch{PutEntries: map[string][]byte{"big": value("big3", 200<<10)}}
	mustCommit(t, s, f2, b)
	m.apply(b)
	checkModel(t, h.newStore(t, testPrefix, fw), m)
	checkClean(t, h, fw)
}

// livePartCount returns how many parts the records of m take.
func livePartCount(partSize int, m *model) int {
	n := 0
	for _, recs := range []map[string][]byte{m.tasks, m.entries} {
		for k, v := range recs {
			if len(v)+inlineOverhead(k) > partSize {
				n += (len(v) + partSize - 1) / partSize
			}
		}
	}
	return n
}

// countParts counts the parts of a ZooKeeper store under format 4 names
// (hashed) or older ones.
func countParts(t *testing.T, h *harness, fw string, hashed bool) int {
	t.Helper()
	n := 0
	for rel := range h.raw.dump(t, testPrefix, fw) {
		dir, name, ok := strings.Cut(rel, "/")
		if !ok || dir != blobsDir || validBucket(name) {
			continue
		}
		if b, child, ok := strings.Cut(name, "/"); ok {
			if _, ok := parseHashedPart(b, child); !ok {
				t.Fatalf("%s is not a part", rel)
			}
			if hashed {
				n++
			}
			continue
		}
		if parsePart(name).class != classPart {
			t.Fatalf("%s is not a part", rel)
		}
		if !hashed {
			n++
		}
	}
	return n
}
