package core

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"go.uber.org/zap/zaptest"

	"github.com/regent-sched/regent/integration/mesossim"
	"github.com/regent-sched/regent/integration/simtest"
	"github.com/regent-sched/regent/persist"
)

// perAgent keeps one task on every agent: the classic demo, small enough to
// drive the whole scheduler against mesos-sim over real HTTP.
type perAgent struct{ Next int }

type perAgentFW struct{ cmd string }

func (f perAgentFW) Handle(s perAgent, in Input) (perAgent, []Action) {
	ev, ok := in.Event.(OffersReceived)
	if !ok {
		return s, nil
	}
	busy := map[string]bool{}
	in.Tasks.Range(func(t Task) bool {
		busy[t.AgentID] = true
		return true
	})
	var acts []Action
	for _, o := range ev.Offers {
		if busy[o.AgentID.Value] {
			continue // declined by regent
		}
		busy[o.AgentID.Value] = true
		id := fmt.Sprintf("task-%d", s.Next)
		s.Next++
		cmd := f.cmd
		acts = append(acts, Launch{OfferIDs: []string{o.ID.Value}, Tasks: []mesos.TaskInfo{{
			Name: id, TaskID: mesos.TaskID{Value: id}, AgentID: o.AgentID, Command: &mesos.CommandInfo{Value: &cmd},
			Resources: []mesos.Resource{
				{Name: "cpus", Type: mesos.SCALAR.Enum(), Scalar: &mesos.Value_Scalar{Value: 0.1}},
				{Name: "mem", Type: mesos.SCALAR.Enum(), Scalar: &mesos.Value_Scalar{Value: 32}},
			}}}})
	}
	return s, acts
}

// running is a scheduler under test.
type running struct {
	s *Scheduler[perAgent]
	*simtest.Background
}

func testConfig(t *testing.T, store persist.Store, fence persist.Fence, masters ...string) Config[perAgent] {
	return Config[perAgent]{
		Framework:     perAgentFW{cmd: "sleep 3600"},
		Store:         store,
		Fence:         fence,
		Masters:       masters,
		FrameworkInfo: mesos.FrameworkInfo{User: "root", Name: "core-test"},
		BackoffMin:    50 * time.Millisecond,
		BackoffMax:    400 * time.Millisecond,
		ReconcileMin:  100 * time.Millisecond,
		ReconcileMax:  time.Second,
		TickInterval:  50 * time.Millisecond,
		CallTimeout:   3 * time.Second,
		Logger:        zaptest.NewLogger(t),
	}
}

func start(t *testing.T, cfg Config[perAgent], snap *persist.Snapshot) *running {
	t.Helper()
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r := &running{s: s, Background: simtest.Go(func(ctx context.Context) error { return s.Run(ctx, snap) })}
	t.Cleanup(func() { r.stop(t) })
	return r
}

func (r *running) stop(t *testing.T) error { return r.Stop(t, 10*time.Second) }

func (r *running) wait(t *testing.T, d time.Duration) error { t.Helper(); return r.Wait(t, d) }

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("timed out after %v waiting for %s", d, what)
}

// settled: every agent runs one task, all acknowledged, and the sim agrees.
func settled(c *mesossim.Cluster, r *running, agents int) func() bool {
	return func() bool {
		st := r.s.Status()
		if st.TasksByState["TASK_RUNNING"] != agents || st.Tasks != agents {
			return false
		}
		fw, ok := c.Snapshot().Framework(st.FrameworkID)
		if !ok || len(fw.Tasks) != agents || fw.UnackedUpdates != 0 {
			return false
		}
		for _, tk := range fw.Tasks {
			if tk.State != "TASK_RUNNING" {
				return false
			}
		}
		return true
	}
}

const settle = 15 * time.Second

func TestRunsTasksAgainstMesosSim(t *testing.T) {
	c := simtest.Start(t, 3, nil)
	store, fence := newMemoryStore(t)
	r := start(t, testConfig(t, store, fence, c.URL()), nil)
	waitFor(t, settle, "one running task per agent", settled(c, r, 3))
	st := r.s.Status()
	if st.Reconciliation.LastDone.IsZero() || !st.Subscribed {
		t.Fatalf("status %+v", st)
	}
	fw, _ := c.Snapshot().Framework(st.FrameworkID)
	if fw.FailoverTimeout != (7 * 24 * time.Hour).Seconds() {
		t.Fatalf("failover_timeout %v, want one week", fw.FailoverTimeout)
	}
	if fw.Counters.DuplicateTaskIDs != 0 || fw.Counters.TasksLaunched != 3 {
		t.Fatalf("counters %+v", fw.Counters)
	}
	snap, err := store.Load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if snap.FrameworkID != st.FrameworkID || len(snap.Tasks) != 3 || !strings.Contains(string(snap.Entries[stateEntry]), `"Next":3`) {
		t.Fatalf("store %+v", snap)
	}
	if err := r.stop(t); err != nil {
		t.Fatalf("stop: %v", err)
	}
}

