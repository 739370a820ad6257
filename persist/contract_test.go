package persist

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// testStore is what the tests reach inside the real stores.
type testStore interface {
	// setHook makes the store call hook before and after every transaction.
	setHook(hook func(phase string, n int))
	// leftovers lists what the store's last Load found that no committed
	// state needs: garbage, a journal still to apply, format 1 znodes.
	leftovers() []string
}

func (s *EtcdStore) setHook(hook func(string, int)) { s.eng.hook = hook }
func (s *EtcdStore) leftovers() []string            { return s.eng.leftovers() }

func (s *ZKStore) setHook(hook func(string, int)) { s.eng.hook, s.pk.hook = hook, hook }

func (s *ZKStore) leftovers() []string {
	if s.format1 {
		return s.eng.leftovers()
	}
	v := s.pk.v
	if v.legacy != nil {
		return []string{"a format 1 store"}
	}
	out := append(append(append([]string(nil), v.garbage...), v.legacyDirs...), v.legacyParts...)
	return out
}

func (e *engine) leftovers() []string {
	v := e.v
	out := append(sortedKeys(v.journal), v.orphans...)
	if (v.man != nil && v.man.applying) || len(v.pending) > 0 {
		out = append(out, "a journal mark")
	}
	return out
}

const testPrefix = "/regent-test"

// runContract runs the behaviour every Store must have.
func runContract(t *testing.T, h *harness) {
	t.Run("Empty", func(t *testing.T) { testEmpty(t, h) })
	t.Run("RoundTrip", func(t *testing.T) { testRoundTrip(t, h) })
	t.Run("Keys", func(t *testing.T) { testKeys(t, h) })
	t.Run("Fencing", func(t *testing.T) { testFencing(t, h) })
	t.Run("Limits", func(t *testing.T) { testLimits(t, h) })
	t.Run("LargeEntry", func(t *testing.T) { testLargeEntry(t, h) })
	t.Run("ThousandsOfTasks", func(t *testing.T) { testThousands(t, h) })
	t.Run("ConcurrentLoads", func(t *testing.T) { testConcurrentLoads(t, h) })
	t.Run("ExportImport", func(t *testing.T) { testExportImport(t, h) })
	if _, ok := h.newStore(t, testPrefix, uniqueFW("probe")).(testStore); ok {
		t.Run("FencedMidJournal", func(t *testing.T) { testFencedMidJournal(t, h) })
		t.Run("StaleView", func(t *testing.T) { testStaleView(t, h) })
	}
	if h.raw != nil {
		t.Run("Corruption", func(t *testing.T) { testCorruption(t, h) })
		t.Run("NewerFormat", func(t *testing.T) { testNewerFormat(t, h) })
		t.Run("Garbage", func(t *testing.T) { testGarbage(t, h) })
	}
	for _, o := range h.olders {
		t.Run(fmt.Sprintf("Upgrade/from-format-%d", o.format), func(t *testing.T) { testWriterUpgrade(t, h, o) })
		t.Run(fmt.Sprintf("CorruptOlder/format-%d", o.format), func(t *testing.T) { testCorruptOlder(t, h, o) })
	}
	if _, ok := h.newStore(t, testPrefix, uniqueFW("probe")).(countedStore); ok {
		t.Run("CommitCost", func(t *testing.T) { testCommitCost(t, h) })
	}
	if h.crash != nil {
		t.Run("Crash", func(t *testing.T) { testCrash(t, h) })
	}
	// Last, so that the rest does not run beside its 100,000 znodes in the
	// test ZooKeeper's 256 MB heap.
	t.Run("HundredThousandTasks", func(t *testing.T) { test100k(t, h) })
}

func testEmpty(t *testing.T, h *harness) {
	s := h.newStore(t, testPrefix, uniqueFW(t.Name()))
	snap := mustLoad(t, s)
	if snap.Generation != 0 || snap.FrameworkID != "" || len(snap.Tasks) != 0 || len(snap.Entries) != 0 || snap.Tasks == nil || snap.Entries == nil {
		t.Fatalf("empty store loaded as %+v", snap)
	}
}

