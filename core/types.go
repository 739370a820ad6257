package core

import (
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

// Framework is a framework author's logic: pure functions from the current
// state and one event to the next state and the actions to take. Handle must
// do no I/O and read no clock: time arrives in Input.Now, so a test can
// replay any history deterministically.
//
// S is the framework's own state. Handle may return the same value or a new
// one; regent keeps only what it returns. Tasks are regent's bookkeeping,
// seen through a read-only view: a framework changes them with actions
// (Launch adds, Kill and Forget remove).
type Framework[S any] interface {
	Handle(state S, in Input) (S, []Action)
}

// FrameworkFunc adapts a function to Framework.
type FrameworkFunc[S any] func(state S, in Input) (S, []Action)

// Handle calls f.
func (f FrameworkFunc[S]) Handle(state S, in Input) (S, []Action) { return f(state, in) }

// Input is what Handle gets besides the state: the event, the time, and a
// read-only view of the tasks regent tracks.
type Input struct {
	Event Event
	Now   time.Time
	Tasks TaskView
	// FrameworkID is the id Mesos gave the framework ("" before the first
	// SUBSCRIBED is committed).
	FrameworkID string
}

// Event is one thing that happened. Its concrete types are listed below;
// Handle switches on them and should ignore types it does not know.
type Event interface{ event() }

// Subscribed: the scheduler is subscribed to the leading master (first time,
// after a reconnect, or after a master failover). Reconciliation starts now.
type Subscribed struct {
	FrameworkID string
	Master      mesos.MasterInfo
	// Resubscribed is true when the FrameworkID was known before.
	Resubscribed bool
}

// OffersReceived carries new offers. An offer the framework neither uses
// (Launch) nor declines is declined by regent with the configured default
// filter once Handle returns, so offers are never hoarded by accident.
type OffersReceived struct{ Offers []mesos.Offer }

// OfferRescinded: the master withdrew an offer.
type OfferRescinded struct{ OfferID string }

// TaskUpdate is a status update for a task regent tracks. Previous is the
// task's record before the update. An update whose task regent does not
// know is an Orphan instead.
type TaskUpdate struct {
	Status   mesos.TaskStatus
	Previous Task
}

// Orphan is a task Mesos reports that the state does not know (launched by
// an earlier leader and forgotten, or by another framework instance). Unless
// Handle answers with Adopt, regent kills it.
type Orphan struct{ Status mesos.TaskStatus }

// AgentLost is a FAILURE event for an agent; ExecutorLost for an executor.
type AgentLost struct{ AgentID string }

// ExecutorLost is a FAILURE event naming an executor, with its exit status
// when known.
type ExecutorLost struct {
	AgentID, ExecutorID string
	Status              *int32
}

// FrameworkMessage is a MESSAGE from an executor.
type FrameworkMessage struct {
	AgentID, ExecutorID string
	Data                []byte
}

// MesosError is an ERROR event other than the ones regent handles itself.
type MesosError struct{ Message string }

// Tick arrives every Config.TickInterval with the time.
type Tick struct{}

// ReconciliationDone: the explicit phase converged and the implicit
// reconciliation was sent; offers flow again.
type ReconciliationDone struct {
	Rounds   int
	Duration time.Duration
}

// UserMessage is a message a caller sent through Scheduler.Send or
// Scheduler.Ask. For Ask, Handle answers with Reply{To: ev.ID, ...}; the
// reply reaches the caller once the state change it may have made is
// committed.
type UserMessage struct {
	ID      uint64
	Payload any
	// Request is true when the caller waits for a Reply.
	Request bool
}

func (Subscribed) event()         {}
func (OffersReceived) event()     {}
func (OfferRescinded) event()     {}
func (TaskUpdate) event()         {}
func (Orphan) event()             {}
func (AgentLost) event()          {}
func (ExecutorLost) event()       {}
func (FrameworkMessage) event()   {}
func (MesosError) event()         {}
func (Tick) event()               {}
func (ReconciliationDone) event() {}
func (UserMessage) event()        {}

// Action is something Handle asks regent to do. Actions run in order,
// after the state change they came with is committed.
type Action interface{ action() }

// Launch starts tasks on offers of one agent (ACCEPT with LAUNCH, or
// LAUNCH_GROUP when Executor is set). The tasks enter the state as
// TASK_STAGING and are committed before the call is sent, so a new leader
// knows every task that may exist. Unused resources of the offers are
// declined with Filters (nil: the configured default).
type Launch struct {
	OfferIDs []string
	Tasks    []mesos.TaskInfo
	// Executor, when set, launches Tasks as one task group (LAUNCH_GROUP).
	Executor *mesos.ExecutorInfo
	// Data is stored with each task's record (Task.Data), e.g. its slot.
	Data    map[string][]byte
	Filters *mesos.Filters
}

// Kill asks Mesos to kill a task; the task stays in the state until a
// terminal update arrives.
type Kill struct{ TaskID string }

// Forget removes a task from the state. If Mesos still runs it, regent
// kills it (the old library's rule: a task that disappears from the state
// is killed).
type Forget struct{ TaskID string }

// Adopt takes an Orphan into the state instead of killing it.
type Adopt struct {
	Status mesos.TaskStatus
	Data   []byte
}

// Decline declines offers with a filter (nil: the configured default).
type Decline struct {
	OfferIDs []string
	Filters  *mesos.Filters
}

// Suppress stops offers until Revive.
type Suppress struct{}

// Revive asks for offers again and clears decline filters.
type Revive struct{}

// Reconcile asks Mesos for the state of tasks (all non-terminal ones when
// TaskIDs is empty) outside the reconciliation regent runs by itself.
type Reconcile struct{ TaskIDs []string }

// SendMessage sends a framework message to an executor.
type SendMessage struct {
	AgentID, ExecutorID string
	Data                []byte
}

// Reply answers an Ask.
type Reply struct {
	To    uint64
	Value any
	Err   error
}

func (Launch) action()      {}
func (Kill) action()        {}
func (Forget) action()      {}
func (Adopt) action()       {}
func (Decline) action()     {}
func (Suppress) action()    {}
func (Revive) action()      {}
func (Reconcile) action()   {}
func (SendMessage) action() {}
func (Reply) action()       {}

// Task is regent's record of one task: what it persists and hands to the
// framework.
type Task struct {
	ID      string          `json:"id"`
	Name    string          `json:"name,omitempty"`
	AgentID string          `json:"agent_id,omitempty"`
	State   mesos.TaskState `json:"state"`
	// Reason and Message of the latest status.
	Reason  int32  `json:"reason,omitempty"`
	Message string `json:"message,omitempty"`
	// Launched is when regent committed the launch; Updated when the
	// latest status arrived.
	Launched time.Time `json:"launched"`
	Updated  time.Time `json:"updated"`
	// Data is the framework's own payload for the task (from Launch.Data).
	Data []byte `json:"data,omitempty"`
}

// Terminal reports whether the task's state is terminal in Mesos' sense.
func (t Task) Terminal() bool { return IsTerminal(t.State) }

// IsTerminal follows Mesos: FINISHED, FAILED, KILLED, LOST, ERROR, DROPPED,
// GONE and GONE_BY_OPERATOR are terminal. UNREACHABLE and UNKNOWN are not
// (the task may come back), and neither is any state this code does not
// know yet.
func IsTerminal(s mesos.TaskState) bool {
	switch s {
	case mesos.TASK_FINISHED, mesos.TASK_FAILED, mesos.TASK_KILLED, mesos.TASK_LOST,
		mesos.TASK_ERROR, mesos.TASK_DROPPED, mesos.TASK_GONE, mesos.TASK_GONE_BY_OPERATOR:
		return true
	}
	return false
}

// TaskView is a read-only view of the tasks regent tracks.
type TaskView interface {
	Get(id string) (Task, bool)
	Len() int
	// Range calls f for every task, in no particular order, until f
	// returns false.
	Range(f func(Task) bool)
}
