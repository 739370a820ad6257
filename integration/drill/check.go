package drill

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/regent-sched/regent/integration/mesossim"
)

// Violation is a broken invariant, with the calls Mesos saw around it.
type Violation struct {
	Rule   string
	At     time.Time
	Detail string
	Around []mesossim.CallRecord
}

func (v Violation) String() string {
	var b strings.Builder
	if v.At.IsZero() { // known by store revision only
		fmt.Fprintf(&b, "%s: %s", v.Rule, v.Detail)
	} else {
		fmt.Fprintf(&b, "%s at %s: %s", v.Rule, v.At.Format("15:04:05.000"), v.Detail)
	}
	for _, c := range v.Around {
		fmt.Fprintf(&b, "\n    %s %-12s framework=%s stream=%s -> %d", c.At.Format("15:04:05.000"), c.Type, c.FrameworkID, c.StreamID, c.Status)
	}
	return b.String()
}

// ReconcileBound is how soon after SUBSCRIBED a leader must have started
// reconciling.
const ReconcileBound = 5 * time.Second

// Check reads what Mesos saw (the call journal and the simulator's state)
// and what the leader reports, and returns every violation of the
// invariants of shared/DESIGN.md it can judge from outside:
//
//   - one-framework: every SUBSCRIBE carried the same FrameworkID, and
//     Mesos knows one framework (a replica that minted a second one, or a
//     scheduler outside the group, breaks it);
//   - deposed-leader: Mesos accepted no call on a stream other than the
//     latest subscription's (calls of a deposed leader after fencing);
//   - deposed-call: no call (accepted or not) on a stream reached Mesos
//     after the election key of the term that subscribed it had vanished,
//     unless that replica was frozen meanwhile (see calls.go);
//   - deposed-commit: every commit in the store was made by the term that
//     led when it landed, and terms never go backwards from one
//     generation to the next (see fencing.go: exact in etcd, from what a
//     watcher saw in ZooKeeper); store-history when that could not be
//     read;
//   - reconcile: every subscription started reconciling within
//     ReconcileBound, unless it was superseded first;
//   - one-per-slot: no agent runs two tasks of the framework, no task id
//     was launched twice;
//   - forgotten: every task Mesos runs is in the leader's state;
//   - acked-before-commit: when an ACKNOWLEDGE reached Mesos, the store
//     (read right then, before Mesos handled it) already held what the
//     acknowledged update said.
func (tp *Topology) Check(ctx context.Context) []Violation {
	calls := tp.Calls()
	var out []Violation
	around := func(at time.Time) []mesossim.CallRecord {
		var a []mesossim.CallRecord
		for _, c := range calls {
			if d := c.At.Sub(at); d > -time.Second && d < time.Second && len(a) < 12 {
				a = append(a, c)
			}
		}
		return a
	}
	add := func(rule string, at time.Time, format string, args ...any) {
		out = append(out, Violation{Rule: rule, At: at, Detail: fmt.Sprintf(format, args...), Around: around(at)})
	}

	framework, current := "", ""
	type sub struct {
		stream string
		at     time.Time
	}
	var subs []sub
	acked := map[string]bool{} // task/uuid of the updates judged
	for _, c := range calls {
		if c.Status >= 300 {
			continue
		}
		if c.Type == "SUBSCRIBE" {
			if framework == "" {
				framework = c.FrameworkID
			} else if c.FrameworkID != framework {
				add("one-framework", c.At, "SUBSCRIBE as %s, but the framework is %s", c.FrameworkID, framework)
			}
			current = c.StreamID
			subs = append(subs, sub{c.StreamID, c.At})
			continue
		}
		if c.StreamID != current {
			add("deposed-leader", c.At, "%s accepted on stream %s after stream %s subscribed", c.Type, c.StreamID, current)
		}
		// An update is judged at its first accepted ack: one sent again
		// (a master failover lost the ack on its way to the agent) may be
		// acked again after the task ended and the store forgot it.
		if c.Type == "ACKNOWLEDGE" && c.AckedState != "" && c.FrameworkID == framework && !acked[c.TaskID+"/"+c.AckUUID] {
			acked[c.TaskID+"/"+c.AckUUID] = true
			if msg := judgeAck(ackOf(c.Before), c.AckedState); msg != "" {
				add("acked-before-commit", c.At, "task %s: %s", c.TaskID, msg)
			}
		}
	}
	tp.deposedCalls(calls, tp.election.goneAt, add)
	for i, s := range subs {
		deadline := s.at.Add(ReconcileBound)
		if i+1 < len(subs) && subs[i+1].at.Before(deadline) {
			continue // superseded before the bound
		}
		if time.Now().Before(deadline) {
			continue // too recent to judge
		}
		ok := false
		for _, c := range calls {
			if c.Type == "RECONCILE" && c.StreamID == s.stream && c.Status < 300 && !c.At.After(deadline) {
				ok = true
				break
			}
		}
		if !ok {
			add("reconcile", s.at, "no RECONCILE within %v of the subscription on stream %s", ReconcileBound, s.stream)
		}
	}

	st := tp.Sim.Snapshot()
	if n := len(st.Frameworks) + len(st.CompletedFrameworks); n > 1 {
		add("one-framework", time.Now(), "Mesos knows %d frameworks: %s (completed %v)", n, frameworkIDs(st), st.CompletedFrameworks)
	}
	for _, fw := range st.Frameworks {
		if fw.Counters.DuplicateTaskIDs > 0 {
			add("one-per-slot", time.Now(), "framework %s launched %d task ids twice", fw.ID, fw.Counters.DuplicateTaskIDs)
		}
		perAgent := map[string][]string{}
		for _, tk := range fw.Tasks {
			if !terminal(tk.State) {
				perAgent[tk.AgentID] = append(perAgent[tk.AgentID], tk.ID)
			}
		}
		for agent, ids := range perAgent {
			if len(ids) > 1 {
				add("one-per-slot", time.Now(), "agent %s runs %d tasks: %v", agent, len(ids), ids)
			}
		}
		if fw.ID == framework {
			out = append(out, tp.checkForgotten(ctx, fw)...)
		}
	}

	commits, err := tp.storeCommits(ctx)
	if err != nil {
		add("store-history", time.Now(), "the store's commits could not be read: %v", err)
	}
	vs := checkCommits(commits) // sorts commits by generation
	if len(commits) > 0 {
		tp.t.Logf("drill: checker: %d commits judged against the election, up to generation %d", len(commits), commits[len(commits)-1].gen)
	}
	for _, v := range vs {
		if !v.At.IsZero() {
			v.Around = around(v.At)
		}
		out = append(out, v)
	}
	return out
}

