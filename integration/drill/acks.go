package drill

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/mesos/mesos-go/api/v1/lib/scheduler"

	"github.com/regent-sched/regent/core"
	"github.com/regent-sched/regent/persist"
)

// ackWatch reads the framework's store when an ACKNOWLEDGE reaches Mesos,
// before Mesos handles it: by then the acknowledged update must be
// committed, since Mesos never sends an acknowledged update again and a
// leader that crashed after acking an uncommitted update would have lost
// it. The read is the store as a new leader would load it (read-only).
// What it saw travels with the call (mesos-sim's CallRecord.Before), so
// that each ack is judged with its own read, also when the same update is
// acknowledged twice (again after a master failover).
type ackWatch struct {
	store persist.Store
}

// ackSeen is the store's view of one task when an ack for it arrived.
type ackSeen struct {
	present bool
	state   string // the committed state, when present
	err     error  // the store could not be read: no judgement
}

func newAckWatch(store persist.Store) *ackWatch {
	return &ackWatch{store: store}
}

// before is mesos-sim's BeforeCall: for an ACKNOWLEDGE, the store's view
// of its task (an ackSeen); nil for other calls.
func (a *ackWatch) before(call *scheduler.Call) any {
	ack := call.Acknowledge
	if call.Type != scheduler.Call_ACKNOWLEDGE || ack == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	var s ackSeen
	snap, err := a.store.Load(ctx)
	switch {
	case err != nil:
		s.err = err
	default:
		if b, ok := snap.Tasks[ack.TaskID.Value]; ok {
			var t core.Task
			if err := json.Unmarshal(b, &t); err != nil {
				s.err = fmt.Errorf("decode task %s: %w", ack.TaskID.Value, err)
			} else {
				s.present, s.state = true, t.State.String()
			}
		}
	}
	return s
}

// judgeAck returns what is wrong with an accepted ack that released the
// update with state acked, given what the store held when the ack arrived
// (seen: the call's CallRecord.Before), or "" if nothing is (or nothing
// can be told). The store may be ahead of the update (a reconciliation
// answer committed a later state first) but never behind it: a terminal
// update is committed as terminal (or the task forgotten), a non-terminal
// one with the task present and not earlier in STAGING → STARTING →
// RUNNING.
func judgeAck(seen any, acked string) string {
	s, ok := seen.(ackSeen)
	switch {
	case !ok || s.err != nil:
		return "" // not read (a store outage, the check off): no judgement
	case terminal(acked):
		if s.present && !terminal(s.state) {
			return fmt.Sprintf("%s acknowledged while the store held %s", acked, s.state)
		}
	case !s.present:
		return fmt.Sprintf("%s acknowledged while the store did not hold the task", acked)
	case !terminal(s.state) && lifecycle(s.state) < lifecycle(acked):
		return fmt.Sprintf("%s acknowledged while the store held %s", acked, s.state)
	}
	return ""
}

// lifecycle orders the first states of a task; the others rank last.
func lifecycle(state string) int {
	switch state {
	case "TASK_STAGING":
		return 0
	case "TASK_STARTING":
		return 1
	case "TASK_RUNNING":
		return 2
	}
	return 3
}
