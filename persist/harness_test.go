package persist

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// opTimeout bounds one store call in tests.
const opTimeout = 60 * time.Second

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	t.Cleanup(cancel)
	return ctx
}

// harness wires one backend into the contract suite. Its functions may be
// called from subtests: none of them calls testserver.
type harness struct {
	name string
	// newStore returns a store of framework fw under prefix (a new
	// instance each call, like a new replica, except for memory).
	newStore func(t *testing.T, prefix, fw string) Store
	// grant starts a leadership term for fw and returns its fence; revoke
	// ends it.
	grant  func(t *testing.T, prefix, fw string) Fence
	revoke func(t *testing.T, f Fence)
	// raw reaches around the store (nil for memory).
	raw rawAccess
	// crash describes how a subprocess reaches the server (nil: no crash
	// tests).
	crash *crashServer
	// bulk is how many small tasks fit one transaction (0: any number).
	bulk int
	// layout is how the backend stores records: formatRecords or
	// formatPacked.
	layout int
	// format is the format the backend writes now.
	format int
	// olders play the binaries of older formats (none for memory).
	olders []older
	// midCommit lists where FencedMidJournal revokes the fence: after (or,
	// with "before ", before) the first transaction of a phase, and whether
	// the commit is durable then.
	midCommit []midPoint
	// crashes lists where Crash kills a writer; crash2 is the writer that
	// crashes and the next one that crashes while cleaning up after it.
	crashes []crashPoint
	crash2  [2]crashPoint
}

// older plays a binary of an older format: a store of fw that reads and
// writes format, as that binary did.
type older struct {
	format   int
	newStore func(t *testing.T, prefix, fw string) Store
}

type midPoint struct {
	at      string
	durable bool
}

type crashPoint struct {
	name  string
	phase string
	n     int
	want  int // 0: the commit is lost, 1: it is durable
}

// rawAccess reads and writes a backend's keys directly, for corruption
// tests. rel is relative to <prefix>/<fw>/.
type rawAccess interface {
	lay() layout
	// part names a part as the backend's current format does.
	part(k recKey, gen uint64, n uint32) string
	get(t *testing.T, prefix, fw, rel string) []byte
	put(t *testing.T, prefix, fw, rel string, v []byte)
	del(t *testing.T, prefix, fw, rel string)
	// dump returns every key below the framework root (leader/ included)
	// with its value and modification stamp.
	dump(t *testing.T, prefix, fw string) map[string]string
}

var fwSeq atomic.Int64

// uniqueFW returns a framework name no other test uses.
func uniqueFW(base string) string {
	return fmt.Sprintf("%s-%d", strings.NewReplacer("/", "-", " ", "-").Replace(base), fwSeq.Add(1))
}

// ---- etcd ----

