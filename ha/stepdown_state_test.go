package ha

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	mesos "github.com/mesos/mesos-go/api/v1/lib"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap/zaptest"

	"github.com/regent-sched/regent/core"
	"github.com/regent-sched/regent/integration/mesossim"
	"github.com/regent-sched/regent/integration/simtest"
	"github.com/regent-sched/regent/integration/testserver"
	"github.com/regent-sched/regent/persist"
)

// auditFramework is the framework name of these tests, as in run_test.go.
const auditFramework = "hatest"

// auditRaw is what one key or znode of a store holds, with the store's
// own record of its writes, so that a rewrite with the same bytes shows.
type auditRaw struct {
	Value string
	// etcd: create revision, mod revision, version; ZooKeeper: czxid,
	// mzxid, data version.
	Created, Modified, Version int64
	// ZooKeeper: the znode's children (the leader directory left out).
	Children string
}

func (r auditRaw) String() string {
	v := r.Value
	if len(v) > 100 {
		v = v[:100] + "..."
	}
	s := fmt.Sprintf("%q (created %d, modified %d, version %d)", v, r.Created, r.Modified, r.Version)
	if r.Children != "" {
		s += " children " + r.Children
	}
	return s
}

// auditDump is every key or znode of a framework's store, the election's
// left out.
type auditDump map[string]auditRaw

func (d auditDump) diff(other auditDump) string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(d)) {
		o, ok := other[k]
		switch {
		case !ok:
			fmt.Fprintf(&b, "\n  %s deleted", k)
		case o != d[k]:
			fmt.Fprintf(&b, "\n  %s rewritten: %v -> %v", k, d[k], o)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(other)) {
		if _, ok := d[k]; !ok {
			fmt.Fprintf(&b, "\n  %s created: %v", k, other[k])
		}
	}
	return b.String()
}

// auditBackend runs a Runner over etcd or ZooKeeper.
type auditBackend struct {
	name    string
	elector func(t *testing.T, id string) Elector
	store   func(t *testing.T) persist.Store
	// dump reads the raw store; it may run outside the test's goroutine.
	dump func() (auditDump, error)
}

func auditEtcd(t *testing.T) (*auditBackend, *clientv3.Client) {
	cli := testserver.StartEtcd(t).Client(t)
	root := "/regent/" + auditFramework + "/"
	leader := persist.LeaderDir("", auditFramework) + "/"
	return &auditBackend{
		name: "etcd",
		elector: func(t *testing.T, id string) Elector {
			e, err := NewEtcd(cli, EtcdOptions{Framework: auditFramework, Candidate: Candidate{ID: id}, TTL: 2 * time.Second,
				Logger: zaptest.NewLogger(t).Named(id)})
			if err != nil {
				t.Fatal(err)
			}
			return e
		},
		store: func(t *testing.T) persist.Store {
			s, err := persist.NewEtcd(cli, persist.EtcdOptions{Framework: auditFramework, Logger: zaptest.NewLogger(t)})
			if err != nil {
				t.Fatal(err)
			}
			return s
		},
		dump: func() (auditDump, error) {
			resp, err := cli.Get(context.Background(), root, clientv3.WithPrefix())
			if err != nil {
				return nil, err
			}
			d := auditDump{}
			for _, kv := range resp.Kvs {
				if strings.HasPrefix(string(kv.Key), leader) {
					continue
				}
				d[string(kv.Key)] = auditRaw{Value: string(kv.Value), Created: kv.CreateRevision, Modified: kv.ModRevision, Version: kv.Version}
			}
			return d, nil
		},
	}, cli
}

