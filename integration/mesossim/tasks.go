package mesossim

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"
)

// task is one task as the agent runs it and the master tracks it.
type task struct {
	id         string
	name       string
	fw         *framework
	ag         *agent
	res        pool
	executorID string
	group      string // non-empty for LAUNCH_GROUP tasks: the executor id
	command    string

	state            mesos.TaskState // latest state (the master's view)
	reachedAgent     bool            // the launch arrived at the agent
	killRequested    bool
	unreachable      bool
	unreachableSince time.Time

	// The agent's status update stream for this task: the head is in flight
	// and re-sent until acknowledged; the rest wait behind it.
	updates    []mesos.TaskStatus
	retry      time.Duration
	retryTimer *time.Timer
	lifeTimer  *time.Timer
}

func (t *task) stopTimers() {
	if t.retryTimer != nil {
		t.retryTimer.Stop()
		t.retryTimer = nil
	}
	if t.lifeTimer != nil {
		t.lifeTimer.Stop()
		t.lifeTimer = nil
	}
}

// isTerminal follows Mesos' protobuf::isTerminalState.
func isTerminal(s mesos.TaskState) bool {
	switch s {
	case mesos.TASK_FINISHED, mesos.TASK_FAILED, mesos.TASK_KILLED, mesos.TASK_LOST,
		mesos.TASK_ERROR, mesos.TASK_DROPPED, mesos.TASK_GONE, mesos.TASK_GONE_BY_OPERATOR:
		return true
	}
	return false
}

// lostState maps a partition-aware state to TASK_LOST for frameworks that
// did not declare PARTITION_AWARE.
func lostState(fw *framework, aware mesos.TaskState) mesos.TaskState {
	if fw.partitionAware {
		return aware
	}
	return mesos.TASK_LOST
}

func nowSeconds(t time.Time) *float64 {
	s := float64(t.UnixNano()) / 1e9
	return &s
}

// masterUpdateLocked sends an update the master generates itself: no uuid,
// never retried, never to be acknowledged.
func (c *Cluster) masterUpdateLocked(fw *framework, taskID, agentID string, st mesos.TaskState,
	reason mesos.TaskStatus_Reason, msg string, unreachable *time.Time) {
	src := mesos.SOURCE_MASTER
	status := mesos.TaskStatus{
		TaskID: mesos.TaskID{Value: taskID}, State: st.Enum(), Source: &src, Reason: reason.Enum(),
		Message: &msg, Timestamp: nowSeconds(time.Now()),
	}
	if agentID != "" {
		status.AgentID = &mesos.AgentID{Value: agentID}
	}
	if unreachable != nil {
		status.UnreachableTime = &mesos.TimeInfo{Nanoseconds: unreachable.UnixNano()}
	}
	fw.counters.MasterUpdates++
	fw.send(&scheduler.Event{Type: scheduler.Event_UPDATE, Update: &scheduler.Event_Update{Status: status}})
}

// agentUpdateLocked is the agent (or executor) producing a status update for
// t: it gets a uuid, changes the master's view at once, frees resources if
// terminal, and joins the task's update stream.
func (c *Cluster) agentUpdateLocked(t *task, st mesos.TaskState, src mesos.TaskStatus_Source,
	reason *mesos.TaskStatus_Reason, msg string) {
	if st == mesos.TASK_KILLING && !t.fw.killingState {
		return
	}
	u := uuid.New()
	status := mesos.TaskStatus{
		TaskID: mesos.TaskID{Value: t.id}, State: st.Enum(), Source: &src, Reason: reason,
		AgentID: &mesos.AgentID{Value: t.ag.id}, Timestamp: nowSeconds(time.Now()), UUID: u[:],
	}
	if msg != "" {
		status.Message = &msg
	}
	if t.executorID != "" {
		status.ExecutorID = &mesos.ExecutorID{Value: t.executorID}
	}
	wasTerminal := isTerminal(t.state)
	t.state = st
	if isTerminal(st) && !wasTerminal {
		if t.lifeTimer != nil {
			t.lifeTimer.Stop()
			t.lifeTimer = nil
		}
		c.freeLocked(t.ag, t.res)
	}
	t.updates = append(t.updates, status)
	c.stats.UpdatesGenerated++
	if len(t.updates) == 1 {
		t.retry = c.cfg.StatusRetryMin
		c.deliverHeadLocked(t)
	}
}