func testRoundTrip(t *testing.T, h *harness) {
	fw := uniqueFW(t.Name())
	s := h.newStore(t, testPrefix, fw)
	f := h.grant(t, testPrefix, fw)
	m := newModel()
	batches := []Batch{
		{FrameworkID: strp("fw-0001"), PutTasks: map[string][]byte{"a": []byte("A1"), "b": []byte("B1"), "c": {}}, PutEntries: map[string][]byte{"cfg": []byte("x")}},
		{PutTasks: map[string][]byte{"a": []byte("A2")}, DeleteTasks: []string{"b", "nope"}},
		{}, // an empty batch still commits: a fenced barrier
		{DeleteTasks: []string{"c"}, PutTasks: map[string][]byte{"c": []byte("put wins over delete")}, DeleteEntries: []string{"cfg"}},
		{FrameworkID: strp("fw-0002"), PutEntries: map[string][]byte{"e": value("e", 3000)}},
	}
	for i, b := range batches {
		gen := mustCommit(t, s, f, b)
		m.apply(b)
		if gen != m.gen {
			t.Fatalf("commit %d returned generation %d, want %d", i, gen, m.gen)
		}
		checkModel(t, s, m)
	}
	// A new replica (a new store instance) with a new term sees the same.
	h.revoke(t, f)
	s2 := h.newStore(t, testPrefix, fw)
	checkModel(t, s2, m)
	f2 := h.grant(t, testPrefix, fw)
	b := Batch{PutTasks: map[string][]byte{"d": []byte("D")}}
	mustCommit(t, s2, f2, b)
	m.apply(b)
	checkModel(t, s2, m)
	if snap := mustLoad(t, s2); snap.Format != h.format || snap.Writer != f2 {
		t.Fatalf("format %d written by %+v, want format %d by %+v", snap.Format, snap.Writer, h.format, f2)
	}
}

func testKeys(t *testing.T, h *harness) {
	fw := uniqueFW(t.Name())
	s := h.newStore(t, testPrefix, fw)
	f := h.grant(t, testPrefix, fw)
	keys := []string{".", "..", ".hidden", "a/b", "a%2Fb", "%", "space key", "ünïcödé", "\x00\x01", "tasks", "manifest",
		strings.Repeat("k", maxKeyBytes), "x.1.2", "t.x.1.2", "a.b."}
	b := Batch{PutTasks: map[string][]byte{}, PutEntries: map[string][]byte{}}
	for i, k := range keys {
		b.PutTasks[k] = []byte(fmt.Sprint("task", i))
		b.PutEntries[k] = []byte(fmt.Sprint("entry", i))
	}
	m := newModel()
	mustCommit(t, s, f, b)
	m.apply(b)
	checkModel(t, h.newStore(t, testPrefix, fw), m)
	b = Batch{DeleteTasks: keys[:5], DeleteEntries: keys[5:]}
	mustCommit(t, s, f, b)
	m.apply(b)
	checkModel(t, h.newStore(t, testPrefix, fw), m)
}

