package core

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mesos/mesos-go/api/v1/lib/scheduler"

	"github.com/regent-sched/regent/integration/mesossim"
	"github.com/regent-sched/regent/integration/simtest"
	"github.com/regent-sched/regent/persist"
)

// heldIDStore holds every commit that carries a FrameworkID until the
// test lets it through (nil) or fails it (an error), or its context ends.
type heldIDStore struct {
	*persist.MemoryStore
	entered chan string // the FrameworkID of each held commit, as it arrives
	release chan error
}

func newHeldIDStore(s *persist.MemoryStore) *heldIDStore {
	return &heldIDStore{MemoryStore: s, entered: make(chan string, 8), release: make(chan error, 8)}
}

func (h *heldIDStore) Commit(ctx context.Context, fence persist.Fence, b persist.Batch) (uint64, error) {
	if b.FrameworkID != nil {
		h.entered <- *b.FrameworkID
		select {
		case err := <-h.release:
			if err != nil {
				return 0, err
			}
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
	return h.MemoryStore.Commit(ctx, fence, b)
}

func (h *heldIDStore) held(t *testing.T) string {
	t.Helper()
	select {
	case id := <-h.entered:
		return id
	case <-time.After(settle):
		t.Fatal("no commit of a FrameworkID")
		return ""
	}
}

// callAudit records the calls mesos-sim handles, and every call other than
// SUBSCRIBE made under a FrameworkID that the store did not hold when the
// call reached the master.
type callAudit struct {
	store *persist.MemoryStore

	mu          sync.Mutex
	calls       []mesossim.CallRecord
	uncommitted []string
}

func (a *callAudit) configure(c *mesossim.Config) {
	c.BeforeCall = func(call *scheduler.Call) any {
		if call.Type == scheduler.Call_SUBSCRIBE {
			return nil
		}
		id := call.GetFrameworkID().GetValue()
		snap, err := a.store.Load(context.Background())
		if err != nil || snap.FrameworkID != id {
			held := "?"
			if err == nil {
				held = fmt.Sprintf("%q", snap.FrameworkID)
			}
			a.mu.Lock()
			a.uncommitted = append(a.uncommitted, fmt.Sprintf("%v under %s while the store held %s (%v)", call.Type, id, held, err))
			a.mu.Unlock()
		}
		return nil
	}
	c.OnCall = func(r mesossim.CallRecord) {
		a.mu.Lock()
		a.calls = append(a.calls, r)
		a.mu.Unlock()
	}
}

// check fails the test if a call was made under an uncommitted
// FrameworkID, or if anything but SUBSCRIBE was sent under id.
func (a *callAudit) check(t *testing.T, id, when string) {
	t.Helper()
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.uncommitted) > 0 {
		t.Fatalf("%s: calls under a FrameworkID not yet committed: %v", when, a.uncommitted)
	}
	var sent []string
	for _, c := range a.calls {
		if c.FrameworkID == id && c.Type != "SUBSCRIBE" {
			sent = append(sent, c.Type)
		}
	}
	if len(sent) > 0 {
		t.Fatalf("%s: calls under %s, whose commit was held: %v", when, id, sent)
	}
}

// The first-ever registration: between SUBSCRIBED, which hands a new
// FrameworkID, and the commit of that id, nothing goes to Mesos under it —
// no ACCEPT (launch), no DECLINE, no acknowledgement, no reconciliation —
// although offers arrive and the framework decides launches meanwhile.
// If the commit fails, or the leader dies with it in flight, the next
// leader finds no FrameworkID, registers again under a new id, and the
// orphaned framework, which never had a task, goes when its failover
// timeout ends.
func TestFirstRegistrationWaitsForItsFrameworkIDCommit(t *testing.T) {
	for _, end := range []string{"commit fails", "leader dies"} {
		t.Run(end, func(t *testing.T) { testFirstRegistration(t, end) })
	}
}

// firstRegistration is a first-ever registration whose FrameworkID
// commit is held, under a call audit, on 2 agents.
type firstRegistration struct {
	store *persist.MemoryStore
	audit *callAudit
	sim   *mesossim.Cluster
	held  *heldIDStore
	r     *running
}

func startFirstRegistration(t *testing.T) *firstRegistration {
	t.Helper()
	store, fence := newMemoryStore(t)
	f := &firstRegistration{store: store, audit: &callAudit{store: store}}
	f.sim = simtest.Start(t, 2, f.audit.configure)
	f.held = newHeldIDStore(store)
	cfg := testConfig(t, f.held, fence, f.sim.URL())
	cfg.FrameworkInfo.FailoverTimeout = ptr(1.0) // an orphan goes 1 s after its scheduler
	f.r = start(t, cfg, nil)
	return f
}

func testFirstRegistration(t *testing.T, end string) {
	f := startFirstRegistration(t)
	store, audit, sim, held, first := f.store, f.audit, f.sim, f.held, f.r

	orphan := held.held(t)
	waitFor(t, settle, "offers handled and launches decided while the FrameworkID commit is held", func() bool {
		st := first.s.Status()
		return st.FrameworkID == orphan && st.Counters.OffersReceived > 0 && st.Counters.Launches > 0
	})
	time.Sleep(500 * time.Millisecond) // for a call sent too early to reach the master
	audit.check(t, orphan, "while the commit is held")

	var err error
	switch end {
	case "commit fails":
		held.release <- errors.New("injected: FrameworkID commit failed")
		if err = first.wait(t, settle); err == nil || !strings.Contains(err.Error(), "injected") {
			t.Fatalf("Run returned %v, want the commit's error", err)
		}
	case "leader dies":
		// Stopped with the commit in flight: the commit runs out of time
		// (CallTimeout) and Run returns without having called Mesos.
		err = first.stop(t)
		t.Logf("Run returned %v", err)
	}
	audit.check(t, orphan, "after the first leader ended")
	// (It may be gone already: its failover timeout runs from the moment
	// its scheduler went away.)
	st := sim.Snapshot()
	if fw, ok := st.Framework(orphan); ok && (len(fw.Tasks) != 0 || fw.Counters.TasksLaunched != 0) ||
		!ok && !slices.Contains(st.CompletedFrameworks, orphan) {
		t.Fatalf("the uncommitted framework %s: %+v (found %v)", orphan, fw, ok)
	}
	snap, err := store.Load(context.Background())
	if err != nil || snap.FrameworkID != "" || len(snap.Tasks) != 0 {
		t.Fatalf("store after the failed first registration: %+v, %v", snap, err)
	}

	// The next leader registers again.
	next := persist.Fence{Key: "/regent/core-test/leader/2", Revision: 2}
	store.SetLeader(next)
	second := start(t, testConfig(t, store, next, sim.URL()), snap)
	waitFor(t, settle, "the next leader runs one task per agent", settled(sim, second, 2))
	id := second.s.Status().FrameworkID
	if id == "" || id == orphan {
		t.Fatalf("the next leader runs under %q; the orphan was %q", id, orphan)
	}
	if snap, err := store.Load(context.Background()); err != nil || snap.FrameworkID != id || len(snap.Tasks) != 2 {
		t.Fatalf("store: %+v, %v", snap, err)
	}
	audit.check(t, orphan, "after the next leader registered")
	waitFor(t, settle, "Mesos removed the orphan after its failover timeout", func() bool {
		return slices.Contains(sim.Snapshot().CompletedFrameworks, orphan)
	})
}

// A first registration whose subscription drops before its FrameworkID is
// committed: the scheduler subscribes again, without an id (none is
// committed), and Mesos hands a second one. Nothing may be sent under
// either id before it is committed: the scheduler stops with
// ErrFrameworkIDChanged once the first id's commit is done, and the next
// term, loading the store, subscribes under the first id; the second is an
// orphan without a task.
func TestFirstRegistrationResubscribedBeforeItsCommit(t *testing.T) {
	f := startFirstRegistration(t)
	store, audit, sim, held, r := f.store, f.audit, f.sim, f.held, f.r

	x := held.held(t)
	waitFor(t, settle, "launches decided under the first id", func() bool {
		return r.s.Status().Counters.Launches > 0
	})
	if err := sim.DisconnectFramework(x); err != nil {
		t.Fatal(err)
	}
	var y string
	waitFor(t, settle, "Mesos registered a second framework", func() bool {
		for _, fw := range sim.Snapshot().Frameworks {
			if fw.ID != x {
				y = fw.ID
				return true
			}
		}
		return false
	})
	time.Sleep(500 * time.Millisecond) // for a call sent too early to reach the master
	audit.check(t, x, "x held, y subscribed")
	audit.check(t, y, "x held, y subscribed")

	held.release <- nil // x is committed now
	err := r.wait(t, settle)
	if !errors.Is(err, ErrFrameworkIDChanged) {
		t.Fatalf("Run returned %v, want ErrFrameworkIDChanged", err)
	}
	audit.check(t, y, "after Run")
	snap, err := store.Load(context.Background())
	if err != nil || snap.FrameworkID != x {
		t.Fatalf("store: %+v, %v; want FrameworkID %s", snap, err, x)
	}

	// The next term starts from the store, under x.
	next := persist.Fence{Key: "/regent/core-test/leader/2", Revision: 2}
	store.SetLeader(next)
	second := start(t, testConfig(t, store, next, sim.URL()), snap)
	waitFor(t, settle, "the next term runs one task per agent", settled(sim, second, 2))
	if id := second.s.Status().FrameworkID; id != x {
		t.Fatalf("the next term runs under %q, want %q", id, x)
	}
	audit.check(t, y, "after the next term settled")
	waitFor(t, settle, "Mesos removed the orphan after its failover timeout", func() bool {
		return slices.Contains(sim.Snapshot().CompletedFrameworks, y)
	})
	if fw, ok := sim.Snapshot().Framework(y); ok && fw.Counters.TasksLaunched != 0 {
		t.Fatalf("the orphan %s launched tasks: %+v", y, fw)
	}
}
