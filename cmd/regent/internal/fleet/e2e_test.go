package fleet

import (
	"context"
	"errors"
	"sort"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"go.uber.org/zap/zaptest"

	"github.com/regent-sched/regent/core"
	"github.com/regent-sched/regent/integration/mesossim"
	"github.com/regent-sched/regent/integration/simtest"
	"github.com/regent-sched/regent/persist"
)

// settle bounds every wait for the cluster to converge.
const settle = 15 * time.Second

// scheduler is a core.Scheduler running the fleet framework under test.
type scheduler struct {
	s *core.Scheduler[State]
	*simtest.Background
}

func startScheduler(t *testing.T, cfg Config, store persist.Store, fence persist.Fence, master string, snap *persist.Snapshot) *scheduler {
	t.Helper()
	s, err := core.New(core.Config[State]{
		Framework:     mustNew(t, cfg),
		Store:         store,
		Fence:         fence,
		Masters:       []string{master},
		FrameworkInfo: mesos.FrameworkInfo{User: "root", Name: cfg.Name},
		BackoffMin:    50 * time.Millisecond,
		BackoffMax:    400 * time.Millisecond,
		ReconcileMin:  100 * time.Millisecond,
		ReconcileMax:  time.Second,
		TickInterval:  50 * time.Millisecond,
		CallTimeout:   3 * time.Second,
		Logger:        zaptest.NewLogger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	r := &scheduler{s: s, Background: simtest.Go(func(ctx context.Context) error { return s.Run(ctx, snap) })}
	t.Cleanup(func() { r.stop(t) })
	return r
}

// stop ends the scheduler and returns what Run returned.
func (r *scheduler) stop(t *testing.T) error { return r.Stop(t, 10*time.Second) }

func (r *scheduler) ask(t *testing.T, payload any) any {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	v, err := r.s.Ask(ctx, payload)
	if err != nil {
		t.Fatalf("ask %T: %v", payload, err)
	}
	return v
}

// waitFor polls cond until it holds, checking on every poll that no agent
// ever runs two of our tasks.
func waitFor(t *testing.T, c *mesossim.Cluster, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(settle)
	for time.Now().Before(deadline) {
		noDoubles(t, c)
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("timed out after %v waiting for %s", settle, what)
}

// live are the framework's non-terminal tasks in mesos-sim, by agent.
func live(c *mesossim.Cluster) map[string][]mesossim.TaskView {
	out := map[string][]mesossim.TaskView{}
	for _, fw := range c.Snapshot().Frameworks {
		for _, tk := range fw.Tasks {
			if st, ok := mesos.TaskState_value[tk.State]; ok && !core.IsTerminal(mesos.TaskState(st)) {
				out[tk.AgentID] = append(out[tk.AgentID], tk)
			}
		}
	}
	return out
}

func noDoubles(t *testing.T, c *mesossim.Cluster) {
	t.Helper()
	for agent, ts := range live(c) {
		if len(ts) > 1 {
			t.Fatalf("agent %s runs %d tasks: %+v", agent, len(ts), ts)
		}
	}
}

// onePerAgent: every listed agent runs exactly one RUNNING task of ours,
// no other agent runs one, every update is acknowledged, and regent agrees.
func onePerAgent(c *mesossim.Cluster, r *scheduler, agents ...string) func() bool {
	return func() bool {
		st := r.s.Status()
		if !st.Subscribed || st.Tasks != len(agents) || st.TasksByState["TASK_RUNNING"] != len(agents) {
			return false
		}
		fw, ok := c.Snapshot().Framework(st.FrameworkID)
		if !ok || fw.UnackedUpdates != 0 || len(fw.Tasks) != len(agents) {
			return false
		}
		byAgent := map[string]string{}
		for _, tk := range fw.Tasks {
			if tk.State != "TASK_RUNNING" {
				return false
			}
			byAgent[tk.AgentID] = tk.ID
		}
		for _, a := range agents {
			if byAgent[a] == "" {
				return false
			}
		}
		return len(byAgent) == len(agents)
	}
}

// taskOn returns the id of our live task on agent in mesos-sim.
func taskOn(t *testing.T, c *mesossim.Cluster, agent string) string {
	t.Helper()
	ts := live(c)[agent]
	if len(ts) != 1 {
		t.Fatalf("agent %s runs %+v", agent, ts)
	}
	return ts[0].ID
}

func frameworkView(t *testing.T, c *mesossim.Cluster, id string) mesossim.FrameworkView {
	t.Helper()
	fw, ok := c.Snapshot().Framework(id)
	if !ok {
		t.Fatalf("framework %s not in mesos-sim", id)
	}
	return fw
}

func TestEndToEnd(t *testing.T) {
	c := simtest.Start(t, 3, nil)
	agents := c.AgentIDs()
	store, err := persist.NewMemory("fleet-e2e")
	if err != nil {
		t.Fatal(err)
	}
	fence := persist.Fence{Key: "/regent/fleet-e2e/leader/1", Revision: 1}
	store.SetLeader(fence)
	// Short decline filters: a blacklisted agent is offered again and
	// again, so it is the blacklist that keeps it empty, not a filter.
	cfg := Config{Name: "fleet-e2e", Command: "sleep 3600", BackoffMin: 50 * time.Millisecond,
		BackoffMax: 200 * time.Millisecond, DeclineRefuse: 200 * time.Millisecond}
	r := startScheduler(t, cfg, store, fence, c.URL(), nil)

	waitFor(t, c, "one running task per agent", onePerAgent(c, r, agents...))
	fwID := r.s.Status().FrameworkID
	first := map[string]bool{}
	for _, a := range agents {
		first[taskOn(t, c, a)] = true
	}
	if !first["fleet-e2e-000000"] || !first["fleet-e2e-000001"] || !first["fleet-e2e-000002"] {
		t.Fatalf("first tasks %v", first)
	}

	// Blacklist one agent: its task is killed and not replaced.
	bad := agents[0]
	victim := taskOn(t, c, bad)
	res := r.ask(t, Blacklist{AgentID: bad, Reason: "e2e"}).(BlacklistResult)
	if !res.Changed || res.KilledTask != victim || !res.Agent.Blacklisted || res.Agent.Reason != "e2e" {
		t.Fatalf("blacklist result %+v", res)
	}
	waitFor(t, c, "the blacklisted agent's task killed", onePerAgent(c, r, agents[1:]...))
	declined := frameworkView(t, c, fwID).Counters.OffersDeclined
	hold := time.Now().Add(time.Second)
	for time.Now().Before(hold) {
		if ts := live(c)[bad]; len(ts) != 0 {
			t.Fatalf("task relaunched on the blacklisted agent: %+v", ts)
		}
		time.Sleep(20 * time.Millisecond)
	}
	fw := frameworkView(t, c, fwID)
	if fw.Counters.TasksLaunched != 3 || fw.Counters.OffersDeclined <= declined {
		t.Fatalf("while blacklisted: launched %d (want 3), declined %d → %d (want more offers declined)",
			fw.Counters.TasksLaunched, declined, fw.Counters.OffersDeclined)
	}
	if bl := r.ask(t, ListBlacklist{}).([]AgentView); len(bl) != 1 || bl[0].ID != bad || bl[0].LastExit == nil ||
		bl[0].LastExit.TaskID != victim || bl[0].LastExit.State != "TASK_KILLED" || bl[0].Failures != 0 {
		t.Fatalf("blacklist %+v", bl)
	}
	if again := r.ask(t, Blacklist{AgentID: bad}).(BlacklistResult); again.Changed || again.KilledTask != "" {
		t.Fatalf("blacklisting again: %+v", again)
	}
	if _, err := r.s.Ask(context.Background(), Blacklist{AgentID: "no-such-agent"}); !errors.Is(err, ErrUnknownAgent) {
		t.Fatalf("blacklisting an unknown agent: %v", err)
	}

	// Unblacklist it: a new task, with the next id.
	if res := r.ask(t, Unblacklist{AgentID: bad}).(BlacklistResult); !res.Changed || res.Agent.Blacklisted {
		t.Fatalf("unblacklist result %+v", res)
	}
	waitFor(t, c, "a task on the unblacklisted agent", onePerAgent(c, r, agents...))
	if got := taskOn(t, c, bad); got != "fleet-e2e-000003" {
		t.Fatalf("relaunched as %s, want fleet-e2e-000003", got)
	}
	before := map[string]string{}
	for _, a := range agents {
		before[a] = taskOn(t, c, a)
	}

	// Fail over: stop this scheduler, start a fresh one from the store.
	if err := r.stop(t); err != nil {
		t.Fatalf("stop: %v", err)
	}
	snap, err := store.Load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if snap.FrameworkID != fwID || len(snap.Tasks) != 3 {
		t.Fatalf("stored framework %q with %d tasks, want %q with 3", snap.FrameworkID, len(snap.Tasks), fwID)
	}
	fence = persist.Fence{Key: "/regent/fleet-e2e/leader/2", Revision: 2}
	store.SetLeader(fence)
	r = startScheduler(t, cfg, store, fence, c.URL(), snap)
	waitFor(t, c, "re-subscribed and reconciled", func() bool {
		st := r.s.Status()
		return st.Subscribed && !st.Reconciliation.LastDone.IsZero() && !st.Reconciliation.Active && onePerAgent(c, r, agents...)()
	})
	if got := r.s.Status().FrameworkID; got != fwID {
		t.Fatalf("FrameworkID %q after failover, want %q", got, fwID)
	}
	for _, a := range agents {
		if got := taskOn(t, c, a); got != before[a] {
			t.Fatalf("agent %s runs %s after failover, want %s", a, got, before[a])
		}
	}
	fw = frameworkView(t, c, fwID)
	if fw.Counters.TasksLaunched != 4 || fw.Counters.DuplicateTaskIDs != 0 || len(c.Snapshot().Frameworks) != 1 {
		t.Fatalf("after failover: %+v", fw.Counters)
	}
	ts := r.ask(t, ListTasks{}).([]core.Task)
	if len(ts) != 3 || !sort.SliceIsSorted(ts, func(i, j int) bool { return ts[i].ID < ts[j].ID }) {
		t.Fatalf("tasks %+v", ts)
	}

	// The new leader's ids continue the sequence.
	other := agents[1]
	r.ask(t, Blacklist{AgentID: other})
	waitFor(t, c, "the second blacklisted agent's task killed", onePerAgent(c, r, agents[0], agents[2]))
	r.ask(t, Unblacklist{AgentID: other})
	waitFor(t, c, "its replacement", onePerAgent(c, r, agents...))
	if got := taskOn(t, c, other); got != "fleet-e2e-000004" {
		t.Fatalf("new leader launched %s, want fleet-e2e-000004", got)
	}
	fw = frameworkView(t, c, fwID)
	if fw.Counters.TasksLaunched != 5 || fw.Counters.DuplicateTaskIDs != 0 || fw.Counters.TasksInvalid != 0 {
		t.Fatalf("counters %+v", fw.Counters)
	}
	if err := r.stop(t); err != nil {
		t.Fatalf("stop: %v", err)
	}
}

// A command that exits at once is relaunched with backoff, not in a loop
// as fast as offers come.
func TestEndToEndCrashLoopBacksOff(t *testing.T) {
	c := simtest.Start(t, 1, nil)
	store, err := persist.NewMemory("fleet-crash")
	if err != nil {
		t.Fatal(err)
	}
	fence := persist.Fence{Key: "/regent/fleet-crash/leader/1", Revision: 1}
	store.SetLeader(fence)
	cfg := Config{Name: "fleet-crash", Command: "exit 1", BackoffMin: 100 * time.Millisecond, BackoffMax: 400 * time.Millisecond}
	r := startScheduler(t, cfg, store, fence, c.URL(), nil)
	launched := func() int {
		for _, fw := range c.Snapshot().Frameworks {
			return fw.Counters.TasksLaunched
		}
		return 0
	}
	waitFor(t, c, "two launches", func() bool { return launched() >= 2 })
	// Offers come every 50 ms; without backoff a crashing task would be
	// relaunched about every 100 ms. With it: at most about one a second
	// (declines last at least a second).
	n := launched()
	time.Sleep(2 * time.Second)
	t.Logf("%d launches in 2s", launched()-n)
	if got := launched() - n; got < 1 || got > 4 {
		t.Fatalf("%d launches in 2s, want 1 to 4", got)
	}
	agents := r.ask(t, ListAgents{}).([]AgentView)
	if len(agents) != 1 || agents[0].Failures < 2 || agents[0].LastExit == nil || agents[0].LastExit.State != "TASK_FAILED" {
		t.Fatalf("agents %+v", agents)
	}
	fw := c.Snapshot().Frameworks[0]
	if fw.Counters.DuplicateTaskIDs != 0 || fw.Counters.TasksInvalid != 0 {
		t.Fatalf("counters %+v", fw.Counters)
	}
	if err := r.stop(t); err != nil {
		t.Fatalf("stop: %v", err)
	}
}
