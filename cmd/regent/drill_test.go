package main

import (
	"context"
	"encoding/json"
	"errors"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/regent-sched/regent/cmd/regent/internal/api"
	"github.com/regent-sched/regent/cmd/regent/internal/fleet"
	"github.com/regent-sched/regent/core"
	"github.com/regent-sched/regent/ha"
)

func task(id, agent string, state mesos.TaskState) core.Task {
	return core.Task{ID: id, AgentID: agent, State: state}
}

// TestCompareTasks feeds the comparison hand-made task lists, one
// violation kind per case, and checks the report names what is wrong.
func TestCompareTasks(t *testing.T) {
	running := []core.Task{
		task("t1", "S1", mesos.TASK_RUNNING),
		task("t2", "S2", mesos.TASK_RUNNING),
		task("t3", "S3", mesos.TASK_RUNNING),
	}
	exit := func(agent, id, state string) fleet.AgentView {
		return fleet.AgentView{ID: agent, LastExit: &fleet.Exit{TaskID: id, State: state}}
	}
	cases := []struct {
		name   string
		before []core.Task
		after  []core.Task
		agents []fleet.AgentView
		// want holds one substring list per expected violation, in order.
		want [][]string
		// check is a substring of some check line.
		check string
	}{
		{name: "unchanged", before: running, after: running, check: "3 running tasks kept their ids and agents: t1, t2, t3"},
		{name: "lost", before: running, after: running[:2],
			want: [][]string{{"task t3", "agent S3", "lost", "unknown to the new leader", "nothing runs on the agent"}}},
		{name: "relaunched under another id", before: running,
			after: []core.Task{running[0], running[1], task("t4", "S3", mesos.TASK_RUNNING)},
			want:  [][]string{{"task t3", "agent S3", "unknown to the new leader", "relaunched as t4"}}},
		{name: "two tasks on one agent", before: running,
			after: []core.Task{running[0], running[1], running[2], task("t4", "S3", mesos.TASK_STAGING)},
			want:  [][]string{{"agent S3 runs 2 tasks, want at most 1", "t3 (TASK_RUNNING)", "t4 (TASK_STAGING)"}}},
		{name: "moved to another agent", before: running,
			after: []core.Task{running[0], running[1], task("t3", "S9", mesos.TASK_RUNNING)},
			want:  [][]string{{"task t3", "on agent S3 before, on agent S9 after"}}},
		{name: "no longer running", before: running,
			after: []core.Task{running[0], running[1], task("t3", "S3", mesos.TASK_UNREACHABLE)},
			want:  [][]string{{"task t3 on agent S3", "TASK_RUNNING before, TASK_UNREACHABLE after", "nothing replaced it"}}},
		{name: "killed and relaunched", before: running,
			after:  []core.Task{running[0], running[1], task("t4", "S3", mesos.TASK_RUNNING)},
			agents: []fleet.AgentView{exit("S3", "t3", "TASK_KILLED")},
			want:   [][]string{{"task t3 on agent S3", "ended TASK_KILLED", "relaunched as t4"}}},
		{name: "finished, not replaced", before: running, after: running[:2],
			agents: []fleet.AgentView{exit("S3", "t3", "TASK_FINISHED")},
			want:   [][]string{{"task t3 on agent S3", "ended TASK_FINISHED and nothing replaced it"}}},
		{name: "finished and replaced", before: running,
			after:  []core.Task{running[0], running[1], task("t4", "S3", mesos.TASK_RUNNING)},
			agents: []fleet.AgentView{exit("S3", "t3", "TASK_FINISHED")},
			check:  "ended on their own and replaced: t3 on agent S3 (TASK_FINISHED) by t4"},
		{name: "another task's exit does not excuse", before: running,
			after:  []core.Task{running[0], running[1], task("t5", "S3", mesos.TASK_RUNNING)},
			agents: []fleet.AgentView{exit("S3", "t4", "TASK_FINISHED")},
			want:   [][]string{{"task t3 on agent S3", "no end recorded", "last exit is task t4, TASK_FINISHED", "relaunched as t5"}}},
		{name: "a launch in flight names its agent in its data",
			before: running[:1],
			after:  []core.Task{running[0], {ID: "t9", State: mesos.TASK_STAGING, Data: []byte("S1")}},
			want:   [][]string{{"agent S1 runs 2 tasks", "t1 (TASK_RUNNING)", "t9 (TASK_STAGING)"}}},
		{name: "tasks not yet running before are not held to it",
			before: []core.Task{task("t1", "S1", mesos.TASK_STAGING)}, after: nil,
			check: "not compared, not running before the first step-down: t1 (TASK_STAGING)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			checks, violations := compareTasks(tc.before, tc.after, tc.agents)
			if len(violations) != len(tc.want) {
				t.Fatalf("violations %q, want %d", violations, len(tc.want))
			}
			for i, want := range tc.want {
				for _, w := range want {
					if !strings.Contains(violations[i], w) {
						t.Errorf("violation %q lacks %q", violations[i], w)
					}
				}
			}
			if tc.check != "" && !strings.Contains(strings.Join(checks, "\n"), tc.check) {
				t.Errorf("checks %q lack %q", checks, tc.check)
			}
		})
	}
}

