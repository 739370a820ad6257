// Package api holds the JSON bodies of regent's REST API and a client for
// it, shared by the replicas, `regent status` and the tests.
package api

import (
	"time"

	"github.com/regent-sched/regent/cmd/regent/internal/fleet"
	"github.com/regent-sched/regent/core"
	"github.com/regent-sched/regent/ha"
)

// The JSON bodies of the REST API. Every error is {"error": "..."}.
type (
	// Info answers GET /v1/info.
	Info struct {
		Framework      FrameworkInfo        `json:"framework"`
		Master         string               `json:"master,omitempty"`
		MasterSpec     string               `json:"master_spec"`
		Subscribed     bool                 `json:"subscribed"`
		Task           TaskSpec             `json:"task"`
		Leader         ha.LeaderInfo        `json:"leader"`
		Tasks          int                  `json:"tasks"`
		TasksByState   map[string]int       `json:"tasks_by_state"`
		Reconciliation core.ReconcileStatus `json:"reconciliation"`
		Generation     uint64               `json:"generation"`
		Store          StoreInfo            `json:"store"`
		Version        string               `json:"version"`
	}
	// FrameworkInfo is what the framework registered as.
	FrameworkInfo struct {
		ID              string `json:"id"`
		Name            string `json:"name"`
		Role            string `json:"role"`
		Principal       string `json:"principal,omitempty"`
		User            string `json:"user"`
		FailoverTimeout string `json:"failover_timeout"`
	}
	// TaskSpec is what every task gets.
	TaskSpec struct {
		CPUs    float64 `json:"cpus"`
		Mem     float64 `json:"mem"`
		Command string  `json:"command"`
	}
	// StoreInfo names the coordination store (never its credentials).
	StoreInfo struct {
		Kind   string `json:"kind"`
		Prefix string `json:"prefix"`
	}
	// Leader answers GET /v1/leader, from the replica asked.
	Leader struct {
		Leader ha.LeaderInfo `json:"leader"`
		Self   Self          `json:"self"`
	}
	// Self is the replica that answered.
	Self struct {
		ID             string    `json:"id"`
		Address        string    `json:"address"`
		Leading        bool      `json:"leading"`
		Ready          bool      `json:"ready"`
		Stopping       bool      `json:"stopping,omitempty"`
		Term           int64     `json:"term,omitempty"`
		Transitions    int       `json:"transitions"`
		LastTransition time.Time `json:"last_transition,omitzero"`
		LastReason     string    `json:"last_reason,omitempty"`
		Started        time.Time `json:"started"`
	}
	// Replicas answers GET /v1/replicas: every replica campaigning now.
	Replicas struct {
		Replicas []Replica `json:"replicas"`
	}
	// Tasks answers GET /v1/tasks.
	Tasks struct {
		Tasks []core.Task `json:"tasks"`
	}
	// Agents answers GET /v1/agents and GET /v1/blacklist.
	Agents struct {
		Agents []fleet.AgentView `json:"agents"`
	}
	// Error is every error body.
	Error struct {
		Error string `json:"error"`
	}
)

// BlacklistRequest is the optional body of POST /v1/blacklist/{agent}.
type BlacklistRequest struct {
	Reason string `json:"reason"`
}

// Headers of forwarded requests and of every answer.
const (
	// HeaderForwardedBy marks a request a standby forwarded; the receiver
	// never forwards it again (no loops while the leadership moves).
	HeaderForwardedBy = "X-Regent-Forwarded-By"
	// HeaderServedBy names the replica whose state answered.
	HeaderServedBy = "X-Regent-Served-By"
)

// Replica is one campaigning replica as the store lists it.
type Replica = ha.LeaderInfo

// StepDown answers POST /v1/leader/step-down.
type StepDown struct {
	SteppingDown string `json:"stepping_down"`
}
