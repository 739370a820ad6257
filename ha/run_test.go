package ha

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/regent-sched/regent/core"
	"github.com/regent-sched/regent/integration/simtest"
	"github.com/regent-sched/regent/integration/testserver"
	"github.com/regent-sched/regent/persist"
)

// onePerAgent keeps one task on every agent.
type onePerAgent struct{ Next int }

func onePerAgentFW(s onePerAgent, in core.Input) (onePerAgent, []core.Action) {
	ev, ok := in.Event.(core.OffersReceived)
	if !ok {
		return s, nil
	}
	busy := map[string]bool{}
	in.Tasks.Range(func(t core.Task) bool { busy[t.AgentID] = true; return true })
	var acts []core.Action
	for _, o := range ev.Offers {
		if busy[o.AgentID.Value] {
			continue
		}
		busy[o.AgentID.Value] = true
		id := fmt.Sprintf("task-%d", s.Next)
		s.Next++
		cmd := "sleep 3600"
		acts = append(acts, core.Launch{OfferIDs: []string{o.ID.Value}, Tasks: []mesos.TaskInfo{{
			Name: id, TaskID: mesos.TaskID{Value: id}, AgentID: o.AgentID, Command: &mesos.CommandInfo{Value: &cmd},
			Resources: []mesos.Resource{core.Scalar("cpus", 0.1), core.Scalar("mem", 32)}}}})
	}
	return s, acts
}

// replica is one Runner with its own elector and store over a shared etcd.
type replica struct {
	r *Runner[onePerAgent]
	*simtest.Background
}

func startReplica(t *testing.T, cli *clientv3.Client, id string, masters []string) *replica {
	t.Helper()
	return startReplicaWith(t, cli, id, masters, nil)
}