func etcdHarness(cli *clientv3.Client, endpoints []string) *harness {
	var mu sync.Mutex
	leases := map[string]clientv3.LeaseID{}
	h := &harness{name: "etcd"}
	h.newStore = func(t *testing.T, prefix, fw string) Store {
		t.Helper()
		s, err := NewEtcd(cli, EtcdOptions{Prefix: prefix, Framework: fw})
		if err != nil {
			t.Fatalf("NewEtcd: %v", err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	}
	h.grant = func(t *testing.T, prefix, fw string) Fence {
		t.Helper()
		ctx := testCtx(t)
		l, err := cli.Grant(ctx, 600)
		if err != nil {
			t.Fatalf("grant lease: %v", err)
		}
		key := fmt.Sprintf("%s/%x", LeaderDir(prefix, fw), int64(l.ID))
		resp, err := cli.Put(ctx, key, "test leader", clientv3.WithLease(l.ID))
		if err != nil {
			t.Fatalf("put leader key: %v", err)
		}
		mu.Lock()
		leases[key] = l.ID
		mu.Unlock()
		return Fence{Key: key, Revision: resp.Header.Revision}
	}
	h.revoke = func(t *testing.T, f Fence) {
		t.Helper()
		mu.Lock()
		id := leases[f.Key]
		mu.Unlock()
		if _, err := cli.Revoke(testCtx(t), id); err != nil {
			t.Fatalf("revoke lease: %v", err)
		}
	}
	h.raw = etcdRaw{cli: cli}
	h.crash = &crashServer{backend: "etcd", addrs: endpoints}
	h.bulk = DefaultEtcdMaxTxnOps - 1
	h.format = formatWriter
	h.olders = []older{{formatRecords, func(t *testing.T, prefix, fw string) Store {
		s := h.newStore(t, prefix, fw).(*EtcdStore)
		s.eng.format = formatRecords
		return s
	}}}
	recordEngineHarness(h)
	return h
}

// recordEngineHarness sets the commit points of the record engine (etcd,
// ZooKeeper's format 1).
func recordEngineHarness(h *harness) {
	h.layout = formatRecords
	h.midCommit = []midPoint{{phaseJournal, false}, {"before " + phaseMark, false}, {phaseMark, true}, {phaseApply, true}}
	h.crashes = []crashPoint{
		{"after staging a part", phaseStage, 1, 0},
		{"after first journal txn", phaseJournal, 1, 0},
		{"before the mark", "before " + phaseMark, 1, 0},
		{"after the mark", phaseMark, 1, 1},
		{"after first apply txn", phaseApply, 1, 1},
		{"before clearing", "before " + phaseClear, 1, 1},
	}
	h.crash2 = [2]crashPoint{{"", phaseMark, 1, 1}, {"", phaseApply, 1, 0}}
}

type etcdRaw struct{ cli *clientv3.Client }

func (etcdRaw) lay() layout { return layout{} }

func (etcdRaw) part(k recKey, gen uint64, n uint32) string { return layout{}.part(k, gen, n) }

func (r etcdRaw) get(t *testing.T, prefix, fw, rel string) []byte {
	t.Helper()
	resp, err := r.cli.Get(testCtx(t), prefix+"/"+fw+"/"+rel)
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("raw get %s: %v (%d keys)", rel, err, len(resp.Kvs))
	}
	return resp.Kvs[0].Value
}

func (r etcdRaw) put(t *testing.T, prefix, fw, rel string, v []byte) {
	t.Helper()
	if _, err := r.cli.Put(testCtx(t), prefix+"/"+fw+"/"+rel, string(v)); err != nil {
		t.Fatalf("raw put %s: %v", rel, err)
	}
}

func (r etcdRaw) del(t *testing.T, prefix, fw, rel string) {
	t.Helper()
	resp, err := r.cli.Delete(testCtx(t), prefix+"/"+fw+"/"+rel)
	if err != nil || resp.Deleted != 1 {
		t.Fatalf("raw delete %s: %v (deleted %d)", rel, err, resp.Deleted)
	}
}

func (r etcdRaw) dump(t *testing.T, prefix, fw string) map[string]string {
	t.Helper()
	root := prefix + "/" + fw + "/"
	resp, err := r.cli.Get(testCtx(t), root, clientv3.WithPrefix())
	if err != nil {
		t.Fatalf("raw dump: %v", err)
	}
	out := map[string]string{}
	for _, kv := range resp.Kvs {
		out[string(kv.Key[len(root):])] = fmt.Sprintf("%d:%x", kv.ModRevision, kv.Value)
	}
	return out
}

// ---- ZooKeeper ----

func zkHarness(conn *zk.Conn, servers []string) *harness {
	h := &harness{name: "zookeeper"}
	h.newStore = func(t *testing.T, prefix, fw string) Store {
		t.Helper()
		s, err := NewZooKeeper(conn, ZKOptions{Prefix: prefix, Framework: fw})
		if err != nil {
			t.Fatalf("NewZooKeeper: %v", err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	}
	h.grant = func(t *testing.T, prefix, fw string) Fence {
		t.Helper()
		return zkGrant(t, conn, prefix, fw)
	}
	h.revoke = func(t *testing.T, f Fence) {
		t.Helper()
		if err := conn.Delete(f.Key, -1); err != nil {
			t.Fatalf("delete fence znode: %v", err)
		}
	}
	h.raw = zkRaw{conn: conn}
	h.crash = &crashServer{backend: "zookeeper", addrs: servers}
	h.bulk = 700
	h.layout = formatPacked
	h.format = formatHashedParts
	h.olders = []older{
		{formatRecords, func(t *testing.T, prefix, fw string) Store { return newZKFormat1(t, conn, prefix, fw) }},
		{formatPacked, func(t *testing.T, prefix, fw string) Store { return newZKFormat(t, conn, prefix, fw, formatPacked) }},
		{formatWriter, func(t *testing.T, prefix, fw string) Store { return newZKFormat(t, conn, prefix, fw, formatWriter) }},
	}
	h.midCommit = []midPoint{{phaseLog, false}, {"before " + phaseCommit, false}, {phaseCommit, true}, {phaseCompact, true}}
	h.crashes = []crashPoint{
		{"after staging a part", phaseStage, 1, 0},
		{"after first log txn", phaseLog, 1, 0},
		{"before the commit", "before " + phaseCommit, 1, 0},
		{"after the commit", phaseCommit, 1, 1},
		{"after first compaction txn", phaseCompact, 1, 1},
		{"before the last compaction txn", "before " + phaseCompact, 2, 1},
	}
	// The second writer dies deleting what the first left behind.
	h.crash2 = [2]crashPoint{{"", "before " + phaseCommit, 1, 0}, {"", phaseCleanup, 1, 0}}
	return h
}

// newZKFormat1 returns a ZooKeeper store that reads and writes format 1,
// as binaries before format 2 did: the old layout's code path, for
// migration tests.
func newZKFormat1(t *testing.T, conn *zk.Conn, prefix, fw string) *ZKStore {
	t.Helper()
	s, err := NewZooKeeper(conn, ZKOptions{Prefix: prefix, Framework: fw})
	if err != nil {
		t.Fatalf("NewZooKeeper: %v", err)
	}
	s.format1 = true
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// newZKFormat returns a ZooKeeper store of the packed layout that reads and
// writes format (formatPacked or formatWriter), as the binaries of that
// format did: parts named by their escaped key, blobs/'s buckets foreign.
func newZKFormat(t *testing.T, conn *zk.Conn, prefix, fw string, format int) *ZKStore {
	t.Helper()
	s, err := NewZooKeeper(conn, ZKOptions{Prefix: prefix, Framework: fw})
	if err != nil {
		t.Fatalf("NewZooKeeper: %v", err)
	}
	s.pk.format = format
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// zkGrant creates an ephemeral sequential leader znode, as ha's elector
// does, and returns it with its czxid as the fence.
func zkGrant(t *testing.T, conn *zk.Conn, prefix, fw string) Fence {
	t.Helper()
	dir := LeaderDir(prefix, fw)
	zkMkdirs(t, conn, dir)
	p, err := conn.Create(dir+"/n_", []byte("test leader"), zk.FlagEphemeral|zk.FlagSequence, zk.WorldACL(zk.PermAll))
	if err != nil {
		t.Fatalf("create leader znode: %v", err)
	}
	_, st, err := conn.Exists(p)
	if err != nil {
		t.Fatalf("stat leader znode: %v", err)
	}
	return Fence{Key: p, Revision: st.Czxid}
}

func zkMkdirs(t *testing.T, conn *zk.Conn, dir string) {
	t.Helper()
	p := ""
	for _, c := range strings.Split(strings.TrimPrefix(dir, "/"), "/") {
		p += "/" + c
		if _, err := conn.Create(p, nil, 0, zk.WorldACL(zk.PermAll)); err != nil && !errors.Is(err, zk.ErrNodeExists) {
			t.Fatalf("create %s: %v", p, err)
		}
	}
}

type zkRaw struct{ conn *zk.Conn }

func (zkRaw) lay() layout { return layout{buckets: true} }

func (zkRaw) part(k recKey, gen uint64, n uint32) string { return hashedPart(k, gen, n) }

func (r zkRaw) get(t *testing.T, prefix, fw, rel string) []byte {
	t.Helper()
	d, _, err := r.conn.Get(prefix + "/" + fw + "/" + rel)
	if err != nil {
		t.Fatalf("raw get %s: %v", rel, err)
	}
	return d
}

func (r zkRaw) put(t *testing.T, prefix, fw, rel string, v []byte) {
	t.Helper()
	p := prefix + "/" + fw + "/" + rel
	if _, err := r.conn.Set(p, v, -1); errors.Is(err, zk.ErrNoNode) {
		_, err = r.conn.Create(p, v, 0, zk.WorldACL(zk.PermAll))
		if err != nil {
			t.Fatalf("raw create %s: %v", rel, err)
		}
	} else if err != nil {
		t.Fatalf("raw set %s: %v", rel, err)
	}
}

func (r zkRaw) del(t *testing.T, prefix, fw, rel string) {
	t.Helper()
	if err := r.conn.Delete(prefix+"/"+fw+"/"+rel, -1); err != nil {
		t.Fatalf("raw delete %s: %v", rel, err)
	}
}

func (r zkRaw) dump(t *testing.T, prefix, fw string) map[string]string {
	t.Helper()
	root := prefix + "/" + fw
	out := map[string]string{}
	var walk func(p, rel string)
	walk = func(p, rel string) {
		d, st, err := r.conn.Get(p)
		if err != nil {
			t.Fatalf("raw dump %s: %v", p, err)
		}
		out[rel] = fmt.Sprintf("%d/%d:%x", st.Mzxid, st.Pzxid, d)
		kids, _, err := r.conn.Children(p)
		if err != nil {
			t.Fatalf("raw dump %s: %v", p, err)
		}
		for _, k := range kids {
			walk(p+"/"+k, strings.TrimPrefix(rel+"/"+k, "/"))
		}
	}
	walk(root, "")
	return out
}

// ---- memory ----

func memoryHarness() *harness {
	var mu sync.Mutex
	stores := map[string]*MemoryStore{}
	var seq int64
	get := func(t *testing.T, prefix, fw string) *MemoryStore {
		mu.Lock()
		defer mu.Unlock()
		s := stores[prefix+"/"+fw]
		if s == nil {
			var err error
			if s, err = NewMemory(fw); err != nil {
				t.Fatalf("NewMemory: %v", err)
			}
			stores[prefix+"/"+fw] = s
		}
		return s
	}
	h := &harness{name: "memory", layout: formatRecords, format: formatWriter}
	h.newStore = func(t *testing.T, prefix, fw string) Store { return get(t, prefix, fw) }
	h.grant = func(t *testing.T, prefix, fw string) Fence {
		mu.Lock()
		seq++
		f := Fence{Key: prefix + "/" + fw + "/leader", Revision: seq}
		mu.Unlock()
		get(t, prefix, fw).SetLeader(f)
		return f
	}
	h.revoke = func(t *testing.T, f Fence) {
		mu.Lock()
		defer mu.Unlock()
		for _, s := range stores {
			s.mu.Lock()
			if s.leader == f {
				s.leader = Fence{}
			}
			s.mu.Unlock()
		}
	}
	return h
}

// ---- helpers ----

func mustLoad(t *testing.T, s Store) *Snapshot {
	t.Helper()
	snap, err := s.Load(testCtx(t))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return snap
}

func mustCommit(t *testing.T, s Store, f Fence, b Batch) uint64 {
	t.Helper()
	gen, err := s.Commit(testCtx(t), f, b)
	if err != nil {
		t.Fatalf("Commit: %v", err)
	}
	return gen
}

// model is the expected logical state.
type model struct {
	fwid    string
	gen     uint64
	tasks   map[string][]byte
	entries map[string][]byte
}

func newModel() *model {
	return &model{tasks: map[string][]byte{}, entries: map[string][]byte{}}
}

func (m *model) clone() *model {
	return &model{fwid: m.fwid, gen: m.gen, tasks: maps.Clone(m.tasks), entries: maps.Clone(m.entries)}
}

func (m *model) apply(b Batch) {
	for _, k := range b.DeleteTasks {
		delete(m.tasks, k)
	}
	for _, k := range b.DeleteEntries {
		delete(m.entries, k)
	}
	maps.Copy(m.tasks, b.PutTasks)
	maps.Copy(m.entries, b.PutEntries)
	if b.FrameworkID != nil {
		m.fwid = *b.FrameworkID
	}
	m.gen++
}

// diff describes how snap differs from m, or returns "".
func (m *model) diff(snap *Snapshot) string {
	var out []string
	if snap.Generation != m.gen {
		out = append(out, fmt.Sprintf("generation %d, want %d", snap.Generation, m.gen))
	}
	if snap.FrameworkID != m.fwid {
		out = append(out, fmt.Sprintf("framework id %q, want %q", snap.FrameworkID, m.fwid))
	}
	out = append(out, diffMap("task", snap.Tasks, m.tasks)...)
	out = append(out, diffMap("entry", snap.Entries, m.entries)...)
	if len(out) > 5 {
		out = append(out[:5], fmt.Sprintf("... %d more", len(out)-5))
	}
	return strings.Join(out, "; ")
}

func diffMap(what string, got, want map[string][]byte) []string {
	var out []string
	for k, w := range want {
		g, ok := got[k]
		switch {
		case !ok:
			out = append(out, fmt.Sprintf("%s %q missing", what, k))
		case string(g) != string(w):
			out = append(out, fmt.Sprintf("%s %q is %d bytes %.20q, want %d bytes %.20q", what, k, len(g), g, len(w), w))
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			out = append(out, fmt.Sprintf("unexpected %s %q", what, k))
		}
	}
	sort.Strings(out)
	return out
}

func checkModel(t *testing.T, s Store, m *model) {
	t.Helper()
	if d := m.diff(mustLoad(t, s)); d != "" {
		t.Fatalf("loaded state differs: %s", d)
	}
}

// value returns deterministic bytes of length n.
func value(seed string, n int) []byte {
	b := make([]byte, n)
	x := uint32(2166136261)
	for i := 0; i < len(seed); i++ {
		x = (x ^ uint32(seed[i])) * 16777619
	}
	for i := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = byte(x)
	}
	return b
}

func strp(s string) *string { return &s }
