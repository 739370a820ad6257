package main

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/regent-sched/regent/cmd/regent/internal/api"
	"github.com/regent-sched/regent/cmd/regent/internal/fleet"
	"github.com/regent-sched/regent/core"
)

// The checks of a drill against a running cluster: what the leader runs
// before the first step-down against what the last leader runs after it.

// leaderState is what one leader answered about itself and its tasks.
type leaderState struct {
	info   api.Info
	tasks  []core.Task
	agents []fleet.AgentView
}

// readState asks the leader for /v1/info, /v1/tasks and /v1/agents. The
// requests may reach different leaders while the leadership moves: info is
// asked again at the end, and a changed fencing token means try again.
func readState(ctx context.Context, c api.Client) (leaderState, error) {
	info, err := c.Info(ctx)
	if err != nil {
		return leaderState{}, err
	}
	tasks, err := c.Tasks(ctx)
	if err != nil {
		return leaderState{}, err
	}
	agents, err := c.Agents(ctx)
	if err != nil {
		return leaderState{}, err
	}
	again, err := c.Info(ctx)
	if err != nil {
		return leaderState{}, err
	}
	if again.Leader.Token != info.Leader.Token {
		return leaderState{}, fmt.Errorf("the leadership moved from %s to %s while reading its tasks", info.Leader.ID, again.Leader.ID)
	}
	return leaderState{info: again, tasks: tasks.Tasks, agents: agents.Agents}, nil
}

// waitBaseline reads the leader's state once it has settled: subscribed,
// done reconciling, no launch in flight, so that the drill starts from
// tasks that run. After timeout it starts from what it has (the tasks not
// running then are not held to the checks); it fails only when it could
// not read a subscribed leader's state at all.
func waitBaseline(ctx context.Context, c api.Client, timeout time.Duration) (leaderState, error) {
	deadline := time.Now().Add(timeout)
	var last leaderState
	for {
		st, err := readState(ctx, c)
		if err == nil && !st.info.Subscribed {
			err = fmt.Errorf("leader %s is not subscribed to Mesos", st.info.Leader.ID)
		}
		if err == nil {
			if settled(st) {
				return st, nil
			}
			last = st
		}
		if time.Now().After(deadline) {
			if last.info.Subscribed {
				return last, nil
			}
			return leaderState{}, fmt.Errorf("after %v: %w", timeout, err)
		}
		if err := sleep(ctx, 100*time.Millisecond); err != nil {
			return leaderState{}, err
		}
	}
}

// settled says the leader finished reconciling and launches nothing.
func settled(st leaderState) bool {
	if st.info.Reconciliation.Active || st.info.Reconciliation.LastDone.IsZero() {
		return false
	}
	return !slices.ContainsFunc(st.tasks, func(t core.Task) bool {
		return t.State == mesos.TASK_STAGING || t.State == mesos.TASK_STARTING
	})
}

