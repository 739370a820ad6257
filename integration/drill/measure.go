package drill

import (
	"fmt"
	"time"

	"github.com/regent-sched/regent/integration/mesossim"
)

// Takeover is what Mesos saw of one change of leader.
type Takeover struct {
	// Subscribed is when the new leader's SUBSCRIBE was accepted, and
	// Reconciled when its first RECONCILE was (reconciliation started).
	Subscribed, Reconciled time.Time
	StreamID               string
}

// WaitTakeover waits until Mesos has accepted a SUBSCRIBE after since and a
// RECONCILE on that subscription's stream, and returns their times.
func (tp *Topology) WaitTakeover(since time.Time, timeout time.Duration) Takeover {
	tp.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if tk, ok := takeoverAfter(tp.Calls(), since); ok {
			return tk
		}
		if time.Now().After(deadline) {
			tp.t.Fatalf("drill: no SUBSCRIBE and RECONCILE within %v after %v", timeout, since.Format(time.StampMilli))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func takeoverAfter(calls []mesossim.CallRecord, since time.Time) (Takeover, bool) {
	var tk Takeover
	for _, c := range calls {
		if c.At.Before(since) || c.Status >= 300 {
			continue
		}
		switch {
		case c.Type == "SUBSCRIBE" && tk.StreamID == "":
			tk.Subscribed, tk.StreamID = c.At, c.StreamID
		case c.Type == "RECONCILE" && tk.StreamID != "" && c.StreamID == tk.StreamID:
			tk.Reconciled = c.At
			return tk, true
		}
	}
	return tk, false
}

// AcceptedAfter lists calls Mesos accepted after t on a stream other than
// stream: after a takeover at t, any such call came from a deposed leader.
func (tp *Topology) AcceptedAfter(t time.Time, stream string) []mesossim.CallRecord {
	var out []mesossim.CallRecord
	for _, c := range tp.Calls() {
		if c.At.After(t) && c.Status < 300 && c.StreamID != stream {
			out = append(out, c)
		}
	}
	return out
}

// Subscribes counts the SUBSCRIBE calls Mesos accepted after t.
func (tp *Topology) Subscribes(after time.Time) int {
	n := 0
	for _, c := range tp.Calls() {
		if c.At.After(after) && c.Type == "SUBSCRIBE" && c.Status < 300 {
			n++
		}
	}
	return n
}

// CheckTasks fails the test unless Mesos knows exactly one framework with
// the given id, running want tasks, never launched a task id twice, and
// launched no more than launched tasks in all.
func (tp *Topology) CheckTasks(frameworkID string, want, launched int) {
	tp.t.Helper()
	st := tp.Sim.Snapshot()
	if len(st.Frameworks) != 1 || st.Frameworks[0].ID != frameworkID {
		tp.t.Fatalf("drill: frameworks %s, want exactly %s", frameworkIDs(st), frameworkID)
	}
	fw := st.Frameworks[0]
	running := 0
	for _, tk := range fw.Tasks {
		if tk.State == "TASK_RUNNING" {
			running++
		}
	}
	if running != want || fw.Counters.DuplicateTaskIDs != 0 || fw.Counters.TasksLaunched > launched {
		tp.t.Fatalf("drill: %d running tasks (want %d), %d launched (at most %d), %d duplicate ids",
			running, want, fw.Counters.TasksLaunched, launched, fw.Counters.DuplicateTaskIDs)
	}
}

func frameworkIDs(st mesossim.State) string {
	var ids []string
	for _, f := range st.Frameworks {
		ids = append(ids, f.ID)
	}
	return fmt.Sprint(ids)
}