// startReplicaWith lets a test change the Runner's config before New.
func startReplicaWith(t *testing.T, cli *clientv3.Client, id string, masters []string, edit func(*Config[onePerAgent])) *replica {
	t.Helper()
	log := zaptest.NewLogger(t).Named(id)
	el, err := NewEtcd(cli, EtcdOptions{Framework: "hatest", Candidate: Candidate{ID: id}, TTL: 2 * time.Second, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	store, err := persist.NewEtcd(cli, persist.EtcdOptions{Framework: "hatest", Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	return startRunner(t, el, store, log, masters, edit)
}

// recordTransitions makes a Runner append every Status it reports to
// *seen, under mu.
func recordTransitions(mu *sync.Mutex, seen *[]Status) func(*Config[onePerAgent]) {
	return func(c *Config[onePerAgent]) {
		c.OnTransition = func(st Status) { mu.Lock(); *seen = append(*seen, st); mu.Unlock() }
	}
}

// startRunner runs a Runner of the one-task-per-agent framework "hatest"
// on el and store with quick test timings (edit may change its config),
// and stops it and closes both at the end of the test.
func startRunner(t *testing.T, el Elector, store persist.Store, log *zap.Logger, masters []string, edit func(*Config[onePerAgent])) *replica {
	t.Helper()
	cfg := Config[onePerAgent]{
		Elector: el,
		Store:   store,
		Scheduler: core.Config[onePerAgent]{
			Framework:     core.FrameworkFunc[onePerAgent](onePerAgentFW),
			Masters:       masters,
			FrameworkInfo: mesos.FrameworkInfo{User: "root", Name: "hatest"},
			BackoffMin:    50 * time.Millisecond, BackoffMax: 500 * time.Millisecond,
			ReconcileMin: 100 * time.Millisecond, ReconcileMax: time.Second,
			TickInterval: 50 * time.Millisecond, Logger: log,
		},
		BackoffMin: 50 * time.Millisecond, BackoffMax: 500 * time.Millisecond,
		Logger: log,
	}
	if edit != nil {
		edit(&cfg)
	}
	r, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	rep := &replica{r: r, Background: simtest.Go(r.Run)}
	t.Cleanup(func() {
		rep.stop(t)
		el.Close()
		store.Close()
	})
	return rep
}

func (rep *replica) stop(t *testing.T) error { return rep.Stop(t, 15*time.Second) }

var (
	eventually = simtest.Eventually
	running    = simtest.Running
)

func TestRunGracefulHandOverKeepsFrameworkAndTasks(t *testing.T) {
	cli := testserver.StartEtcd(t).Client(t)
	sim := simtest.Start(t, 3, nil)
	a := startReplica(t, cli, "a", []string{sim.URL()})
	eventually(t, 15*time.Second, "a leads and runs 3 tasks", func() bool {
		return a.r.Status().Ready && running(sim, 3)()
	})
	b := startReplica(t, cli, "b", []string{sim.URL()})
	eventually(t, 5*time.Second, "b sees a lead", func() bool {
		st := b.r.Status()
		return !st.Leading && st.Leader.ID == "a"
	})
	if _, err := b.r.Scheduler(); !errors.Is(err, ErrNotReady) {
		t.Fatalf("standby scheduler: %v", err)
	}
	fwID := sim.Snapshot().Frameworks[0].ID
	if err := a.stop(t); err != nil {
		t.Fatalf("a stopped with %v", err)
	}
	if st := a.r.Status(); st.Leading || st.Transitions != 2 {
		t.Fatalf("a after stop: %+v", st)
	}
	eventually(t, 10*time.Second, "b leads, re-subscribed and reconciled", func() bool {
		s, err := b.r.Scheduler()
		if err != nil {
			return false
		}
		st := s.Status()
		return st.Subscribed && st.Reconciliation.LastRounds > 0 && !st.Reconciliation.Active
	})
	eventually(t, 10*time.Second, "tasks running under b", running(sim, 3))
	fw := sim.Snapshot().Frameworks[0]
	if fw.ID != fwID || fw.Counters.TasksLaunched != 3 || fw.Counters.DuplicateTaskIDs != 0 || fw.Counters.FailedOver != 0 {
		t.Fatalf("after hand-over: %+v", fw)
	}
	if st := b.r.Status(); !st.Leading || st.Leader.ID != "b" {
		t.Fatalf("b status %+v", st)
	}
}

func TestRunLostTermReloadsAndLeadsAgain(t *testing.T) {
	cli := testserver.StartEtcd(t).Client(t)
	sim := simtest.Start(t, 2, nil)
	a := startReplica(t, cli, "a", []string{sim.URL()})
	eventually(t, 15*time.Second, "a leads and runs 2 tasks", running(sim, 2))
	first := a.r.Status().Term
	// Revoke a's lease behind its back: its term ends, its scheduler stops,
	// and it wins a new term with state reloaded from the store.
	resp, err := cli.Get(context.Background(), "/regent/hatest/leader/", clientv3.WithPrefix())
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("leader keys %v %v", resp, err)
	}
	if _, err := cli.Revoke(context.Background(), clientv3.LeaseID(resp.Kvs[0].Lease)); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "a leads a new term", func() bool {
		st := a.r.Status()
		return st.Ready && st.Term > first
	})
	eventually(t, 10*time.Second, "same tasks running", running(sim, 2))
	fw := sim.Snapshot().Frameworks[0]
	if fw.Counters.TasksLaunched != 2 || fw.Counters.DuplicateTaskIDs != 0 {
		t.Fatalf("relaunched after a lost term: %+v", fw.Counters)
	}
}

func TestRunRefusesACorruptStore(t *testing.T) {
	cli := testserver.StartEtcd(t).Client(t)
	if _, err := cli.Put(context.Background(), "/regent/hatest/manifest", "not a manifest"); err != nil {
		t.Fatal(err)
	}
	sim := simtest.Start(t, 1, nil)
	a := startReplica(t, cli, "a", []string{sim.URL()})
	if err := a.Wait(t, 10*time.Second); !errors.Is(err, ErrFatal) || !errors.Is(err, persist.ErrCorrupt) {
		t.Fatalf("Run returned %v, want ErrFatal wrapping persist.ErrCorrupt", err)
	}
	// Nothing was overwritten, and no framework registered.
	got, _ := cli.Get(context.Background(), "/regent/hatest/manifest")
	if string(got.Kvs[0].Value) != "not a manifest" || len(sim.Snapshot().Frameworks) != 0 {
		t.Fatalf("store or Mesos touched: %q %v", got.Kvs[0].Value, sim.Snapshot().Frameworks)
	}
}

func TestConfigValidation(t *testing.T) {
	cli := testserver.StartEtcd(t).Client(t)
	el, _ := NewEtcd(cli, EtcdOptions{Framework: "v"})
	store, _ := persist.NewMemory("v")
	good := Config[onePerAgent]{Elector: el, Store: store, Scheduler: core.Config[onePerAgent]{
		Framework: core.FrameworkFunc[onePerAgent](onePerAgentFW), Masters: []string{"http://127.0.0.1:1"},
		FrameworkInfo: mesos.FrameworkInfo{User: "u", Name: "v"}}}
	for name, mod := range map[string]func(*Config[onePerAgent]){
		"no elector":      func(c *Config[onePerAgent]) { c.Elector = nil },
		"no store":        func(c *Config[onePerAgent]) { c.Store = nil },
		"no framework":    func(c *Config[onePerAgent]) { c.Scheduler.Framework = nil },
		"no master":       func(c *Config[onePerAgent]) { c.Scheduler.Masters = nil },
		"backoff":         func(c *Config[onePerAgent]) { c.BackoffMin, c.BackoffMax = time.Second, time.Millisecond },
		"negative stop":   func(c *Config[onePerAgent]) { c.StopTimeout = -time.Second },
		"no name in info": func(c *Config[onePerAgent]) { c.Scheduler.FrameworkInfo.Name = "" },
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

// StepDown moves the leadership to the next candidate without stopping
// the replica: it keeps campaigning, behind the others, and leads again
// when they step down in turn.
func TestRunStepDownMovesLeadership(t *testing.T) {
	cli := testserver.StartEtcd(t).Client(t)
	sim := simtest.Start(t, 2, nil)
	a := startReplica(t, cli, "a", []string{sim.URL()})
	eventually(t, 15*time.Second, "a leads and runs 2 tasks", func() bool {
		return a.r.Status().Ready && running(sim, 2)()
	})
	b := startReplica(t, cli, "b", []string{sim.URL()})
	eventually(t, 5*time.Second, "b sees a lead", func() bool { return b.r.Status().Leader.ID == "a" })
	if err := b.r.StepDown(); !errors.Is(err, ErrNotLeading) {
		t.Fatalf("StepDown on a standby: %v", err)
	}
	fwID := sim.Snapshot().Frameworks[0].ID
	for _, hop := range []struct{ from, to *replica }{{a, b}, {b, a}} {
		if err := hop.from.r.StepDown(); err != nil {
			t.Fatal(err)
		}
		eventually(t, 10*time.Second, "the other replica leads and is subscribed", func() bool {
			s, err := hop.to.r.Scheduler()
			return err == nil && s.Status().Subscribed
		})
		eventually(t, 5*time.Second, "the one that stepped down campaigns as a standby", func() bool {
			st := hop.from.r.Status()
			return !st.Leading && st.Leader.ID == hop.to.r.Status().Leader.ID
		})
	}
	eventually(t, 10*time.Second, "tasks running", running(sim, 2))
	fw := sim.Snapshot().Frameworks[0]
	if fw.ID != fwID || fw.Counters.TasksLaunched != 2 || fw.Counters.DuplicateTaskIDs != 0 {
		t.Fatalf("after two step-downs: %+v", fw)
	}
}

// From the moment a leader is asked to step down it serves nobody: the
// next leader may be elected before it has resigned, and a request served
// by its stopping scheduler would report a subscription that is gone (a
// drill once took such an answer for the new leader's).
func TestRunStoppingLeaderServesNobody(t *testing.T) {
	cli := testserver.StartEtcd(t).Client(t)
	sim := simtest.Start(t, 1, nil)
	var mu sync.Mutex
	var seen []Status
	a := startReplicaWith(t, cli, "a", []string{sim.URL()}, recordTransitions(&mu, &seen))
	var s *core.Scheduler[onePerAgent]
	eventually(t, 15*time.Second, "a leads, subscribed", func() bool {
		var err error
		s, err = a.r.Scheduler()
		return err == nil && s.Status().Subscribed
	})
	mu.Lock()
	seen = nil
	mu.Unlock()
	if err := a.r.StepDown(); err != nil {
		t.Fatal(err)
	}
	// a campaigns again and, alone, wins again: look at its first term's end.
	over := -1
	eventually(t, 10*time.Second, "a's term over", func() bool {
		mu.Lock()
		defer mu.Unlock()
		for i, st := range seen {
			if !st.Leading {
				over = i
				return true
			}
		}
		return false
	})
	if s.Status().Subscribed {
		t.Errorf("the stopped scheduler still says it is subscribed: %+v", s.Status())
	}
	mu.Lock()
	defer mu.Unlock()
	seen = seen[:over+1]
	stopping := -1
	for i, st := range seen {
		if st.Stopping && stopping < 0 {
			stopping = i
			if st.Ready || !st.Leading {
				t.Errorf("first stopping status %+v: want leading, not ready", st)
			}
		}
		if st.Ready {
			t.Errorf("status %d after the step-down is ready: %+v", i, st)
		}
	}
	if stopping < 0 || seen[len(seen)-1].Leading || seen[len(seen)-1].Stopping {
		t.Errorf("transitions after the step-down: %+v", seen)
	}
}

// A scheduler outside the group subscribing with the framework's id while
// this replica's term is valid is fatal ("Framework failed over" that no
// replica of the group caused); the same error on a term that is ending is
// not (a deposed leader's stream closed by its successor: see the drills).
func TestRunOutsiderFailoverIsFatal(t *testing.T) {
	cli := testserver.StartEtcd(t).Client(t)
	sim := simtest.Start(t, 1, nil)
	a := startReplica(t, cli, "a", []string{sim.URL()})
	eventually(t, 15*time.Second, "a leads and runs its task", func() bool {
		return a.r.Status().Ready && running(sim, 1)()
	})
	fwID := sim.Snapshot().Frameworks[0].ID
	body := fmt.Sprintf(`{"type":"SUBSCRIBE","framework_id":{"value":%q},"subscribe":{"framework_info":{"user":"root","name":"hatest","id":{"value":%q},"failover_timeout":3600}}}`, fwID, fwID)
	req, err := http.NewRequest("POST", sim.URL()+"/api/v1/scheduler", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("outsider SUBSCRIBE: %s", resp.Status)
	}
	if err := a.Wait(t, 15*time.Second); !errors.Is(err, ErrFatal) || !errors.Is(err, core.ErrFailedOver) {
		t.Fatalf("Run ended with %v, want ErrFatal wrapping core.ErrFailedOver", err)
	}
}

// deposed judges a "Framework failed over": a term past its own local
// deadline is over even before its monitor noticed (a leader thawed after
// SIGSTOP runs the check before the monitor's goroutine does); a term
// that keeps being extended past the wait is not (an outsider subscribed).
func TestDeposedJudgesByTheTermsDeadline(t *testing.T) {
	r := &Runner[onePerAgent]{cfg: Config[onePerAgent]{StopTimeout: time.Second}}
	frozen := newTerm(persist.Fence{}, 1, nil)
	frozen.extend(time.Now().Add(-time.Minute))
	start := time.Now()
	if !r.deposed(frozen) || time.Since(start) > 500*time.Millisecond {
		t.Errorf("a term past its deadline: not deposed at once (%v)", time.Since(start))
	}

	live := newTerm(persist.Fence{}, 2, nil)
	live.extend(time.Now().Add(200 * time.Millisecond))
	stop := make(chan struct{})
	defer close(stop)
	go func() { // the keepalive goes on
		for {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
				live.extend(time.Now().Add(200 * time.Millisecond))
			}
		}
	}()
	if r.deposed(live) {
		t.Error("a term kept alive was judged deposed")
	}

	ended := newTerm(persist.Fence{}, 3, nil)
	ended.extend(time.Now().Add(time.Hour))
	ended.cancel(ErrLeadershipLost)
	if !r.deposed(ended) {
		t.Error("an ended term was not judged deposed")
	}
}

// A leader names itself from the moment it wins, without waiting for the
// store's view of the election to reach it; a standby names the leader the
// store shows. The ready leader's Status carries its scheduler's snapshot.
func TestStatusNamesTheLeaderAtOnce(t *testing.T) {
	cli := testserver.StartEtcd(t).Client(t)
	sim := simtest.Start(t, 1, nil)
	var mu sync.Mutex
	var seen []Status
	a := startReplicaWith(t, cli, "a", []string{sim.URL()}, recordTransitions(&mu, &seen))
	eventually(t, 15*time.Second, "a ready and subscribed", func() bool {
		st := a.r.Status()
		return st.Ready && st.Scheduler != nil && st.Scheduler.Subscribed
	})
	b := startReplica(t, cli, "b", []string{sim.URL()})
	eventually(t, 10*time.Second, "b sees a lead", func() bool { return b.r.Status().Leader.ID == "a" })
	if st := b.r.Status(); st.Leading || st.Scheduler != nil {
		t.Errorf("standby b: %+v", st)
	}
	st := a.r.Status()
	if st.Leader.ID != "a" || st.Leader.Token != st.Term {
		t.Errorf("leader a names %+v (term %d)", st.Leader, st.Term)
	}
	if st.Scheduler.FrameworkID == "" || st.Scheduler.Reconciliation.Rounds == 0 && st.Scheduler.Reconciliation.LastDone.IsZero() {
		t.Errorf("ready leader's scheduler snapshot: %+v", *st.Scheduler)
	}
	mu.Lock()
	defer mu.Unlock()
	for i, st := range seen {
		if st.Leading && (st.Leader.ID != "a" || st.Leader.Token != st.Term) {
			t.Errorf("transition %d: leading but names %+v as leader (term %d)", i, st.Leader, st.Term)
		}
		if st.Scheduler != nil {
			t.Errorf("transition %d carries a scheduler snapshot", i)
		}
	}
}