func testFencing(t *testing.T, h *harness) {
	fw := uniqueFW(t.Name())
	s := h.newStore(t, testPrefix, fw)
	f1 := h.grant(t, testPrefix, fw)
	m := newModel()
	b := Batch{FrameworkID: strp("id-1"), PutTasks: map[string][]byte{"t1": []byte("one")}}
	mustCommit(t, s, f1, b)
	m.apply(b)

	// A fence that never held.
	bogus := Fence{Key: f1.Key, Revision: f1.Revision + 1000}
	if _, err := s.Commit(testCtx(t), bogus, Batch{PutTasks: map[string][]byte{"x": nil}}); !errors.Is(err, ErrFenced) {
		t.Fatalf("commit with a bogus fence: %v, want ErrFenced", err)
	}
	if _, err := s.Commit(testCtx(t), Fence{}, Batch{}); !errors.Is(err, ErrFenced) {
		t.Fatalf("commit with the zero fence: %v, want ErrFenced", err)
	}

	// Leadership lost: the old fence can commit nothing, small or large.
	h.revoke(t, f1)
	for _, lost := range []Batch{
		{PutTasks: map[string][]byte{"t2": []byte("two")}, FrameworkID: strp("id-2")},
		bigBatch("lost", 600, 1500),
	} {
		if _, err := s.Commit(testCtx(t), f1, lost); !errors.Is(err, ErrFenced) {
			t.Fatalf("commit after leadership loss: %v, want ErrFenced", err)
		}
		checkModel(t, h.newStore(t, testPrefix, fw), m)
	}

	// The next leader commits; the old fence stays fenced.
	f2 := h.grant(t, testPrefix, fw)
	s2 := h.newStore(t, testPrefix, fw)
	mustLoad(t, s2)
	b = Batch{PutTasks: map[string][]byte{"t3": []byte("three")}}
	mustCommit(t, s2, f2, b)
	m.apply(b)
	if _, err := s.Commit(testCtx(t), f1, Batch{PutTasks: map[string][]byte{"t4": nil}}); !errors.Is(err, ErrFenced) {
		t.Fatalf("old leader's commit after the new leader's: %v, want ErrFenced", err)
	}
	checkModel(t, s2, m)
}

// bigBatch puts n tasks of size bytes: more than one transaction.
func bigBatch(prefix string, n, size int) Batch {
	b := Batch{PutTasks: make(map[string][]byte, n)}
	for i := 0; i < n; i++ {
		k := fmt.Sprintf("%s-%05d", prefix, i)
		b.PutTasks[k] = value(k, size)
	}
	return b
}

func testLimits(t *testing.T, h *harness) {
	fw := uniqueFW(t.Name())
	s := h.newStore(t, testPrefix, fw)
	f := h.grant(t, testPrefix, fw)
	m := newModel()
	mustCommit(t, s, f, Batch{PutTasks: map[string][]byte{"ok": []byte("1")}})
	m.apply(Batch{PutTasks: map[string][]byte{"ok": []byte("1")}})
	tooBig := make([]byte, DefaultMaxRecordBytes+1)
	for _, tc := range []struct {
		name    string
		b       Batch
		tooHuge bool
	}{
		{"record", Batch{PutEntries: map[string][]byte{"huge": tooBig}, PutTasks: map[string][]byte{"x": nil}}, true},
		{"key", Batch{PutTasks: map[string][]byte{strings.Repeat("k", maxKeyBytes+1): nil}}, true},
		{"framework id", Batch{FrameworkID: strp(strings.Repeat("f", maxKeyBytes+1))}, true},
		{"empty key", Batch{PutTasks: map[string][]byte{"": []byte("x")}}, false},
		{"empty delete key", Batch{DeleteEntries: []string{""}}, false},
	} {
		_, err := s.Commit(testCtx(t), f, tc.b)
		if err == nil || errors.Is(err, ErrTooLarge) != tc.tooHuge {
			t.Fatalf("%s: commit returned %v, want an error (ErrTooLarge: %v)", tc.name, err, tc.tooHuge)
		}
	}
	checkModel(t, s, m)
}