// deliverHeadLocked sends the head of t's update stream, if the path from
// agent to framework is open, and arms the agent's retry timer.
func (c *Cluster) deliverHeadLocked(t *task) {
	if len(t.updates) == 0 {
		return
	}
	head := t.updates[0]
	fw := t.fw
	if t.ag.state == AgentActive && fw.connected && fw.known && c.frameworks[fw.id] == fw {
		fw.counters.UpdatesSent++
		fw.send(&scheduler.Event{Type: scheduler.Event_UPDATE, Update: &scheduler.Event_Update{Status: head}})
	}
	if t.retryTimer != nil {
		t.retryTimer.Stop()
	}
	wait := t.retry
	t.retryTimer = c.afterFunc(wait, func() {
		if len(t.updates) == 0 || !bytes.Equal(t.updates[0].UUID, head.UUID) {
			return
		}
		t.retry *= 2
		if t.retry > c.cfg.StatusRetryMax {
			t.retry = c.cfg.StatusRetryMax
		}
		fw.counters.UpdatesResent++
		c.deliverHeadLocked(t)
	})
}

// acknowledgeLocked handles ACKNOWLEDGE. An ack that matches the head of the
// task's stream releases the next update; any other ack is ignored, as the
// real agent ignores it.
func (c *Cluster) acknowledgeLocked(fw *framework, a *scheduler.Call_Acknowledge) {
	t := fw.tasks[a.TaskID.Value]
	if t == nil || t.ag.id != a.AgentID.Value || t.ag.state != AgentActive || len(t.updates) == 0 {
		fw.counters.AcksIgnored++
		return
	}
	if !bytes.Equal(t.updates[0].UUID, a.UUID) {
		fw.counters.AcksIgnored++
		return
	}
	fw.counters.Acks++
	acked := t.updates[0]
	fw.lastAcked = acked.GetState()
	t.updates = t.updates[1:]
	if t.retryTimer != nil {
		t.retryTimer.Stop()
		t.retryTimer = nil
	}
	t.retry = c.cfg.StatusRetryMin
	if len(t.updates) > 0 {
		c.deliverHeadLocked(t)
		return
	}
	if isTerminal(acked.GetState()) {
		c.forgetTaskLocked(t)
	}
}

// forgetTaskLocked removes a task from the master and its agent, freeing
// its resources if it still held them.
func (c *Cluster) forgetTaskLocked(t *task) {
	t.stopTimers()
	if !isTerminal(t.state) {
		c.freeLocked(t.ag, t.res)
		t.state = mesos.TASK_KILLED
	}
	t.updates = nil
	delete(t.ag.tasks, t)
	if t.fw.tasks[t.id] == t {
		delete(t.fw.tasks, t.id)
	}
	c.stats.TasksCompleted++
}

// taskPlan is what a task's command tells the simulator to do once it runs.
type taskPlan struct {
	life time.Duration // 0: run until killed
	fail bool
}

// planFor reads a task's command: `sleep N` finishes after N seconds,
// `false` or `exit N` (N != 0) fails at once, `true` or `exit 0` finishes at
// once; anything else runs for Config.TaskDuration. FailureRate then turns
// some tasks into failures at a random point of their life.
func (c *Cluster) planFor(cmd string) taskPlan {
	fields := strings.Fields(cmd)
	p := taskPlan{life: c.cfg.TaskDuration}
	if len(fields) > 0 {
		switch fields[0] {
		case "sleep":
			if len(fields) > 1 {
				if secs, err := strconv.ParseFloat(fields[1], 64); err == nil && secs >= 0 {
					p.life = time.Duration(secs * float64(time.Second))
					if p.life == 0 {
						p.life = time.Nanosecond
					}
				}
			}
		case "true":
			return taskPlan{life: time.Nanosecond}
		case "false":
			return taskPlan{life: time.Nanosecond, fail: true}
		case "exit":
			code := "0"
			if len(fields) > 1 {
				code = fields[1]
			}
			return taskPlan{life: time.Nanosecond, fail: code != "0"}
		}
	}
	if c.cfg.FailureRate > 0 && c.rng.Float64() < c.cfg.FailureRate {
		p.fail = true
		span := p.life
		if span == 0 {
			span = 10 * time.Second
		}
		p.life = time.Duration(c.rng.Int64N(int64(span))) + time.Millisecond
	}
	return p
}

// startTaskLocked schedules what happens to a task from STAGING on.
func (c *Cluster) startTaskLocked(t *task) {
	t.lifeTimer = c.afterFunc(c.cfg.LaunchDelay, func() {
		if c.holdLaunches {
			t.lifeTimer = nil
			c.heldLaunches = append(c.heldLaunches, t)
			return
		}
		c.arriveLocked(t)
	})
}

