package fleet

import (
	"errors"
	"fmt"
	"time"
)

// Requests, sent with core.Scheduler.Ask (or Send, which applies them
// without an answer). Each is accepted as a value or a pointer.
type (
	// Blacklist stops launches on an agent and kills its task. The reply
	// value is a BlacklistResult.
	Blacklist struct{ AgentID, Reason string }
	// Unblacklist allows launches on an agent again, with a clean failure
	// count. The reply value is a BlacklistResult.
	Unblacklist struct{ AgentID string }
	// ListAgents asks for every agent the framework knows. The reply value
	// is a []AgentView sorted by ID.
	ListAgents struct{}
	// ListBlacklist asks for the blacklisted agents. The reply value is a
	// []AgentView sorted by ID.
	ListBlacklist struct{}
	// ListTasks asks for the tasks regent tracks. The reply value is a
	// []core.Task sorted by ID.
	ListTasks struct{}
)

// BlacklistResult answers Blacklist and Unblacklist.
type BlacklistResult struct {
	// Agent is the agent after the request.
	Agent AgentView `json:"agent"`
	// Changed is false when the agent already was (or was not)
	// blacklisted; the request then changed nothing.
	Changed bool `json:"changed"`
	// KilledTask is the task a Kill was sent for, if any. The kill is
	// asynchronous: the task's end arrives as a status update.
	KilledTask string `json:"killed_task,omitempty"`
}

// AgentView is an agent as operators see it.
type AgentView struct {
	ID            string    `json:"id"`
	Hostname      string    `json:"hostname,omitempty"`
	Blacklisted   bool      `json:"blacklisted,omitempty"`
	Reason        string    `json:"reason,omitempty"`
	BlacklistedAt time.Time `json:"blacklisted_at,omitzero"`
	// TaskID and TaskState describe the task holding the agent's slot
	// (a non-terminal one), if any.
	TaskID    string `json:"task_id,omitempty"`
	TaskState string `json:"task_state,omitempty"`
	Failures  int    `json:"failures,omitempty"`
	// NextLaunch is set while the agent waits out a relaunch backoff.
	NextLaunch time.Time `json:"next_launch,omitzero"`
	LastOffer  time.Time `json:"last_offer,omitzero"`
	Gone       bool      `json:"gone,omitempty"`
	LastExit   *Exit     `json:"last_exit,omitempty"`
}

// Errors of Blacklist and Unblacklist, wrapped with the agent id.
var (
	// ErrUnknownAgent: the agent never offered resources and runs no task
	// of ours.
	ErrUnknownAgent = errors.New("fleet: unknown agent")
	// ErrBadAgentID: the id cannot be a Mesos agent id (see ValidAgentID).
	ErrBadAgentID = errors.New("fleet: bad agent id")
)

// maxAgentID is the longest agent id accepted, in bytes.
const maxAgentID = 255

// ValidAgentID reports, wrapping ErrBadAgentID, an id that is empty,
// longer than 255 bytes, or holds a character outside [A-Za-z0-9._:-]
// (Mesos agent ids look like "<uuid>-S3").
func ValidAgentID(id string) error {
	switch {
	case id == "":
		return fmt.Errorf("%w: empty", ErrBadAgentID)
	case len(id) > maxAgentID:
		return fmt.Errorf("%w %.32q...: %d bytes, at most %d allowed", ErrBadAgentID, id, len(id), maxAgentID)
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; !agentIDByte(c) {
			return fmt.Errorf("%w %q: byte %d is %q; only A-Z a-z 0-9 . _ : - are allowed", ErrBadAgentID, id, i, c)
		}
	}
	return nil
}

func agentIDByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '.' || c == '_' || c == ':' || c == '-'
}