func TestCheckReconciled(t *testing.T) {
	at := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	leader := ha.LeaderInfo{Candidate: ha.Candidate{ID: "replica-2"}, Token: 7}
	for _, tc := range []struct {
		rec  core.ReconcileStatus
		ok   bool
		want string
	}{
		{core.ReconcileStatus{}, false, "leader replica-2 (token 7) never started reconciliation"},
		{core.ReconcileStatus{Active: true, Started: at, Rounds: 3, Pending: 2}, false, "has not finished it: 2 tasks pending after 3 rounds"},
		{core.ReconcileStatus{Started: at, LastDone: at.Add(time.Second), LastRounds: 1, LastDuration: time.Second}, true, "leader replica-2 finished reconciling"},
	} {
		msg, ok := checkReconciled(api.Info{Leader: leader, Reconciliation: tc.rec})
		if ok != tc.ok || !strings.Contains(msg, tc.want) {
			t.Errorf("%+v: %v %q, want %v %q", tc.rec, ok, msg, tc.ok, tc.want)
		}
	}
}

func TestCheckFrameworkIDAndReconcileStarted(t *testing.T) {
	info := func(leader, fw string, started bool) api.Info {
		i := api.Info{Leader: ha.LeaderInfo{Candidate: ha.Candidate{ID: leader}}, Framework: api.FrameworkInfo{ID: fw}}
		if started {
			i.Reconciliation.Started = time.Now()
		}
		return i
	}
	before := info("r1", "fw-1", true)
	takeovers := []api.Info{info("r2", "fw-1", true), info("r3", "fw-2", false)}
	final := info("r3", "fw-2", true)
	_, v := checkFrameworkID(before, takeovers, &final)
	if len(v) != 2 || !strings.Contains(v[0], "run 2: leader r3 subscribed with FrameworkID fw-2, want fw-1") ||
		!strings.Contains(v[1], "after the drill: leader r3 has FrameworkID fw-2, want fw-1") {
		t.Errorf("FrameworkID violations %q", v)
	}
	_, v = checkReconcileStarted(takeovers)
	if len(v) != 1 || !strings.Contains(v[0], "run 2: leader r3") || !strings.Contains(v[0], "not started reconciliation") {
		t.Errorf("reconciliation violations %q", v)
	}
	if check, v := checkFrameworkID(before, takeovers[:1], nil); len(v) != 0 || check != "one FrameworkID throughout: fw-1" {
		t.Errorf("one FrameworkID: %q %q", check, v)
	}
}

// The soak's pauses come from the seed alone: the seed in a report
// replays them.
func TestSoakPausesReplay(t *testing.T) {
	draw := func(seed uint64) []time.Duration {
		rng := soakRand(seed)
		out := make([]time.Duration, 50)
		for i := range out {
			out[i] = soakPause(rng)
			if out[i] < 0 || out[i] > maxSoakPause {
				t.Fatalf("pause %v outside 0 to %v", out[i], maxSoakPause)
			}
		}
		return out
	}
	a, b, c := draw(7), draw(7), draw(8)
	if !slices.Equal(a, b) || slices.Equal(a, c) {
		t.Errorf("seed 7 drew %v then %v; seed 8 drew %v", a, b, c)
	}
}

