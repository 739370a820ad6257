package mesossim

import (
	"fmt"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"
)

// acceptLocked handles ACCEPT in the real master's order: the offers first
// (any problem fails every launch in the call with TASK_LOST/TASK_DROPPED),
// then each operation against what remains of them, then the rest goes back
// to the agent under the call's filters.
func (c *Cluster) acceptLocked(fw *framework, a *scheduler.Call_Accept) {
	now := time.Now()
	offers, err := c.checkOffersLocked(fw, a.OfferIDs)
	if err != nil {
		for _, o := range offers {
			o.stopTimer()
			delete(c.offers, o.id)
			delete(fw.offers, o.id)
			c.freeLocked(o.ag, o.res)
		}
		msg := "Task launched with invalid offers: " + err.Error()
		for _, op := range a.Operations {
			for _, ti := range launchedTasks(op) {
				fw.counters.TasksInvalid++
				c.masterUpdateLocked(fw, ti.TaskID.Value, ti.AgentID.Value,
					lostState(fw, mesos.TASK_DROPPED), mesos.REASON_INVALID_OFFERS, msg, nil)
			}
		}
		return
	}
	ag := offers[0].ag
	remaining := newPool()
	for _, o := range offers {
		o.stopTimer()
		delete(c.offers, o.id)
		delete(fw.offers, o.id)
		remaining.add(o.res)
	}
	for i := range a.Operations {
		op := &a.Operations[i]
		switch op.Type {
		case mesos.Offer_Operation_LAUNCH:
			if op.Launch == nil {
				continue
			}
			for j := range op.Launch.TaskInfos {
				c.launchLocked(fw, ag, &remaining, &op.Launch.TaskInfos[j])
			}
		case mesos.Offer_Operation_LAUNCH_GROUP:
			if op.LaunchGroup == nil {
				continue
			}
			c.launchGroupLocked(fw, ag, &remaining, op.LaunchGroup)
		default:
			// Reservations and volumes are not simulated: the operation is
			// ignored and its resources stay in the pool (documented).
			fw.counters.OperationsIgnored++
		}
	}
	c.returnResourcesLocked(fw, ag, remaining, a.Filters, now)
}

func launchedTasks(op mesos.Offer_Operation) []mesos.TaskInfo {
	switch {
	case op.Launch != nil:
		return op.Launch.TaskInfos
	case op.LaunchGroup != nil:
		return op.LaunchGroup.TaskGroup.Tasks
	}
	return nil
}

// checkOffersLocked returns the listed offers that are valid, and an error
// naming the first problem: none listed, unknown, someone else's, listed
// twice, on different agents or roles.
func (c *Cluster) checkOffersLocked(fw *framework, ids []mesos.OfferID) ([]*offer, error) {
	if len(ids) == 0 {
		return nil, fmt.Errorf("No offers specified")
	}
	var valid []*offer
	var firstErr error
	seen := map[string]bool{}
	for _, id := range ids {
		o := c.offers[id.Value]
		switch {
		case seen[id.Value]:
			if firstErr == nil {
				firstErr = fmt.Errorf("Duplicate offer %s in offer list", id.Value)
			}
			continue
		case o == nil:
			if firstErr == nil {
				firstErr = fmt.Errorf("Offer %s is no longer valid", id.Value)
			}
			continue
		case o.fw != fw:
			if firstErr == nil {
				firstErr = fmt.Errorf("Offer %s has invalid framework %s while framework %s is expected",
					id.Value, o.fw.id, fw.id)
			}
			continue
		}
		seen[id.Value] = true
		valid = append(valid, o)
	}
	if firstErr == nil {
		for _, o := range valid[1:] {
			if o.ag != valid[0].ag {
				firstErr = fmt.Errorf("Aggregated offers must belong to one single agent. Offer %s uses agent %s and offer %s uses agent %s",
					valid[0].id, valid[0].ag.id, o.id, o.ag.id)
				break
			}
			if o.role != valid[0].role {
				firstErr = fmt.Errorf("Aggregated offers must be allocated to the same role. Offer %s uses role %s and offer %s uses role %s",
					valid[0].id, valid[0].role, o.id, o.role)
				break
			}
		}
	}
	return valid, firstErr
}

// validateTaskLocked returns the resources the task takes (with those of
// its executor when that is not yet running on the agent), or why it is
// invalid.
func (c *Cluster) validateTaskLocked(fw *framework, ag *agent, ti *mesos.TaskInfo, remaining pool, group bool) (pool, error) {
	if err := validTaskID(ti.TaskID.Value); err != nil {
		return pool{}, fmt.Errorf("Task ID '%s' is invalid: %w", ti.TaskID.Value, err)
	}
	if t := fw.tasks[ti.TaskID.Value]; t != nil {
		return pool{}, fmt.Errorf("Task has duplicate ID: %s", ti.TaskID.Value)
	}
	if ti.AgentID.Value != ag.id {
		return pool{}, fmt.Errorf("Task uses invalid agent: %s", ti.AgentID.Value)
	}
	if group {
		if ti.Executor != nil {
			return pool{}, fmt.Errorf("'TaskInfo.executor' must not be set")
		}
		if ti.Command == nil {
			return pool{}, fmt.Errorf("Task in a task group must have a CommandInfo")
		}
	} else if (ti.Command == nil) == (ti.Executor == nil) {
		return pool{}, fmt.Errorf("Task should have at least one (but not both) of CommandInfo or ExecutorInfo present")
	}
	if len(ti.Resources) == 0 {
		return pool{}, fmt.Errorf("Task uses no resources")
	}
	res, err := poolOf(ti.Resources)
	if err != nil {
		return pool{}, fmt.Errorf("Task uses invalid resources: %w", err)
	}
	need := res.clone()
	if ti.Executor != nil && !c.executorRunning(fw, ag, ti.Executor.ExecutorID.Value) {
		er, err := poolOf(ti.Executor.Resources)
		if err != nil {
			return pool{}, fmt.Errorf("Executor uses invalid resources: %w", err)
		}
		need.add(er)
		res = need.clone()
	}
	if !remaining.contains(need) {
		return pool{}, fmt.Errorf("Total resources %s required by task and its executor is more than available %s",
			need, remaining)
	}
	return res, nil
}