func testLargeEntry(t *testing.T, h *harness) {
	fw := uniqueFW(t.Name())
	s := h.newStore(t, testPrefix, fw)
	f := h.grant(t, testPrefix, fw)
	m := newModel()
	for _, b := range []Batch{
		{PutEntries: map[string][]byte{"state": value("v1", 5<<20), "small": []byte("s")}},
		{PutEntries: map[string][]byte{"state": value("v2", 3<<20)}, PutTasks: map[string][]byte{"big-task": value("bt", 2<<20)}},
		{PutEntries: map[string][]byte{"state": value("v3", 100)}},
		{DeleteEntries: []string{"state"}, DeleteTasks: []string{"big-task"}},
	} {
		mustCommit(t, s, f, b)
		m.apply(b)
		checkModel(t, h.newStore(t, testPrefix, fw), m)
	}
	if h.raw != nil {
		for rel := range h.raw.dump(t, testPrefix, fw) {
			if (strings.HasPrefix(rel, blobsDir+"/") && !isBlobBucket(rel)) || strings.HasPrefix(rel, journalDir+"/") {
				t.Errorf("%s left behind after its record was deleted", rel)
			}
		}
	}
}

// isBlobBucket reports whether rel is a bucket directory of format 4's
// parts (which stay when they are empty).
func isBlobBucket(rel string) bool {
	dir, b, ok := strings.Cut(rel, "/")
	return ok && dir == blobsDir && validBucket(b)
}

func testThousands(t *testing.T, h *harness) {
	fw := uniqueFW(t.Name())
	s := h.newStore(t, testPrefix, fw)
	f := h.grant(t, testPrefix, fw)
	m := newModel()
	b := bigBatch("task", 3000, 300)
	b.FrameworkID = strp("thousands")
	mustCommit(t, s, f, b)
	m.apply(b)
	checkModel(t, h.newStore(t, testPrefix, fw), m)
	b = bigBatch("task", 2000, 200)
	for i := 2000; i < 2500; i++ {
		b.DeleteTasks = append(b.DeleteTasks, fmt.Sprintf("task-%05d", i))
	}
	mustCommit(t, s, f, b)
	m.apply(b)
	checkModel(t, h.newStore(t, testPrefix, fw), m)
}

// test100k writes 100,000 tasks and loads them back through a new store.
// The state is written in batches that each fit one transaction (the
// cheapest way; the journal is exercised by ThousandsOfTasks), so that the
// test stays affordable under the race detector.
func test100k(t *testing.T, h *harness) {
	fw := uniqueFW(t.Name())
	s := h.newStore(t, testPrefix, fw)
	f := h.grant(t, testPrefix, fw)
	const n = 100_000
	b := Batch{PutTasks: make(map[string][]byte, n), FrameworkID: strp("big")}
	for i := 0; i < n; i++ {
		k := fmt.Sprintf("task-%06d", i)
		b.PutTasks[k] = []byte(fmt.Sprintf(`{"id":%q,"agent":"agent-%04d","state":"TASK_RUNNING","slot":%d}`, k, i%10000, i))
	}
	start := time.Now()
	bulk := h.bulk
	if bulk == 0 {
		bulk = n
	}
	for i := 0; i < n; i += bulk {
		part := Batch{PutTasks: make(map[string][]byte, bulk)}
		if i == 0 {
			part.FrameworkID = b.FrameworkID
		}
		for j := i; j < min(n, i+bulk); j++ {
			k := fmt.Sprintf("task-%06d", j)
			part.PutTasks[k] = b.PutTasks[k]
		}
		mustCommit(t, s, f, part)
	}
	t.Logf("committed %d tasks in %v (batches of %d)", n, time.Since(start), bulk)
	m := newModel()
	m.apply(b)
	m.gen = uint64((n + bulk - 1) / bulk)
	// A small commit after the big one, through the writer's view.
	b = Batch{PutTasks: map[string][]byte{"task-000007": []byte("updated")}, DeleteTasks: []string{"task-000008"}}
	mustCommit(t, s, f, b)
	m.apply(b)
	start = time.Now()
	snap := mustLoad(t, h.newStore(t, testPrefix, fw))
	t.Logf("loaded %d tasks in %v", len(snap.Tasks), time.Since(start))
	if d := m.diff(snap); d != "" {
		t.Fatalf("100k load differs: %s", d)
	}
}