func auditZooKeeper(t *testing.T) (*auditBackend, *zk.Conn) {
	z := testserver.StartZooKeeper(t)
	admin := z.Conn(t)
	root := "/regent/" + auditFramework
	leader := persist.LeaderDir("", auditFramework)
	var walk func(d auditDump, path string) error
	walk = func(d auditDump, path string) error {
		data, st, err := admin.Get(path)
		if errors.Is(err, zk.ErrNoNode) {
			return nil // deleted since its parent was listed: shows as missing
		}
		if err != nil {
			return err
		}
		kids, _, err := admin.Children(path)
		if err != nil && !errors.Is(err, zk.ErrNoNode) {
			return err
		}
		slices.Sort(kids)
		kids = slices.DeleteFunc(kids, func(k string) bool { return path+"/"+k == leader })
		d[path] = auditRaw{Value: string(data), Created: st.Czxid, Modified: st.Mzxid, Version: int64(st.Version),
			Children: strings.Join(kids, ",")}
		for _, k := range kids {
			if err := walk(d, path+"/"+k); err != nil {
				return err
			}
		}
		return nil
	}
	return &auditBackend{
		name: "zookeeper",
		elector: func(t *testing.T, id string) Elector {
			const session = 4 * time.Second
			conn, events := z.ConnEvents(t, session)
			e, err := NewZooKeeper(conn, events, ZKOptions{Framework: auditFramework, Candidate: Candidate{ID: id},
				SessionTimeout: session, Logger: zaptest.NewLogger(t).Named(id)})
			if err != nil {
				t.Fatal(err)
			}
			return e
		},
		store: func(t *testing.T) persist.Store {
			s, err := persist.NewZooKeeper(z.Conn(t), persist.ZKOptions{Framework: auditFramework, Logger: zaptest.NewLogger(t)})
			if err != nil {
				t.Fatal(err)
			}
			return s
		},
		dump: func() (auditDump, error) {
			d := auditDump{}
			return d, walk(d, root)
		},
	}, admin
}

// auditStart runs a Runner of replica id on be, as startReplicaWith does
// on etcd.
func auditStart(t *testing.T, be *auditBackend, id string, masters []string, edit func(*Config[onePerAgent])) *replica {
	t.Helper()
	return startRunner(t, be.elector(t, id), be.store(t), zaptest.NewLogger(t).Named(id), masters, edit)
}

// auditSettledDump waits until the store holds a FrameworkID and tasks
// tasks and has not changed for a moment, and returns it.
func auditSettledDump(t *testing.T, be *auditBackend, tasks int) auditDump {
	t.Helper()
	reader := be.store(t)
	defer reader.Close()
	var prev auditDump
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		d, err := be.dump()
		if err != nil {
			t.Fatal(err)
		}
		if prev != nil && maps.Equal(prev, d) {
			snap, err := reader.Load(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if snap.FrameworkID != "" && len(snap.Tasks) == tasks {
				return d
			}
		}
		prev = d
		time.Sleep(400 * time.Millisecond)
	}
	t.Fatalf("the %s store did not settle with a FrameworkID and %d tasks", be.name, tasks)
	return nil
}

// Stepping down — Runner.StepDown, or the end of Run's context — never
// deletes or rewrites persisted state: every key or znode of the store
// (the election's left out) is byte for byte what it was, and was not
// written again, when the term is over. On etcd and ZooKeeper.
func TestRunStepDownLeavesTheStoreUntouched(t *testing.T) {
	for _, backend := range []string{"etcd", "zookeeper"} {
		for _, how := range []string{"StepDown", "cancel"} {
			t.Run(backend+"/"+how, func(t *testing.T) {
				var be *auditBackend
				if backend == "etcd" {
					be, _ = auditEtcd(t)
				} else {
					be, _ = auditZooKeeper(t)
				}
				testStepDownLeavesTheStoreUntouched(t, be, how)
			})
		}
	}
}

