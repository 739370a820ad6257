package mesossim

import (
	"errors"
	"sort"
	"time"
)

// ErrUnknownAgent is returned by agent faults naming an agent the cluster
// does not have (or that is gone).
var ErrUnknownAgent = errors.New("unknown agent")

// Stats are cluster-wide counters, for tests and invariant checks.
type Stats struct {
	TasksLaunched        int `json:"tasks_launched"`
	TasksCompleted       int `json:"tasks_completed"`
	DuplicateTaskIDs     int `json:"duplicate_task_ids"`
	UpdatesGenerated     int `json:"updates_generated"`
	RejectedCalls        int `json:"rejected_calls"`
	RefusedSubscriptions int `json:"refused_subscriptions"`
	FrameworksRemoved    int `json:"frameworks_removed"`
	MasterFailovers      int `json:"master_failovers"`
	LaunchesLost         int `json:"launches_lost"` // launches a master failover lost on their way to the agent
}

// FrameworkCounters count what one framework did and was sent.
type FrameworkCounters struct {
	Subscriptions    int `json:"subscriptions"`
	FailedOver       int `json:"failed_over"`        // older streams closed by a newer SUBSCRIBE
	Calls            int `json:"calls"`              // accepted non-SUBSCRIBE calls
	StaleStreamCalls int `json:"stale_stream_calls"` // calls refused for a missing or old Mesos-Stream-Id
	TasksLaunched    int `json:"tasks_launched"`
	TasksInvalid     int `json:"tasks_invalid"`
	DuplicateTaskIDs int `json:"duplicate_task_ids"` // launches reusing an id this framework used before
	Kills            int `json:"kills"`
	Reconciles       int `json:"reconciles"`
	OffersMade       int `json:"offers_made"`
	OffersDeclined   int `json:"offers_declined"`
	OffersRescinded  int `json:"offers_rescinded"`
	UpdatesSent      int `json:"updates_sent"` // agent updates delivered, resends included
	UpdatesResent    int `json:"updates_resent"`
	MasterUpdates    int `json:"master_updates"` // updates without uuid
	Acks             int `json:"acks"`
	AcksIgnored      int `json:"acks_ignored"`
	// OperationsIgnored counts offer operations mesos-sim does not simulate
	// (RESERVE, CREATE, ...).
	OperationsIgnored int `json:"operations_ignored"`
}

// TaskView is one task as State reports it.
type TaskView struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	FrameworkID string `json:"framework_id"`
	AgentID     string `json:"agent_id"`
	State       string `json:"state"`
	Resources   string `json:"resources"`
	// Unacked is the number of status updates the agent holds for the task
	// until they are acknowledged.
	Unacked     int  `json:"unacknowledged_updates"`
	Unreachable bool `json:"unreachable,omitempty"`
}

// FrameworkView is one framework as State reports it.
type FrameworkView struct {
	ID              string            `json:"id"`
	Name            string            `json:"name"`
	Connected       bool              `json:"connected"`
	Known           bool              `json:"known"`
	FailoverTimeout float64           `json:"failover_timeout"`
	Offers          int               `json:"outstanding_offers"`
	UnackedUpdates  int               `json:"unacknowledged_updates"` // summed over its tasks
	Tasks           []TaskView        `json:"tasks"`
	Counters        FrameworkCounters `json:"counters"`
}

// AgentView is one agent as State reports it.
type AgentView struct {
	ID        string     `json:"id"`
	Hostname  string     `json:"hostname"`
	State     AgentState `json:"state"`
	Total     string     `json:"resources"`
	Available string     `json:"unoffered_resources"`
	Tasks     int        `json:"tasks"`
}

// State is a consistent snapshot of the whole cluster.
type State struct {
	MasterID            string          `json:"master_id"`
	LeaderURL           string          `json:"leader_url"`
	Frameworks          []FrameworkView `json:"frameworks"`
	CompletedFrameworks []string        `json:"completed_frameworks"`
	Agents              []AgentView     `json:"agents"`
	Stats               Stats           `json:"stats"`
}

// Framework returns the view of one framework, if present.
func (s State) Framework(id string) (FrameworkView, bool) {
	for _, f := range s.Frameworks {
		if f.ID == id {
			return f, true
		}
	}
	return FrameworkView{}, false
}

// Snapshot returns a consistent view of the cluster.
func (c *Cluster) Snapshot() State {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := State{MasterID: c.masterID, Stats: c.stats,
		Frameworks: []FrameworkView{}, CompletedFrameworks: []string{}, Agents: []AgentView{}}
	if c.leader >= 0 {
		st.LeaderURL = c.masters[c.leader].url()
	}
	for _, fw := range c.frameworks {
		v := FrameworkView{ID: fw.id, Name: fw.info.Name, Connected: fw.connected, Known: fw.known,
			FailoverTimeout: fw.info.GetFailoverTimeout(), Offers: len(fw.offers), Counters: fw.counters, Tasks: []TaskView{}}
		for _, t := range fw.tasks {
			v.Tasks = append(v.Tasks, TaskView{ID: t.id, Name: t.name, FrameworkID: fw.id, AgentID: t.ag.id,
				State: t.state.String(), Resources: t.res.String(), Unacked: len(t.updates), Unreachable: t.unreachable})
			v.UnackedUpdates += len(t.updates)
		}
		sort.Slice(v.Tasks, func(i, j int) bool { return v.Tasks[i].ID < v.Tasks[j].ID })
		st.Frameworks = append(st.Frameworks, v)
	}
	sort.Slice(st.Frameworks, func(i, j int) bool { return st.Frameworks[i].ID < st.Frameworks[j].ID })
	for id := range c.completed {
		st.CompletedFrameworks = append(st.CompletedFrameworks, id)
	}
	sort.Strings(st.CompletedFrameworks)
	for _, ag := range c.agentOrder {
		st.Agents = append(st.Agents, AgentView{ID: ag.id, Hostname: ag.hostname, State: ag.state,
			Total: ag.total.String(), Available: ag.avail.String(), Tasks: len(ag.tasks)})
	}
	return st
}

// CallRecord is one scheduler call as a master handled it (Config.OnCall).
type CallRecord struct {
	At          time.Time
	FrameworkID string
	// Type is the call's type as Mesos names it: SUBSCRIBE, ACCEPT,
	// RECONCILE, ACKNOWLEDGE, ...
	Type string
	// StreamID is the Mesos-Stream-Id the call carried (for SUBSCRIBE: the
	// one the master assigned).
	StreamID string
	// Status is the HTTP status the master answered: 200 or 202 for an
	// accepted call, 4xx for a refused one (a stale stream id, an unknown
	// framework, ...).
	Status int
	// For ACKNOWLEDGE: the task, the update's UUID, and the state of the
	// update the ack released ("" when the master ignored the ack: not
	// the pending update, an unknown task, a refused call).
	TaskID, AckUUID, AckedState string
	// Before is what Config.BeforeCall returned for this call (nil
	// without one).
	Before any
}