// testConcurrentLoads checks that a reader never sees part of a commit,
// while a writer commits single-transaction and journaled batches.
func testConcurrentLoads(t *testing.T, h *harness) {
	fw := uniqueFW(t.Name())
	w := h.newStore(t, testPrefix, fw)
	r := h.newStore(t, testPrefix, fw)
	f := h.grant(t, testPrefix, fw)
	ctx := testCtx(t)
	const commits = 12
	var wg sync.WaitGroup
	var werr error
	done := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(done)
		var prev []string
		for g := 1; g <= commits; g++ {
			// Generation g holds tasks g-0 ... g-(n-1) and nothing else.
			n := 10
			if g%3 == 0 {
				n = 400 // journaled
			}
			b := bigBatch(fmt.Sprint(g), n, 1200)
			b.DeleteTasks = prev
			prev = nil
			for k := range b.PutTasks {
				prev = append(prev, k)
			}
			b.PutEntries = map[string][]byte{"gen": []byte(fmt.Sprint(g))}
			if _, err := w.Commit(ctx, f, b); err != nil {
				werr = err
				return
			}
		}
	}()
	loads := 0
	for {
		snap, err := r.Load(ctx)
		if err != nil {
			t.Errorf("concurrent Load: %v", err)
			break
		}
		loads++
		if err := checkGeneration(snap); err != nil {
			t.Errorf("Load saw a partial commit: %v", err)
			break
		}
		select {
		case <-done:
		default:
			continue
		}
		break
	}
	wg.Wait()
	if werr != nil {
		t.Fatalf("writer: %v", werr)
	}
	t.Logf("%d consistent loads during %d commits", loads, commits)
}

func checkGeneration(snap *Snapshot) error {
	if snap.Generation == 0 {
		if len(snap.Tasks) != 0 {
			return fmt.Errorf("generation 0 with %d tasks", len(snap.Tasks))
		}
		return nil
	}
	g := fmt.Sprint(snap.Generation)
	if string(snap.Entries["gen"]) != g {
		return fmt.Errorf("generation %s with entry gen=%q", g, snap.Entries["gen"])
	}
	want := 10
	if snap.Generation%3 == 0 {
		want = 400
	}
	if len(snap.Tasks) != want {
		return fmt.Errorf("generation %s with %d tasks, want %d", g, len(snap.Tasks), want)
	}
	for k, v := range snap.Tasks {
		if !strings.HasPrefix(k, g+"-") || string(v) != string(value(k, 1200)) {
			return fmt.Errorf("generation %s holds task %q (%d bytes)", g, k, len(v))
		}
	}
	return nil
}

func testExportImport(t *testing.T, h *harness) {
	fw := uniqueFW(t.Name())
	src := h.newStore(t, testPrefix, fw)
	f := h.grant(t, testPrefix, fw)
	b := bigBatch("task", 50, 100)
	b.FrameworkID = strp("exported-id")
	b.PutEntries = map[string][]byte{"big": value("big", 700<<10), "small": []byte("s")}
	mustCommit(t, src, f, b)
	mustCommit(t, src, f, Batch{DeleteTasks: []string{"task-00000"}})
	want := mustLoad(t, src)
	doc, err := Export(testCtx(t), src)
	if err != nil {
		t.Fatalf("Export: %v", err)
	}

	// Into an empty store of the same framework under another prefix.
	dstPrefix := testPrefix + "-import"
	dst := h.newStore(t, dstPrefix, fw)
	df := h.grant(t, dstPrefix, fw)
	gen, err := Import(testCtx(t), dst, df, doc)
	if err != nil || gen != 1 {
		t.Fatalf("Import: generation %d, %v", gen, err)
	}
	m := &model{fwid: want.FrameworkID, gen: 1, tasks: want.Tasks, entries: want.Entries}
	checkModel(t, h.newStore(t, dstPrefix, fw), m)

	// Never into a store that holds state, and never across frameworks.
	if _, err := Import(testCtx(t), dst, df, doc); !errors.Is(err, ErrNotEmpty) {
		t.Fatalf("Import into a non-empty store: %v, want ErrNotEmpty", err)
	}
	checkModel(t, dst, m)
	other := uniqueFW("other")
	if _, err := Import(testCtx(t), h.newStore(t, dstPrefix, other), h.grant(t, dstPrefix, other), doc); !errors.Is(err, ErrForeign) {
		t.Fatalf("Import into another framework: %v, want ErrForeign", err)
	}
	if _, err := Import(testCtx(t), dst, df, []byte(`{"tasks": 3}`)); err == nil {
		t.Fatal("Import of a malformed document succeeded")
	}
}

