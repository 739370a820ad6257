package ha

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/regent-sched/regent/core"
	"github.com/regent-sched/regent/integration/simtest"
	"github.com/regent-sched/regent/integration/testserver"
)

// auditHang is leader work that does not return when asked to stop: once
// armed, the framework's next Tick blocks the scheduler's loop (which then
// cannot see its context end) until released.
type auditHang struct {
	armed   atomic.Bool
	entered chan struct{} // closed when a Tick has blocked
	release chan struct{} // closed to let it return
	once    sync.Once
	free    sync.Once
}

func newAuditHang() *auditHang {
	return &auditHang{entered: make(chan struct{}), release: make(chan struct{})}
}

func (h *auditHang) framework() core.Framework[onePerAgent] {
	return core.FrameworkFunc[onePerAgent](func(s onePerAgent, in core.Input) (onePerAgent, []core.Action) {
		if _, tick := in.Event.(core.Tick); tick && h.armed.Load() {
			h.once.Do(func() { close(h.entered) })
			<-h.release
		}
		return onePerAgentFW(s, in)
	})
}

// hang arms the hang and waits until the scheduler's loop is stuck in it.
func (h *auditHang) hang(t *testing.T) {
	t.Helper()
	h.armed.Store(true)
	select {
	case <-h.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the scheduler's loop never reached the hanging Tick")
	}
}

func (h *auditHang) unhang() {
	h.free.Do(func() {
		h.armed.Store(false)
		close(h.release)
	})
}

// auditLeaderKeys lists the election keys of framework hatest.
func auditLeaderKeys(t *testing.T, cli *clientv3.Client) []string {
	t.Helper()
	resp, err := cli.Get(context.Background(), "/regent/hatest/leader/", clientv3.WithPrefix(),
		clientv3.WithSort(clientv3.SortByCreateRevision, clientv3.SortAscend))
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, kv := range resp.Kvs {
		keys = append(keys, string(kv.Key))
	}
	return keys
}

// Leader work that outlives its term by StopTimeout makes the Runner call
// OnStuck (never earlier, and not for work that stops in time), with an
// error naming the term. Until the work returns, the Runner keeps the term
// (its key stays, so no other replica can be elected while the old work
// may still act), serves nobody, and does not campaign; once the work
// returns it resigns, the next candidate takes over, and Run goes on.
func TestRunStuckWorkCallsOnStuckAndKeepsTheTerm(t *testing.T) {
	const stopTimeout = 700 * time.Millisecond
	cli := testserver.StartEtcd(t).Client(t)
	sim := simtest.Start(t, 1, nil)
	h := newAuditHang()
	type stuckCall struct {
		err error
		at  time.Time
	}
	stuck := make(chan stuckCall, 4)
	a := startReplicaWith(t, cli, "a", []string{sim.URL()}, func(c *Config[onePerAgent]) {
		c.Scheduler.Framework = h.framework()
		c.StopTimeout = stopTimeout
		c.OnStuck = func(err error) { stuck <- stuckCall{err, time.Now()} }
	})
	t.Cleanup(h.unhang) // runs before a's cleanup stops it
	eventually(t, 15*time.Second, "a leads and runs its task", func() bool {
		return a.r.Status().Ready && running(sim, 1)()
	})

	// Work that stops in time: no OnStuck.
	first := a.r.Status().Term
	if err := a.r.StepDown(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "a leads a new term", func() bool {
		st := a.r.Status()
		return st.Ready && st.Term > first
	})
	select {
	case c := <-stuck:
		t.Fatalf("OnStuck called for work that stopped in time: %v", c.err)
	default:
	}

	// Work that does not stop.
	h.hang(t)
	term := a.r.Status().Term
	keys := auditLeaderKeys(t, cli)
	if len(keys) != 1 {
		t.Fatalf("leader keys %v", keys)
	}
	asked := time.Now()
	if err := a.r.StepDown(); err != nil {
		t.Fatal(err)
	}
	b := startReplica(t, cli, "b", []string{sim.URL()})
	var c stuckCall
	select {
	case c = <-stuck:
	case <-time.After(stopTimeout + 15*time.Second):
		t.Fatal("OnStuck not called for work that never stopped")
	}
	if c.at.Sub(asked) < stopTimeout {
		t.Fatalf("OnStuck called %v after the step-down, before StopTimeout %v", c.at.Sub(asked), stopTimeout)
	}
	if c.err == nil || !strings.Contains(c.err.Error(), fmt.Sprintf("term %d", term)) ||
		!strings.Contains(c.err.Error(), "did not stop within "+stopTimeout.String()) {
		t.Fatalf("OnStuck error %v; want it to name term %d and the %v StopTimeout", c.err, term, stopTimeout)
	}

	// OnStuck returned (an embedding program chose not to exit): the term
	// is held, not resigned, while its work may still act.
	hold := time.Now().Add(1500 * time.Millisecond)
	for time.Now().Before(hold) {
		st := a.r.Status()
		if !st.Leading || !st.Stopping || st.Ready || st.Term != term {
			t.Fatalf("a's status while its work is stuck: %+v", st)
		}
		if _, err := a.r.Scheduler(); !errors.Is(err, ErrNotReady) {
			t.Fatalf("a serves its stuck scheduler: %v", err)
		}
		if st := b.r.Status(); st.Leading {
			t.Fatalf("b leads while a's stuck work may still act: %+v", st)
		}
		if now := auditLeaderKeys(t, cli); len(now) == 0 || now[0] != keys[0] {
			t.Fatalf("a's leader key %s gone while its work is stuck (keys %v)", keys[0], now)
		}
		time.Sleep(50 * time.Millisecond)
	}
	select {
	case c := <-stuck:
		t.Fatalf("OnStuck called twice: %v", c.err)
	default:
	}

	// The work returns: a resigns, b (waiting ahead of it) takes over, and
	// a campaigns again as a standby.
	h.unhang()
	eventually(t, 15*time.Second, "b leads, subscribed", func() bool {
		s, err := b.r.Scheduler()
		return err == nil && s.Status().Subscribed
	})
	eventually(t, 5*time.Second, "a is a standby behind b", func() bool {
		st := a.r.Status()
		return !st.Leading && st.Leader.ID == "b"
	})
	eventually(t, 10*time.Second, "the task still runs", running(sim, 1))
	if fw := sim.Snapshot().Frameworks[0]; fw.Counters.TasksLaunched != 1 || fw.Counters.DuplicateTaskIDs != 0 {
		t.Fatalf("after the stuck term: %+v", fw.Counters)
	}
}