func TestNoAckWithoutCommit(t *testing.T) {
	c := simtest.Start(t, 1, nil)
	store, fence := newMemoryStore(t)
	failCommits(t, store, errors.New("injected: store unavailable"))
	r := start(t, testConfig(t, store, fence, c.URL()), nil)
	// The FrameworkID cannot be committed: the scheduler stops with the
	// commit's error and has sent nothing that depends on it.
	err := r.wait(t, settle)
	if err == nil || !strings.Contains(err.Error(), "injected") {
		t.Fatalf("Run returned %v, want the commit error", err)
	}
	for _, fw := range c.Snapshot().Frameworks {
		if fw.Counters.Acks != 0 || fw.Counters.TasksLaunched != 0 || fw.Counters.Reconciles != 0 {
			t.Fatalf("calls sent without a commit: %+v", fw.Counters)
		}
	}
}

func TestUpdateNotAcknowledgedWhenItsCommitFails(t *testing.T) {
	c := simtest.Start(t, 1, nil)
	store, fence := newMemoryStore(t)
	cfg := testConfig(t, store, fence, c.URL())
	cfg.Framework = perAgentFW{cmd: "sleep 1"}
	r := start(t, cfg, nil)
	waitFor(t, settle, "task running", settled(c, r, 1))
	id := r.s.Status().FrameworkID
	before, _ := c.Snapshot().Framework(id)
	failCommits(t, store, errors.New("injected: commit lost"))
	// The task finishes; its TASK_FINISHED cannot be committed, so it is
	// never acknowledged and the master keeps it for the next leader.
	err := r.wait(t, settle)
	if err == nil || !strings.Contains(err.Error(), "injected") {
		t.Fatalf("Run returned %v, want the commit error", err)
	}
	after, _ := c.Snapshot().Framework(id)
	if after.Counters.Acks != before.Counters.Acks || after.UnackedUpdates == 0 {
		t.Fatalf("acks %d → %d, unacknowledged %d: an update was acknowledged without its commit",
			before.Counters.Acks, after.Counters.Acks, after.UnackedUpdates)
	}
	if after.Counters.TasksLaunched != before.Counters.TasksLaunched {
		t.Fatal("a replacement was launched without its commit")
	}
}

func TestResubscribesWithSameFrameworkID(t *testing.T) {
	c := simtest.Start(t, 2, nil)
	store, fence := newMemoryStore(t)
	r := start(t, testConfig(t, store, fence, c.URL()), nil)
	waitFor(t, settle, "tasks running", settled(c, r, 2))
	id := r.s.Status().FrameworkID
	if err := c.DisconnectFramework(id); err != nil {
		t.Fatal(err)
	}
	waitFor(t, settle, "re-subscribed", func() bool {
		fw, _ := c.Snapshot().Framework(id)
		return fw.Connected && fw.Counters.Subscriptions == 2
	})
	waitFor(t, settle, "settled again", settled(c, r, 2))
	if r.s.Status().FrameworkID != id || len(c.Snapshot().Frameworks) != 1 {
		t.Fatalf("framework changed: %v", c.Snapshot().Frameworks)
	}
}

func TestHeartbeatWatchdog(t *testing.T) {
	c := simtest.Start(t, 1, nil)
	store, fence := newMemoryStore(t)
	cfg := testConfig(t, store, fence, c.URL())
	cfg.WatchdogMisses = 3
	r := start(t, cfg, nil)
	waitFor(t, settle, "tasks running", settled(c, r, 1))
	id := r.s.Status().FrameworkID
	c.StallStreams(true)
	waitFor(t, settle, "watchdog re-subscribes", func() bool {
		fw, _ := c.Snapshot().Framework(id)
		return fw.Counters.Subscriptions >= 2
	})
	c.StallStreams(false)
	waitFor(t, settle, "settled again", settled(c, r, 1))
}