func (c *Cluster) executorRunning(fw *framework, ag *agent, id string) bool {
	for t := range ag.tasks {
		if t.fw == fw && t.executorID == id && !isTerminal(t.state) {
			return true
		}
	}
	return false
}

func (c *Cluster) launchLocked(fw *framework, ag *agent, remaining *pool, ti *mesos.TaskInfo) {
	c.noteLaunchAttempt(fw, ti.TaskID.Value)
	res, err := c.validateTaskLocked(fw, ag, ti, *remaining, false)
	if err != nil {
		fw.counters.TasksInvalid++
		c.masterUpdateLocked(fw, ti.TaskID.Value, ti.AgentID.Value, mesos.TASK_ERROR, mesos.REASON_TASK_INVALID, err.Error(), nil)
		return
	}
	remaining.sub(res)
	execID := ti.TaskID.Value // the command executor takes the task's id
	cmd := ""
	if ti.Executor != nil {
		execID = ti.Executor.ExecutorID.Value
		if ti.Executor.Command != nil {
			cmd = ti.Executor.Command.GetValue()
		}
	}
	if ti.Command != nil {
		cmd = ti.Command.GetValue()
	}
	c.addTaskLocked(fw, ag, ti, res, execID, "", cmd)
}

func (c *Cluster) launchGroupLocked(fw *framework, ag *agent, remaining *pool, lg *mesos.Offer_Operation_LaunchGroup) {
	tasks := lg.TaskGroup.Tasks
	for i := range tasks {
		c.noteLaunchAttempt(fw, tasks[i].TaskID.Value)
	}
	fail := func(msg string) {
		for i := range tasks {
			fw.counters.TasksInvalid++
			c.masterUpdateLocked(fw, tasks[i].TaskID.Value, tasks[i].AgentID.Value, mesos.TASK_ERROR,
				mesos.REASON_TASK_GROUP_INVALID, msg, nil)
		}
	}
	if len(tasks) == 0 {
		fail("Task group is empty")
		return
	}
	if lg.Executor.Type != mesos.ExecutorInfo_DEFAULT {
		fail("'ExecutorInfo.type' must be 'DEFAULT'")
		return
	}
	execID := lg.Executor.ExecutorID.Value
	trial := remaining.clone()
	if !c.executorRunning(fw, ag, execID) {
		er, err := poolOf(lg.Executor.Resources)
		if err != nil || !trial.contains(er) {
			fail("Executor resources are invalid or more than available")
			return
		}
		trial.sub(er)
	}
	ids := map[string]bool{}
	var pools []pool
	for i := range tasks {
		if ids[tasks[i].TaskID.Value] {
			fail("Task group has duplicate task ID: " + tasks[i].TaskID.Value)
			return
		}
		ids[tasks[i].TaskID.Value] = true
		res, err := c.validateTaskLocked(fw, ag, &tasks[i], trial, true)
		if err != nil {
			fail(fmt.Sprintf("Task '%s' is invalid: %v", tasks[i].TaskID.Value, err))
			return
		}
		trial.sub(res)
		pools = append(pools, res)
	}
	*remaining = trial
	for i := range tasks {
		c.addTaskLocked(fw, ag, &tasks[i], pools[i], execID, execID, tasks[i].Command.GetValue())
	}
}

// noteLaunchAttempt counts task ids this framework has used before, even
// ones the master allows again (after the earlier task ended): an HA
// scheduler should never need to.
func (c *Cluster) noteLaunchAttempt(fw *framework, id string) {
	if _, dup := fw.everUsed[id]; dup {
		fw.counters.DuplicateTaskIDs++
		c.stats.DuplicateTaskIDs++
		return
	}
	fw.everUsed[id] = struct{}{}
}

func (c *Cluster) addTaskLocked(fw *framework, ag *agent, ti *mesos.TaskInfo, res pool, execID, group, cmd string) {
	t := &task{
		id: ti.TaskID.Value, name: ti.Name, fw: fw, ag: ag, res: res, executorID: execID,
		group: group, command: cmd, state: mesos.TASK_STAGING,
	}
	fw.tasks[t.id] = t
	ag.tasks[t] = struct{}{}
	fw.counters.TasksLaunched++
	c.stats.TasksLaunched++
	c.startTaskLocked(t)
}