// auditStuckChild is set in the environment of the child process that
// TestRunStuckWorkDefaultExitsWithStatus3 runs.
const auditStuckChild = "REGENT_AUDIT_STUCK_CHILD"

// Without an OnStuck of the embedding program's, stuck leader work ends
// the process with status 3, after logging why — the documented default.
// The scenario runs in a child process (this test binary again).
func TestRunStuckWorkDefaultExitsWithStatus3(t *testing.T) {
	if os.Getenv(auditStuckChild) == "1" {
		auditStuckChildMain(t)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestRunStuckWorkDefaultExitsWithStatus3$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), auditStuckChild+"=1")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 3 {
		t.Fatalf("child ended with %v, want exit status 3; output:\n%s", err, out.String())
	}
	for _, want := range []string{"child: stepped down with its work stuck", "leader work outlived its term", "did not stop within"} {
		if !strings.Contains(out.String(), want) {
			t.Fatalf("child output lacks %q:\n%s", want, out.String())
		}
	}
}

func auditStuckChildMain(t *testing.T) {
	cli := testserver.StartEtcd(t).Client(t)
	sim := simtest.Start(t, 1, nil)
	h := newAuditHang()
	log := zap.New(zapcore.NewCore(zapcore.NewConsoleEncoder(zap.NewDevelopmentEncoderConfig()),
		zapcore.Lock(os.Stderr), zap.WarnLevel))
	a := startReplicaWith(t, cli, "a", []string{sim.URL()}, func(c *Config[onePerAgent]) {
		c.Scheduler.Framework = h.framework()
		c.StopTimeout = 300 * time.Millisecond
		c.Logger = log // OnStuck left to its default, which logs here
	})
	t.Cleanup(h.unhang)
	eventually(t, 15*time.Second, "a leads", func() bool { return a.r.Status().Ready })
	h.hang(t)
	if err := a.r.StepDown(); err != nil {
		t.Fatal(err)
	}
	fmt.Fprintln(os.Stderr, "child: stepped down with its work stuck")
	time.Sleep(30 * time.Second)
	t.Fatal("child: still alive 30s after its stuck work outlived the 300ms StopTimeout")
}