func TestFollowsRedirectToLeader(t *testing.T) {
	c := simtest.Start(t, 2, func(cfg *mesossim.Config) { cfg.Masters = 3 })
	store, fence := newMemoryStore(t)
	r := start(t, testConfig(t, store, fence, c.URLs()[2]), nil)
	waitFor(t, settle, "tasks running via the leader", settled(c, r, 2))
}

func TestMasterFailover(t *testing.T) {
	c := simtest.Start(t, 2, func(cfg *mesossim.Config) { cfg.Masters = 2 })
	store, fence := newMemoryStore(t)
	r := start(t, testConfig(t, store, fence, c.URLs()...), nil)
	waitFor(t, settle, "tasks running", settled(c, r, 2))
	id := r.s.Status().FrameworkID
	rounds := r.s.Status().Counters.Reconciliations
	c.FailoverMaster(0)
	waitFor(t, settle, "re-subscribed to the new leader and reconciled", func() bool {
		st := r.s.Status()
		fw, _ := c.Snapshot().Framework(id)
		return fw.Connected && st.Counters.Reconciliations > rounds && !st.Reconciliation.Active
	})
	waitFor(t, settle, "settled again", settled(c, r, 2))
	// Same framework, same two tasks: nothing relaunched.
	if got := c.Snapshot().Frameworks; len(got) != 1 || got[0].ID != id || got[0].Counters.TasksLaunched != 2 ||
		got[0].Tasks[0].ID != "task-0" || got[0].Tasks[1].ID != "task-1" {
		t.Fatalf("after master failover: %+v", got)
	}
}

func TestFailedOverStopsTheScheduler(t *testing.T) {
	c := simtest.Start(t, 1, nil)
	store, fence := newMemoryStore(t)
	r := start(t, testConfig(t, store, fence, c.URL()), nil)
	waitFor(t, settle, "tasks running", settled(c, r, 1))
	// Someone else subscribes with our FrameworkID.
	otherStore, otherFence := newMemoryStore(t)
	start(t, testConfig(t, otherStore, otherFence, c.URL()), &persist.Snapshot{FrameworkID: r.s.Status().FrameworkID})
	if err := r.wait(t, settle); !errors.Is(err, ErrFailedOver) {
		t.Fatalf("Run returned %v, want ErrFailedOver", err)
	}
}

func TestReconciliationFindsChangesWhileDisconnected(t *testing.T) {
	c := simtest.Start(t, 2, nil)
	store, fence := newMemoryStore(t)
	cfg := testConfig(t, store, fence, c.URL())
	r := start(t, cfg, nil)
	waitFor(t, settle, "tasks running", settled(c, r, 2))
	id := r.s.Status().FrameworkID
	// Cut the scheduler off; meanwhile an agent is removed. Its task's
	// TASK_LOST is sent by the master while nobody listens.
	if err := c.DisconnectFramework(id); err != nil {
		t.Fatal(err)
	}
	lost := c.AgentIDs()[0]
	if err := c.RemoveAgent(lost); err != nil {
		t.Fatal(err)
	}
	if _, err := c.AddAgent(mesossim.AgentSpec{}); err != nil {
		t.Fatal(err)
	}
	// After re-subscribing, reconciliation learns the task is lost and the
	// framework replaces it on the new agent.
	waitFor(t, settle, "replaced", func() bool {
		if !settled(c, r, 2)() {
			return false
		}
		for _, tk := range c.Snapshot().Frameworks[0].Tasks {
			if tk.AgentID == lost {
				return false
			}
		}
		return true
	})
}

func TestConfigValidation(t *testing.T) {
	store, fence := newMemoryStore(t)
	good := testConfig(t, store, fence, "http://127.0.0.1:1")
	for name, mod := range map[string]func(*Config[perAgent]){
		"no framework": func(c *Config[perAgent]) { c.Framework = nil },
		"no store":     func(c *Config[perAgent]) { c.Store = nil },
		"no master":    func(c *Config[perAgent]) { c.Masters = nil },
		"no name":      func(c *Config[perAgent]) { c.FrameworkInfo.Name = "" },
		"backoff":      func(c *Config[perAgent]) { c.BackoffMin, c.BackoffMax = time.Second, time.Millisecond },
		"reconcile":    func(c *Config[perAgent]) { c.ReconcileMin, c.ReconcileMax = time.Second, time.Millisecond },
		"queue":        func(c *Config[perAgent]) { c.QueueSize = -1 },
	} {
		cfg := good
		mod(&cfg)
		if _, err := New(cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := New(good); err != nil {
		t.Fatal(err)
	}
}
