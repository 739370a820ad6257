package mesossim

import (
	"fmt"
	"sort"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"
	"go.uber.org/zap"
)

// AgentState is where an agent stands with the leading master.
type AgentState string

// The states of an agent.
const (
	AgentActive      AgentState = "active"      // registered, offers its resources
	AgentRecovering  AgentState = "recovering"  // known from before a master failover, not yet re-registered
	AgentUnreachable AgentState = "unreachable" // partitioned away; may come back
	AgentGone        AgentState = "gone"        // removed for good
)

// AgentSpec describes an agent to add. Resources default to
// cpus:4;mem:8192;disk:65536;ports:[31000-32000] when empty.
type AgentSpec struct {
	Hostname   string
	Resources  []mesos.Resource
	Attributes []mesos.Attribute
}

// DefaultAgentResources are what an AgentSpec without resources offers.
func DefaultAgentResources() []mesos.Resource {
	return []mesos.Resource{
		{Name: "cpus", Type: mesos.SCALAR.Enum(), Scalar: &mesos.Value_Scalar{Value: 4}},
		{Name: "mem", Type: mesos.SCALAR.Enum(), Scalar: &mesos.Value_Scalar{Value: 8192}},
		{Name: "disk", Type: mesos.SCALAR.Enum(), Scalar: &mesos.Value_Scalar{Value: 65536}},
		{Name: "ports", Type: mesos.RANGES.Enum(), Ranges: &mesos.Value_Ranges{Range: []mesos.Value_Range{{Begin: 31000, End: 32000}}}},
	}
}

type agent struct {
	id         string
	seq        int // creation order
	hostname   string
	attributes []mesos.Attribute
	total      pool
	avail      pool // total minus live tasks minus outstanding offers
	state      AgentState
	tasks      map[*task]struct{}
	regTimer   *time.Timer
}

func (ag *agent) stopTimers() {
	if ag.regTimer != nil {
		ag.regTimer.Stop()
	}
	for t := range ag.tasks {
		t.stopTimers()
	}
}

// AddAgent registers a new agent and returns its id.
func (c *Cluster) AddAgent(spec AgentSpec) (string, error) {
	rs := spec.Resources
	if len(rs) == 0 {
		rs = DefaultAgentResources()
	}
	p, err := poolOf(rs)
	if err != nil {
		return "", fmt.Errorf("add agent: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	id := fmt.Sprintf("%s-S%d", c.masterID, c.nextAgent)
	c.nextAgent++
	host := spec.Hostname
	if host == "" {
		host = fmt.Sprintf("agent-%d.sim", c.nextAgent-1)
	}
	ag := &agent{id: id, seq: len(c.agentOrder), hostname: host, attributes: spec.Attributes, total: p, avail: p.clone(),
		state: AgentActive, tasks: map[*task]struct{}{}}
	c.agents[id] = ag
	c.agentOrder = append(c.agentOrder, ag)
	c.kickFullLocked()
	return id, nil
}

// AgentIDs lists the agents in the order they were added, gone ones excluded.
func (c *Cluster) AgentIDs() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, ag := range c.agentOrder {
		if ag.state != AgentGone {
			out = append(out, ag.id)
		}
	}
	return out
}

func (c *Cluster) agentFor(id string) (*agent, error) {
	ag := c.agents[id]
	if ag == nil || ag.state == AgentGone {
		return nil, fmt.Errorf("%w: %q", ErrUnknownAgent, id)
	}
	return ag, nil
}

// RemoveAgent removes an agent for good, as an operator marking it gone does:
// its offers are rescinded, every framework receives FAILURE for it, and its
// tasks become TASK_GONE_BY_OPERATOR (TASK_LOST for frameworks that are not
// partition-aware), sent by the master without a uuid.
func (c *Cluster) RemoveAgent(id string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	ag, err := c.agentFor(id)
	if err != nil {
		return err
	}
	c.loseAgentLocked(ag, AgentGone)
	return nil
}

// PartitionAgent makes an agent unreachable: offers rescinded, FAILURE sent,
// its tasks reported TASK_UNREACHABLE (TASK_LOST when not partition-aware).
// The tasks keep running on the agent and come back with RestoreAgent.
func (c *Cluster) PartitionAgent(id string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	ag, err := c.agentFor(id)
	if err != nil {
		return err
	}
	if ag.state == AgentUnreachable {
		return nil
	}
	c.loseAgentLocked(ag, AgentUnreachable)
	return nil
}

// RestoreAgent lets an unreachable agent re-register. Tasks of
// partition-aware frameworks are known again in their current state (the
// framework learns it through reconciliation, as with a real master); tasks
// of other frameworks, already reported lost, are shut down.
func (c *Cluster) RestoreAgent(id string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	ag, err := c.agentFor(id)
	if err != nil {
		return err
	}
	if ag.state != AgentUnreachable {
		return fmt.Errorf("restore agent %s: it is %s, not unreachable", id, ag.state)
	}
	ag.state = AgentActive
	for t := range ag.tasks {
		if t.fw.partitionAware {
			t.unreachable = false
			continue
		}
		c.forgetTaskLocked(t)
	}
	for t := range ag.tasks {
		if len(t.updates) > 0 {
			c.deliverHeadLocked(t)
		}
	}
	c.kickFullLocked()
	return nil
}

func (c *Cluster) loseAgentLocked(ag *agent, to AgentState) {
	ag.state = to
	for _, o := range c.offersOnAgent(ag) {
		c.removeOfferLocked(o, true)
	}
	for _, fw := range c.frameworks {
		if fw.connected {
			aid := mesos.AgentID{Value: ag.id}
			fw.send(&scheduler.Event{Type: scheduler.Event_FAILURE, Failure: &scheduler.Event_Failure{AgentID: &aid}})
		}
	}
	tasks := make([]*task, 0, len(ag.tasks))
	for t := range ag.tasks {
		tasks = append(tasks, t)
	}
	sort.Slice(tasks, func(i, j int) bool { return tasks[i].id < tasks[j].id })
	for _, t := range tasks {
		if isTerminal(t.state) {
			if to == AgentGone {
				c.forgetTaskLocked(t)
			}
			continue
		}
		if to == AgentGone {
			st := lostState(t.fw, mesos.TASK_GONE_BY_OPERATOR)
			c.masterUpdateLocked(t.fw, t.id, ag.id, st, mesos.REASON_AGENT_REMOVED_BY_OPERATOR, "Agent removed", nil)
			c.forgetTaskLocked(t)
			continue
		}
		now := time.Now()
		if t.fw.partitionAware {
			t.unreachable = true
			t.unreachableSince = now
			c.masterUpdateLocked(t.fw, t.id, ag.id, mesos.TASK_UNREACHABLE, mesos.REASON_AGENT_DISCONNECTED, "Agent is unreachable", &now)
		} else {
			c.masterUpdateLocked(t.fw, t.id, ag.id, mesos.TASK_LOST, mesos.REASON_AGENT_DISCONNECTED, "Agent is unreachable", nil)
			t.unreachable = true
			t.unreachableSince = now
		}
	}
	c.log.Info("agent lost", zap.String("agent_id", ag.id), zap.String("state", string(to)))
}

func (c *Cluster) offersOnAgent(ag *agent) []*offer {
	var out []*offer
	for _, o := range c.offers {
		if o.ag == ag {
			out = append(out, o)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].id < out[j].id })
	return out
}
