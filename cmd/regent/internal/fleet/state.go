package fleet

import "time"

// State is the framework's persisted state. It encodes deterministically
// with encoding/json (core's default codec): map keys are sorted.
type State struct {
	// NextTask is the sequence number of the next task id. It is part of
	// the state, committed with the launch, so ids stay unique across
	// failovers.
	NextTask uint64 `json:"next_task"`
	// Agents holds one record per agent ever seen, by agent id.
	Agents map[string]Agent `json:"agents,omitempty"`
}

// Agent is what the framework remembers about one agent.
type Agent struct {
	// Hostname is the agent's hostname, from its latest offer.
	Hostname string `json:"hostname,omitempty"`
	// LastOffer is when the agent last offered resources.
	LastOffer time.Time `json:"last_offer,omitzero"`
	// Gone is set by an agent-lost event and cleared by the agent's next
	// offer.
	Gone bool `json:"gone,omitempty"`
	// Blacklisted agents get no tasks; BlacklistedAt and Reason say when
	// and why an operator blacklisted it.
	Blacklisted   bool      `json:"blacklisted,omitempty"`
	BlacklistedAt time.Time `json:"blacklisted_at,omitzero"`
	Reason        string    `json:"reason,omitempty"`
	// Failures counts the consecutive tasks that ended on the agent
	// (finished ones included) without having run for Config.ResetAfter.
	Failures int `json:"failures,omitempty"`
	// NotBefore is the earliest time of the next launch on the agent.
	NotBefore time.Time `json:"not_before,omitzero"`
	// RunningSince is when the agent's current task was first seen
	// RUNNING; it tells how long a task ran even when reconciliation
	// refreshed its record since.
	RunningSince time.Time `json:"running_since,omitzero"`
	// LastExit is how the latest task on the agent ended.
	LastExit *Exit `json:"last_exit,omitempty"`
}

// Exit is how a task ended: its terminal status.
type Exit struct {
	TaskID string `json:"task_id"`
	// State is the terminal state's name, such as "TASK_FAILED".
	State string `json:"state"`
	// Reason is the status' reason, such as "REASON_COMMAND_EXECUTOR_FAILED".
	Reason string `json:"reason,omitempty"`
	// Message is the status' message, cut to maxMessage bytes.
	Message string `json:"message,omitempty"`
	// At is when the framework learnt of it.
	At time.Time `json:"at"`
}

// maxMessage bounds the status message kept in an Exit, so that a chatty
// failure cannot grow the state (it is written on every commit).
const maxMessage = 1024
