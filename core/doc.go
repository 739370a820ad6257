// Package core is regent's scheduler: a framework author's pure logic run
// in one serial loop against the Mesos v1 scheduler HTTP API, with every
// state change committed through persist before anything that depends on it
// leaves the process.
//
// A framework is a Framework[S]: Handle(state, input) returns the next
// state and a list of actions. It does no I/O and reads no clock (Input.Now
// carries time), so tests replay histories deterministically.
//
// The path of one status update (the hot path):
//
//	master ──UPDATE──► conn (one goroutine per subscription, heartbeat watchdog)
//	      ──► loop: machine.update → Framework.Handle → new state + actions
//	      ──► group commit: one fenced persist.Commit for everything changed
//	          since the last one (the loop keeps folding events meanwhile)
//	      ──► only then: ACKNOWLEDGE, ACCEPT/LAUNCH, KILL, replies to Ask,
//	          in order, by the effects runner
//
// A crash anywhere before the commit loses nothing: Mesos re-sends every
// unacknowledged update to the next leader. Launches enter the state as
// TASK_STAGING and are committed before ACCEPT is sent, so a new leader
// knows every task that might exist.
//
// On every SUBSCRIBED the machine runs Mesos' reconciliation algorithm:
// explicit RECONCILE for every non-terminal task, re-sent with truncated
// exponential backoff for those still unanswered, then one implicit
// RECONCILE whose answers reveal orphans (killed unless the framework
// Adopts them). Offers that arrive meanwhile are declined and revived
// afterwards. It also reconciles periodically and when a launch stays
// STAGING too long.
//
// The connection (conn.go) follows 307 redirects to the leading master and
// sends every later call there (mesos-go's own client does not), re-subscribes
// with truncated exponential backoff and jitter after any disconnection, and
// drops a subscription that stays silent for WatchdogMisses heartbeat
// intervals. "Framework failed over" and "Framework has been removed" end
// Run with ErrFailedOver and ErrFrameworkRemoved: re-subscribing cannot help
// and regent never mints a new FrameworkID by itself.
package core
