// Package mesossim is a simulated Apache Mesos master that speaks the real v1
// scheduler HTTP API, faithfully enough that frameworks written against a
// real master (mesos-go's own client among them) run against it unchanged.
//
// A Cluster holds the state one or more masters share: agents with their
// resources, frameworks, offers and tasks. Exactly one master leads; the
// others answer 307 with the leader's address, and FailoverMaster moves the
// lead. Each master serves:
//
//   - POST /api/v1/scheduler (and /master/api/v1/scheduler): SUBSCRIBE answers
//     200 with a chunked RecordIO stream of events (SUBSCRIBED, HEARTBEAT,
//     OFFERS, RESCIND, UPDATE, FAILURE, ERROR) in the codec Accept asks for;
//     every other call needs the framework's current Mesos-Stream-Id and is
//     answered 202 (UPDATE_FRAMEWORK: 200), or 4xx with a plain-text reason
//     in the order a real master checks.
//   - GET /master/state: a subset of the real master's state JSON.
//   - /sim/...: the control API (agents, faults, failover, snapshot).
//
// The path of a task: ACCEPT validates the offers, then each task against
// what remains (TASK_ERROR, or TASK_LOST/TASK_DROPPED for bad offers, sent
// by the master without a uuid). A valid task is STAGING; after LaunchDelay
// it reaches its agent, which produces TASK_STARTING, TASK_RUNNING and later
// a terminal update, each with a uuid. As in the agent's status update
// manager, only the head update of a task is in flight, re-sent with
// exponential backoff until acknowledged; the next waits behind it.
// Resources are freed when a terminal update is generated; the task leaves
// the master when that update is acknowledged.
//
// Not simulated: executors (MESSAGE is accepted and dropped), reservations,
// volumes and operation feedback (those offer operations are ignored,
// counted in FrameworkCounters.OperationsIgnored), inverse offers,
// maintenance, quota and authentication.
package mesossim