func testStepDownLeavesTheStoreUntouched(t *testing.T, be *auditBackend, how string) {
	sim := simtest.Start(t, 2, nil)
	type dumped struct {
		d   auditDump
		err error
	}
	var armed atomic.Bool
	termOver := make(chan dumped, 1)
	a := auditStart(t, be, "a", []string{sim.URL()}, func(c *Config[onePerAgent]) {
		// Called when the term is over (resigned), before Run campaigns
		// again: the store as the step-down left it.
		c.OnTransition = func(st Status) {
			if !st.Leading && armed.CompareAndSwap(true, false) {
				d, err := be.dump()
				termOver <- dumped{d, err}
			}
		}
	})
	eventually(t, 20*time.Second, "a leads, 2 tasks running, reconciled", func() bool {
		s, err := a.r.Scheduler()
		if err != nil {
			return false
		}
		st := s.Status()
		return running(sim, 2)() && !st.Reconciliation.LastDone.IsZero() && !st.Reconciliation.Active
	})
	before := auditSettledDump(t, be, 2)
	fwID := sim.Snapshot().Frameworks[0].ID

	var after auditDump
	switch how {
	case "StepDown":
		armed.Store(true)
		if err := a.r.StepDown(); err != nil {
			t.Fatal(err)
		}
		select {
		case r := <-termOver:
			if r.err != nil {
				t.Fatal(r.err)
			}
			after = r.d
		case <-time.After(15 * time.Second):
			t.Fatal("the term did not end after StepDown")
		}
	case "cancel":
		if err := a.stop(t); err != nil {
			t.Fatalf("Run returned %v", err)
		}
		var err error
		if after, err = be.dump(); err != nil {
			t.Fatal(err)
		}
	}
	if diff := before.diff(after); diff != "" {
		t.Fatalf("%s on %s changed the store:%s", how, be.name, diff)
	}
	t.Logf("%d keys or znodes unchanged by %s", len(before), how)

	if how == "StepDown" {
		// The replica leads again, from the same store, with the same
		// framework and tasks.
		eventually(t, 15*time.Second, "a leads again, subscribed", func() bool {
			s, err := a.r.Scheduler()
			return err == nil && s.Status().Subscribed && s.Status().FrameworkID == fwID
		})
		eventually(t, 10*time.Second, "the tasks still run", running(sim, 2))
		if fw := sim.Snapshot().Frameworks[0]; fw.ID != fwID || fw.Counters.TasksLaunched != 2 {
			t.Fatalf("after the step-down: %+v", fw)
		}
	}
}

// A store that holds tasks but no FrameworkID (damaged, or written by a
// bug) must not make a leader register a new framework, which would
// redeploy every task next to the running ones: Run ends with ErrFatal
// before any call to Mesos, and leaves the store as it was.
func TestRunRefusesTasksWithoutFrameworkID(t *testing.T) {
	be, cli := auditEtcd(t)
	ctx := context.Background()
	// Write one task and no FrameworkID under a fence of our own.
	fenceKey := persist.LeaderDir("", auditFramework) + "/audit-writer"
	put, err := cli.Put(ctx, fenceKey, "{}")
	if err != nil {
		t.Fatal(err)
	}
	writer := be.store(t)
	task, err := json.Marshal(core.Task{ID: "task-0", Name: "task-0", AgentID: "agent-0", State: mesos.TASK_RUNNING})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := writer.Commit(ctx, persist.Fence{Key: fenceKey, Revision: put.Header.Revision},
		persist.Batch{PutTasks: map[string][]byte{"task-0": task}}); err != nil {
		t.Fatal(err)
	}
	writer.Close()
	if _, err := cli.Delete(ctx, fenceKey); err != nil {
		t.Fatal(err)
	}
	before, err := be.dump()
	if err != nil {
		t.Fatal(err)
	}

	var mu sync.Mutex
	var calls []string
	sim := simtest.Start(t, 1, func(c *mesossim.Config) {
		c.OnCall = func(r mesossim.CallRecord) { mu.Lock(); calls = append(calls, r.Type); mu.Unlock() }
	})
	a := auditStart(t, be, "a", []string{sim.URL()}, nil)
	err = a.Wait(t, 20*time.Second)
	if !errors.Is(err, ErrFatal) || !strings.Contains(err.Error(), "no FrameworkID") {
		t.Fatalf("Run returned %v; want ErrFatal for a store with tasks and no FrameworkID", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(calls) != 0 || len(sim.Snapshot().Frameworks) != 0 {
		t.Fatalf("Mesos was called: %v; frameworks %+v", calls, sim.Snapshot().Frameworks)
	}
	after, err := be.dump()
	if err != nil {
		t.Fatal(err)
	}
	if diff := before.diff(after); diff != "" {
		t.Fatalf("the refused store was changed:%s", diff)
	}
	// The term was resigned on the way out.
	if keys := auditLeaderKeys(t, cli); len(keys) != 0 {
		t.Fatalf("leader keys left: %v", keys)
	}
}