// arriveLocked is a launch reaching its agent: the agent starts the task
// (or kills it at once if a KILL overtook the launch).
func (c *Cluster) arriveLocked(t *task) {
	if c.frameworks[t.fw.id] != t.fw || t.fw.tasks[t.id] != t || isTerminal(t.state) {
		return
	}
	t.reachedAgent = true
	if t.killRequested {
		r := mesos.REASON_TASK_KILLED_DURING_LAUNCH
		c.agentUpdateLocked(t, mesos.TASK_KILLED, mesos.SOURCE_AGENT, &r, "Task killed before it was launched")
		return
	}
	c.agentUpdateLocked(t, mesos.TASK_STARTING, mesos.SOURCE_EXECUTOR, nil, "")
	t.lifeTimer = c.afterFunc(c.cfg.StartDelay, func() {
		if t.state != mesos.TASK_STARTING {
			return
		}
		c.agentUpdateLocked(t, mesos.TASK_RUNNING, mesos.SOURCE_EXECUTOR, nil, "")
		plan := c.planFor(t.command)
		if plan.life == 0 {
			t.lifeTimer = nil
			return
		}
		t.lifeTimer = c.afterFunc(plan.life, func() {
			if t.state != mesos.TASK_RUNNING {
				return
			}
			t.lifeTimer = nil
			if plan.fail {
				r := mesos.REASON_COMMAND_EXECUTOR_FAILED
				c.agentUpdateLocked(t, mesos.TASK_FAILED, mesos.SOURCE_EXECUTOR, &r, "Command exited with status 1")
			} else {
				c.agentUpdateLocked(t, mesos.TASK_FINISHED, mesos.SOURCE_EXECUTOR, nil, "Command exited with status 0")
			}
		})
	})
}

// killLocked handles KILL of one task (and, for a task group, its siblings).
func (c *Cluster) killLocked(fw *framework, k *scheduler.Call_Kill) {
	t := fw.tasks[k.TaskID.Value]
	if t == nil || t.unreachable {
		// Unknown task: answered like an explicit reconciliation of it.
		aid := ""
		if k.AgentID != nil {
			aid = k.AgentID.Value
		}
		c.reconcileOneLocked(fw, k.TaskID.Value, aid)
		return
	}
	fw.counters.Kills++
	targets := []*task{t}
	if t.group != "" {
		for other := range t.ag.tasks {
			if other != t && other.fw == fw && other.group == t.group {
				targets = append(targets, other)
			}
		}
	}
	for _, x := range targets {
		c.killTaskLocked(x)
	}
}

func (c *Cluster) killTaskLocked(t *task) {
	if isTerminal(t.state) || t.killRequested {
		return
	}
	t.killRequested = true
	if !t.reachedAgent {
		return // the agent kills it when the launch arrives
	}
	if t.lifeTimer != nil {
		t.lifeTimer.Stop()
	}
	c.agentUpdateLocked(t, mesos.TASK_KILLING, mesos.SOURCE_EXECUTOR, nil, "")
	t.lifeTimer = c.afterFunc(c.cfg.StartDelay, func() {
		if isTerminal(t.state) {
			return
		}
		c.agentUpdateLocked(t, mesos.TASK_KILLED, mesos.SOURCE_EXECUTOR, nil, "Command terminated with signal Terminated")
	})
}

// shutdownLocked handles SHUTDOWN of an executor: its tasks are killed and
// the framework learns of the executor's end through FAILURE.
func (c *Cluster) shutdownLocked(fw *framework, s *scheduler.Call_Shutdown) {
	ag := c.agents[s.AgentID.Value]
	if ag == nil || ag.state != AgentActive {
		return
	}
	found := false
	for t := range ag.tasks {
		if t.fw == fw && t.executorID == s.ExecutorID.Value && !isTerminal(t.state) {
			found = true
			c.killTaskLocked(t)
		}
	}
	if found {
		status := int32(15)
		aid, eid := s.AgentID, s.ExecutorID
		fw.send(&scheduler.Event{Type: scheduler.Event_FAILURE, Failure: &scheduler.Event_Failure{
			AgentID: &aid, ExecutorID: &eid, Status: &status}})
	}
}

// validTaskID applies the master's task id rules.
func validTaskID(id string) error {
	switch {
	case id == "":
		return fmt.Errorf("ID must not be empty")
	case id == "." || id == "..":
		return fmt.Errorf("'%s' is disallowed", id)
	case strings.ContainsAny(id, "/\x00"):
		return fmt.Errorf("'/' and NUL are disallowed")
	}
	for _, r := range id {
		if r < ' ' || r == 0x7f {
			return fmt.Errorf("control characters are disallowed")
		}
	}
	return nil
}
