// Package fleet is the framework the regent binary runs: one task per
// agent, done right. It is a pure core.Framework[State]: Handle does no I/O
// and reads no clock (time comes from core.Input.Now), so every rule below
// is tested by feeding it hand-built inputs.
//
// # Data path
//
// core calls Handle with the framework's State (the task-id sequence and one
// Agent record per agent ever seen) and one event:
//
//   - OffersReceived: every offer's agent is recorded (hostname, last offer,
//     no longer gone). An agent needs a task when it is not blacklisted,
//     no non-terminal task of ours is on it (STAGING, STARTING, RUNNING,
//     KILLING, UNREACHABLE and UNKNOWN all hold the slot) and its relaunch
//     backoff has expired. Such an agent gets one task on the first of its
//     offers whose unreserved resources for the configured role hold the
//     task's cpus and mem; every other offer is declined explicitly, with a
//     long filter (Config.DeclineRefuse) when the agent needs nothing, or
//     with the remaining backoff when it waits for one.
//   - TaskUpdate: a terminal state is written into the agent's LastExit and
//     the task is forgotten. Unless the agent is blacklisted its failure
//     count grows (finishing counts too: a command that exits at once must
//     not spin), its next launch is delayed by an exponential backoff, and
//     offers are revived so the agent's decline filter does not delay the
//     relaunch. A task that ran for Config.ResetAfter resets the count.
//   - AgentLost marks the agent gone until it offers again. Orphans are left
//     to core, which kills them.
//   - UserMessage carries operator requests (Blacklist, Unblacklist,
//     ListAgents, ListBlacklist, ListTasks), sent with core.Scheduler.Ask;
//     each is answered with a core.Reply, which core delivers once the state
//     change it made is committed.
//
// Handle returns the next State and the actions; core commits the state
// (task launches enter it as STAGING, with the advanced task-id sequence)
// before any launch, kill, decline or reply leaves the process. Task ids
// therefore stay unique across failovers: a new leader loads the sequence
// with the tasks.
//
// Handle updates the State's Agents map in place and returns it, as core
// allows (it keeps only what Handle returns); a caller replaying a history
// must not reuse a State it has passed to Handle.
package fleet