// checkForgotten compares the tasks Mesos runs with the leader's state.
// fw was read before the leader is asked; a task counts as forgotten only
// if Mesos still runs it after the leader answered without it (between
// the two reads the leader may have killed it and forgotten it, rightly).
func (tp *Topology) checkForgotten(ctx context.Context, fw mesossim.FrameworkView) []Violation {
	leader, err := tp.Leader(ctx)
	if err != nil {
		return nil // judged only with a leader
	}
	var known struct {
		Tasks []struct {
			ID string `json:"id"`
		} `json:"tasks"`
	}
	if err := leader.get(ctx, "/v1/tasks", &known); err != nil {
		return nil
	}
	ids := map[string]bool{}
	for _, t := range known.Tasks {
		ids[t.ID] = true
	}
	still := map[string]bool{}
	if after, ok := tp.Sim.Snapshot().Framework(fw.ID); ok {
		for _, tk := range after.Tasks {
			still[tk.ID] = !terminal(tk.State)
		}
	}
	var out []Violation
	for _, tk := range fw.Tasks {
		if !terminal(tk.State) && !ids[tk.ID] && still[tk.ID] {
			out = append(out, Violation{Rule: "forgotten", At: time.Now(),
				Detail: fmt.Sprintf("Mesos runs %s (%s) on %s, the leader %s does not know it", tk.ID, tk.State, tk.AgentID, leader.ID)})
		}
	}
	return out
}

func terminal(state string) bool {
	switch state {
	case "TASK_FINISHED", "TASK_FAILED", "TASK_KILLED", "TASK_LOST", "TASK_ERROR", "TASK_DROPPED", "TASK_GONE", "TASK_GONE_BY_OPERATOR":
		return true
	}
	return false
}

// MustPass fails the test with every violation Check finds.
func (tp *Topology) MustPass(ctx context.Context) {
	tp.t.Helper()
	if vs := tp.Check(ctx); len(vs) > 0 {
		var b strings.Builder
		for _, v := range vs {
			b.WriteString("\n" + v.String())
		}
		tp.t.Fatalf("drill: %d invariant violations:%s", len(vs), b.String())
	}
}
