package mesossim

import (
	"fmt"
	"time"

	"go.uber.org/zap"
)

// FailoverMaster simulates a failover of the leading master. Every
// subscription stream ends (a plain EOF, as when the process dies); the new
// leader has a new id, knows no framework until it re-subscribes or one of
// its agents re-registers, and has forgotten removed frameworks. Launches
// still on their way to an agent are lost without a trace. Agents
// re-register after Config.AgentReregisterDelay; until then explicit
// reconciliation of their tasks gets no answer.
//
// With several masters leadership passes to the next one; with one, the same
// address comes back as a new master. For gap > 0 no master leads meanwhile:
// calls get 503.
func (c *Cluster) FailoverMaster(gap time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	old := c.leader
	if old < 0 {
		old = 0
	}
	c.stats.MasterFailovers++
	c.generation++
	for _, fw := range c.frameworks {
		if fw.stream != nil {
			fw.stream.close()
			fw.stream = nil
		}
		fw.connected = false
		fw.known = false
		fw.stopTimers()
		for _, o := range fw.offers {
			c.removeOfferLocked(o, false)
		}
		fw.filters = map[string][]filter{}
		fw.suppressed = map[string]bool{}
		for _, t := range fw.tasks {
			if !t.reachedAgent {
				c.stats.LaunchesLost++
				c.forgetTaskLocked(t)
			}
		}
	}
	c.completed = map[string]bool{}
	c.heldLaunches = nil
	for _, ag := range c.agentOrder {
		if ag.state != AgentActive {
			continue
		}
		ag.state = AgentRecovering
		if ag.regTimer != nil {
			ag.regTimer.Stop()
		}
		a := ag
		ag.regTimer = c.afterFunc(c.cfg.AgentReregisterDelay, func() { c.reregisterLocked(a) })
	}
	next := (old + 1) % len(c.masters)
	c.log.Info("master failover", zap.Int("from", old), zap.Int("to", next), zap.Duration("gap", gap))
	if gap <= 0 {
		c.electLocked(next)
		return
	}
	c.leader = -1
	c.publishLeaderLocked()
	c.afterFunc(gap, func() { c.electLocked(next) })
}

func (c *Cluster) electLocked(next int) {
	c.masterID = c.newMasterID()
	c.leader = next
	c.publishLeaderLocked()
	c.kickFullLocked()
}

// reregisterLocked is an agent re-registering with a new leading master:
// its tasks are known again, their frameworks too (as disconnected ones
// until they subscribe), and held status updates flow again.
func (c *Cluster) reregisterLocked(ag *agent) {
	if ag.state != AgentRecovering {
		return
	}
	ag.state = AgentActive
	ag.regTimer = nil
	for t := range ag.tasks {
		t.fw.known = true
	}
	for t := range ag.tasks {
		if len(t.updates) > 0 {
			c.deliverHeadLocked(t)
		}
	}
	c.kickFullLocked()
}

// HoldLaunches keeps launches from reaching their agents (true) until
// released (false), when they all arrive. A master failover meanwhile loses
// them: the way to test that reconciliation resolves a launch that vanished.
func (c *Cluster) HoldLaunches(hold bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.holdLaunches = hold
	if hold {
		return
	}
	held := c.heldLaunches
	c.heldLaunches = nil
	for _, t := range held {
		c.arriveLocked(t)
	}
}

// StallStreams stops (true) or resumes (false) all writing on subscription
// streams: no events, no heartbeats, while the TCP connections stay open.
// This is the silent master a heartbeat watchdog exists for.
func (c *Cluster) StallStreams(stall bool) {
	c.mu.Lock()
	c.stalled = stall
	var streams []*stream
	for _, fw := range c.frameworks {
		if fw.stream != nil {
			streams = append(streams, fw.stream)
		}
	}
	c.mu.Unlock()
	for _, s := range streams {
		s.signal()
	}
}

// FailNextRequests answers the next n scheduler calls (SUBSCRIBE included)
// with 503, as an overloaded or recovering master would.
func (c *Cluster) FailNextRequests(n int) {
	c.mu.Lock()
	c.failRequests = n
	c.mu.Unlock()
}

// DisconnectFramework closes a framework's subscription from the master's
// side, as a network cut does; the framework's failover timer starts.
func (c *Cluster) DisconnectFramework(id string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	fw := c.frameworks[id]
	if fw == nil || !fw.connected {
		return fmt.Errorf("disconnect framework %q: not connected", id)
	}
	c.disconnectLocked(fw)
	return nil
}
