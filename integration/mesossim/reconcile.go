package mesossim

import (
	"sort"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"
)

// reconcileLocked answers RECONCILE. Answers come from the master: reason
// REASON_RECONCILIATION and no uuid.
func (c *Cluster) reconcileLocked(fw *framework, r *scheduler.Call_Reconcile) {
	fw.counters.Reconciles++
	if len(r.Tasks) > 0 {
		for _, rt := range r.Tasks {
			aid := ""
			if rt.AgentID != nil {
				aid = rt.AgentID.Value
			}
			c.reconcileOneLocked(fw, rt.TaskID.Value, aid)
		}
		return
	}
	// Implicit: every task the master knows, unreachable ones excepted.
	ids := make([]string, 0, len(fw.tasks))
	for id, t := range fw.tasks {
		if !t.unreachable && t.ag.state == AgentActive {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	for _, id := range ids {
		t := fw.tasks[id]
		c.masterUpdateLocked(fw, t.id, t.ag.id, t.state, mesos.REASON_RECONCILIATION,
			"Reconciliation: Latest task state", nil)
	}
}

// reconcileOneLocked answers for one task, the way the master's explicit
// reconciliation does, including its silence about tasks whose agent has
// not re-registered yet after a master failover.
func (c *Cluster) reconcileOneLocked(fw *framework, taskID, agentID string) {
	if t := fw.tasks[taskID]; t != nil && t.ag.state != AgentRecovering {
		switch {
		case t.unreachable || t.ag.state == AgentUnreachable:
			since := t.unreachableSince
			st := lostState(fw, mesos.TASK_UNREACHABLE)
			var when = &since
			if st != mesos.TASK_UNREACHABLE {
				when = nil
			}
			c.masterUpdateLocked(fw, taskID, t.ag.id, st, mesos.REASON_RECONCILIATION,
				"Reconciliation: Task is unreachable", when)
		default:
			c.masterUpdateLocked(fw, taskID, t.ag.id, t.state, mesos.REASON_RECONCILIATION,
				"Reconciliation: Latest task state", nil)
		}
		return
	}
	if agentID == "" {
		for _, ag := range c.agentOrder {
			if ag.state == AgentRecovering {
				return // some agent may still bring the task back: no answer yet
			}
		}
		c.masterUpdateLocked(fw, taskID, "", lostState(fw, mesos.TASK_UNKNOWN), mesos.REASON_RECONCILIATION,
			"Reconciliation: Task is unknown", nil)
		return
	}
	ag := c.agents[agentID]
	switch {
	case ag == nil:
		c.masterUpdateLocked(fw, taskID, agentID, lostState(fw, mesos.TASK_UNKNOWN), mesos.REASON_RECONCILIATION,
			"Reconciliation: Task is unknown", nil)
	case ag.state == AgentRecovering:
		// no answer until the agent re-registers
	case ag.state == AgentActive:
		c.masterUpdateLocked(fw, taskID, agentID, lostState(fw, mesos.TASK_GONE), mesos.REASON_RECONCILIATION,
			"Reconciliation: Task is unknown to the agent", nil)
	case ag.state == AgentUnreachable:
		c.masterUpdateLocked(fw, taskID, agentID, lostState(fw, mesos.TASK_UNREACHABLE), mesos.REASON_RECONCILIATION,
			"Reconciliation: Task is unreachable", nil)
	case ag.state == AgentGone:
		c.masterUpdateLocked(fw, taskID, agentID, lostState(fw, mesos.TASK_GONE_BY_OPERATOR), mesos.REASON_RECONCILIATION,
			"Reconciliation: Task is gone", nil)
	}
}