// Bad flags of a drill against a running cluster fail at once, before
// any request, naming the flag.
func TestDrillRejectsBadFlags(t *testing.T) {
	bin := regentBinary(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"drill", "soak", "--duration", "0s"}, "--duration 0s: a soak against a running cluster wants more than 0 and at most 1h0m0s"},
		{[]string{"drill", "soak", "--duration", "-5s"}, "--duration -5s"},
		{[]string{"drill", "soak", "--duration", "2h"}, "--duration 2h0m0s: a soak against a running cluster wants more than 0 and at most 1h0m0s"},
		{[]string{"drill", "soak", "--duration", "soon"}, `invalid argument "soon" for "--duration"`},
		{[]string{"drill", "soak", "--timeout", "0s"}, "--timeout 0s: want more than 0"},
		{[]string{"drill", "step-down", "--seed", "3"}, "--duration and --seed apply to soak"},
		{[]string{"drill", "kill-leader"}, "against a running cluster only step-down and soak run; the others need --local"},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		// Nothing listens at --addr: a check that came too late would
		// show as a connection error or a timeout.
		out, err := exec.CommandContext(ctx, bin, append(tc.args, "--addr", "http://127.0.0.1:1")...).CombinedOutput()
		cancel()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != exitError || !strings.HasPrefix(string(out), "regent: ") ||
			!strings.Contains(string(out), tc.want) {
			t.Errorf("regent %v: %v, want exit status %d and %q:\n%s", tc.args, err, exitError, tc.want, out)
		}
	}
}

// TestDrillAgainstRunningCluster runs `regent drill step-down` and a short
// `regent drill soak` against a healthy `regent dev`: every check passes.
func TestDrillAgainstRunningCluster(t *testing.T) {
	d := startDev(t, "--election-ttl", "2s")
	// Registered after startDev's cleanup, this runs first: a graceful stop
	// takes the replicas down too, also when the test fails early.
	t.Cleanup(func() { stopDev(t, d) })
	m, _ := d.waitLine(t, regexp.MustCompile(`^regent dev is up: status page (http://\S+)/ `), 0, 60*time.Second)
	addr := m[1]
	bin := regentBinary(t)
	drill := func(args ...string) drillReport {
		t.Helper()
		out, err := exec.Command(bin, append([]string{"drill", "--addr", addr, "-o", "json"}, args...)...).Output()
		var rep drillReport
		if err != nil || json.Unmarshal(out, &rep) != nil {
			t.Fatalf("regent drill %v: %v\n%s", args, err, out)
		}
		if len(rep.Violations) != 0 || len(rep.Runs) == 0 {
			t.Errorf("regent drill %v: %+v", args, rep)
		}
		want := []string{"one FrameworkID throughout", "every new leader started reconciliation",
			"3 running tasks kept their ids and agents", "no agent runs two tasks", "finished reconciling"}
		for _, w := range want {
			if !strings.Contains(strings.Join(rep.Checks, "\n"), w) {
				t.Errorf("regent drill %v: checks lack %q: %q", args, w, rep.Checks)
			}
		}
		return rep
	}
	if rep := drill("step-down", "--runs", "2"); len(rep.Runs) != 2 || rep.Runs[0].From == rep.Runs[0].To || rep.Runs[1].Pause != "" {
		t.Errorf("step-down runs %+v", rep.Runs)
	}
	rep := drill("soak", "--duration", "3s", "--seed", "7")
	if rep.Drill != "soak" || rep.Seed != 7 || rep.Duration != "3s" {
		t.Errorf("soak report %+v, want seed 7 for 3s", rep)
	}
	// The pauses are the seed's first draws (the first step-down is at once).
	rng := soakRand(7)
	for i, r := range rep.Runs[1:] {
		if want := soakPause(rng).String(); r.Pause != want {
			t.Errorf("run %d paused %s, the seed says %s", i+2, r.Pause, want)
		}
	}
	out, err := exec.Command(bin, "drill", "soak", "--addr", addr, "--duration", "1s", "--seed", "9").CombinedOutput()
	for _, w := range []string{"DRILL soak against " + addr + ", seed 9, for 1s", "PAUSE", "ok: 3 running tasks kept", "no violation"} {
		if err != nil || !strings.Contains(string(out), w) {
			t.Errorf("regent drill soak table lacks %q (%v):\n%s", w, err, out)
		}
	}
}

// stopDev stops `regent dev` as Ctrl-C would, so that it takes its
// replicas down with it.
func stopDev(t *testing.T, d *devTopology) {
	t.Helper()
	if err := d.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Errorf("stop regent dev: %v", err)
		return
	}
	select {
	case err := <-d.done:
		if err != nil {
			t.Errorf("regent dev exited with %v", err)
		}
	case <-time.After(40 * time.Second):
		t.Error("regent dev did not stop within 40s of SIGINT")
	}
}