// testFencedMidJournal loses the fence in the middle of a journaled
// commit. Before the commit point nothing may become visible and Commit
// fails with ErrFenced; after it the commit is durable, Commit succeeds,
// and the next leader finishes it.
func testFencedMidJournal(t *testing.T, h *harness) {
	for _, tc := range h.midCommit {
		t.Run(tc.at, func(t *testing.T) {
			fw := uniqueFW(t.Name())
			s := h.newStore(t, testPrefix, fw)
			f := h.grant(t, testPrefix, fw)
			m := newModel()
			b := bigBatch("pre", 20, 100)
			mustCommit(t, s, f, b)
			m.apply(b)
			fired := false
			s.(testStore).setHook(func(phase string, n int) {
				if phase == tc.at && !fired {
					h.revoke(t, f)
					fired = true
				}
			})
			big := bigBatch("lost", 600, 2000) // a journal of two etcd transactions
			gen, err := s.Commit(testCtx(t), f, big)
			s.(testStore).setHook(nil)
			if !fired {
				t.Fatalf("the commit had no %q transaction", tc.at)
			}
			if tc.durable {
				if err != nil || gen != m.gen+1 {
					t.Fatalf("commit that lost its fence after its commit point: generation %d, %v; want %d, nil", gen, err, m.gen+1)
				}
				m.apply(big)
			} else if !errors.Is(err, ErrFenced) {
				t.Fatalf("commit that lost its fence before its commit point: %v, want ErrFenced", err)
			}
			checkModel(t, h.newStore(t, testPrefix, fw), m)
			f2 := h.grant(t, testPrefix, fw)
			s2 := h.newStore(t, testPrefix, fw)
			b = Batch{PutTasks: map[string][]byte{"after": []byte("x")}}
			mustCommit(t, s2, f2, b)
			m.apply(b)
			checkModel(t, s2, m)
			if h.raw != nil {
				checkClean(t, h, fw)
			}
		})
	}
}

// testStaleView: a replica whose view predates another writer's commit
// (same fence, which cannot happen with ha but must not corrupt) is
// refused without ErrFenced, and works after reloading.
func testStaleView(t *testing.T, h *harness) {
	fw := uniqueFW(t.Name())
	a := h.newStore(t, testPrefix, fw)
	b := h.newStore(t, testPrefix, fw)
	f := h.grant(t, testPrefix, fw)
	m := newModel()
	mustLoad(t, a)
	bt := Batch{PutTasks: map[string][]byte{"b": []byte("b")}}
	mustCommit(t, b, f, bt)
	m.apply(bt)
	_, err := a.Commit(testCtx(t), f, Batch{PutTasks: map[string][]byte{"a": []byte("a")}})
	if err == nil || errors.Is(err, ErrFenced) || !errors.Is(err, errStale) {
		t.Fatalf("commit from a stale view: %v, want a stale-view error", err)
	}
	checkModel(t, b, m)
	mustLoad(t, a)
	bt = Batch{PutTasks: map[string][]byte{"a": []byte("a")}}
	mustCommit(t, a, f, bt)
	m.apply(bt)
	checkModel(t, b, m)
}