// settle judges the leader's state against base until it passes, or
// timeout ends: a new leader may still be reconciling, and a task that
// ended may be waiting for its replacement. The last verdict stands; final
// is the leader's /v1/info it was drawn from (nil if none could be read).
func settle(ctx context.Context, c api.Client, base leaderState, timeout time.Duration) (final *api.Info, checks, violations []string) {
	deadline := time.Now().Add(timeout)
	for {
		st, err := readState(ctx, c)
		if err == nil {
			final = &st.info
			checks, violations = judgeState(base, st)
			if len(violations) == 0 {
				return final, checks, violations
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			if final == nil {
				return nil, nil, []string{fmt.Sprintf("could not read the leader's state within %v of the last hand-over: %v", timeout, err)}
			}
			return final, checks, violations
		}
		_ = sleep(ctx, 200*time.Millisecond)
	}
}

// judgeState compares the leader's tasks after the drill with those
// before it, and checks that the leader finished reconciling.
func judgeState(before, after leaderState) (checks, violations []string) {
	checks, violations = compareTasks(before.tasks, after.tasks, after.agents)
	if msg, ok := checkReconciled(after.info); ok {
		checks = append(checks, msg)
	} else {
		violations = append(violations, msg)
	}
	return checks, violations
}

// checkReconciled says whether the leader finished the reconciliation it
// started when it subscribed. A term's scheduler is fresh, so any finished
// run it reports is of this term, and the first is the takeover's.
func checkReconciled(info api.Info) (string, bool) {
	r := info.Reconciliation
	switch {
	case r.Started.IsZero():
		return fmt.Sprintf("leader %s (token %d) never started reconciliation", info.Leader.ID, info.Leader.Token), false
	case r.LastDone.IsZero():
		return fmt.Sprintf("leader %s (token %d) started reconciliation at %s and has not finished it: %d tasks pending after %d rounds",
			info.Leader.ID, info.Leader.Token, r.Started.Format(time.RFC3339Nano), r.Pending, r.Rounds), false
	}
	return fmt.Sprintf("leader %s finished reconciling since it took over (last run took %v, rounds: %d)", info.Leader.ID, r.LastDuration.Round(time.Microsecond), r.LastRounds), true
}

// compareTasks checks the leader's tasks and agents after the drill
// against its tasks before: every task running before still runs with the
// same id on the same agent (a step-down must relaunch nothing), and no
// agent runs two tasks.
func compareTasks(before, after []core.Task, agents []fleet.AgentView) (checks, violations []string) {
	now := make(map[string]core.Task, len(after))
	for _, t := range after {
		now[t.ID] = t
	}
	exits := map[string]*fleet.Exit{}
	for _, a := range agents {
		exits[a.ID] = a.LastExit
	}
	live := liveByAgent(after)
	var kept, replaced, skipped []string
	for _, b := range sortedTasks(before) {
		if b.State != mesos.TASK_RUNNING {
			// A launch may legitimately fail, an unreachable task never
			// come back: only running tasks are held to run on.
			skipped = append(skipped, fmt.Sprintf("%s (%s)", b.ID, b.State))
			continue
		}
		ok, msg := compareTask(b, now, live, exits)
		switch {
		case !ok:
			violations = append(violations, msg)
		case msg != "":
			replaced = append(replaced, msg)
		default:
			kept = append(kept, b.ID)
		}
	}
	checks = append(checks, fmt.Sprintf("%d running tasks kept their ids and agents%s", len(kept), idList(kept)))
	if len(skipped) > 0 {
		checks = append(checks, fmt.Sprintf("not compared, not running before the first step-down%s", idList(skipped)))
	}
	if len(replaced) > 0 {
		checks = append(checks, "ended on their own and replaced: "+strings.Join(replaced, "; "))
	}
	crowded := crowdedAgents(live)
	violations = append(violations, crowded...)
	if len(crowded) == 0 {
		checks = append(checks, fmt.Sprintf("no agent runs two tasks (%d agents run one)", len(live)))
	}
	return checks, violations
}

// compareTask judges one task that ran before the drill: ok with no
// message when it still runs as it did, ok with a message when it ended
// on its own and another took its agent, else a violation. The leader
// forgets a task once it ended; the agent's last exit tells how it ended.
func compareTask(b core.Task, now map[string]core.Task, live map[string][]core.Task, exits map[string]*fleet.Exit) (ok bool, msg string) {
	agent := taskAgent(b)
	others := strings.Join(otherIDs(live[agent], b.ID), ", ")
	a, known := now[b.ID]
	switch {
	case known && taskAgent(a) != agent:
		return false, fmt.Sprintf("task %s: on agent %s before, on agent %s after", b.ID, agent, taskAgent(a))
	case known && a.State == mesos.TASK_RUNNING:
		return true, ""
	case known && !a.Terminal():
		return false, fmt.Sprintf("task %s on agent %s: %s before, %s after%s", b.ID, agent, b.State, a.State, relaunched(others))
	}
	end := ""
	if known {
		end = a.State.String()
	} else if e := exits[agent]; e != nil && e.TaskID == b.ID {
		end = e.State
	}
	switch {
	case end == "" && others == "":
		return false, fmt.Sprintf("task %s on agent %s: lost: unknown to the new leader, no end recorded%s, and nothing runs on the agent", b.ID, agent, lastExit(exits[agent]))
	case end == "":
		return false, fmt.Sprintf("task %s on agent %s: unknown to the new leader, no end recorded%s, relaunched as %s", b.ID, agent, lastExit(exits[agent]), others)
	case !endedOnItsOwn(end):
		return false, fmt.Sprintf("task %s on agent %s: TASK_RUNNING before, ended %s%s", b.ID, agent, end, relaunched(others))
	case others == "":
		return false, fmt.Sprintf("task %s on agent %s: ended %s and nothing replaced it", b.ID, agent, end)
	}
	return true, fmt.Sprintf("%s on agent %s (%s) by %s", b.ID, agent, end, others)
}

// endedOnItsOwn is the end of a task whose command exited. The other
// terminal states (KILLED, LOST, GONE, DROPPED, ERROR) are what a botched
// hand-over causes: the drill reports them even when a task replaced it.
func endedOnItsOwn(state string) bool {
	return state == mesos.TASK_FINISHED.String() || state == mesos.TASK_FAILED.String()
}

func relaunched(others string) string {
	if others == "" {
		return ", nothing replaced it"
	}
	return ", relaunched as " + others
}

func lastExit(e *fleet.Exit) string {
	if e == nil {
		return ""
	}
	return fmt.Sprintf(" (the agent's last exit is task %s, %s)", e.TaskID, e.State)
}

// crowdedAgents names every agent with more than one non-terminal task:
// the framework keeps one per agent, so a second is a relaunch.
func crowdedAgents(live map[string][]core.Task) []string {
	var out []string
	for _, agent := range slices.Sorted(maps.Keys(live)) {
		ts := live[agent]
		if len(ts) < 2 {
			continue
		}
		desc := make([]string, len(ts))
		for i, t := range ts {
			desc[i] = fmt.Sprintf("%s (%s)", t.ID, t.State)
		}
		out = append(out, fmt.Sprintf("agent %s runs %d tasks, want at most 1: %s", agent, len(ts), strings.Join(desc, ", ")))
	}
	return out
}

// liveByAgent groups the non-terminal tasks by agent, sorted by id.
func liveByAgent(tasks []core.Task) map[string][]core.Task {
	out := map[string][]core.Task{}
	for _, t := range sortedTasks(tasks) {
		if !t.Terminal() {
			out[taskAgent(t)] = append(out[taskAgent(t)], t)
		}
	}
	return out
}

// taskAgent is the task's agent. A launch not yet confirmed by Mesos has
// no agent_id; the example framework names the agent in the task's data.
func taskAgent(t core.Task) string {
	if t.AgentID != "" {
		return t.AgentID
	}
	if fleet.ValidAgentID(string(t.Data)) == nil {
		return string(t.Data)
	}
	return "(unknown)"
}

func otherIDs(tasks []core.Task, except string) []string {
	var out []string
	for _, t := range tasks {
		if t.ID != except {
			out = append(out, t.ID)
		}
	}
	return out
}

func sortedTasks(tasks []core.Task) []core.Task {
	out := slices.Clone(tasks)
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// idList renders ids for a check line, cut short for large fleets (the
// count says how many).
func idList(ids []string) string {
	const show = 10
	switch {
	case len(ids) == 0:
		return ""
	case len(ids) <= show:
		return ": " + strings.Join(ids, ", ")
	}
	return fmt.Sprintf(": %s and %d more", strings.Join(ids[:show], ", "), len(ids)-show)
}
