package mesossim

import (
	"fmt"
	"math"
	"sort"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"
)

type offer struct {
	id    string
	fw    *framework
	ag    *agent
	res   pool
	role  string
	timer *time.Timer
}

func (o *offer) stopTimer() {
	if o.timer != nil {
		o.timer.Stop()
		o.timer = nil
	}
}

const maxRefuse = 365 * 24 * time.Hour

// refuseDuration applies Mesos' rules to Filters.refuse_seconds: unset or
// negative means 5 s; the value is capped at 365 days.
func refuseDuration(f *mesos.Filters) time.Duration {
	secs := 5.0
	if f != nil && f.RefuseSeconds != nil {
		secs = *f.RefuseSeconds
	}
	if secs < 0 || math.IsNaN(secs) {
		secs = 5
	}
	d := time.Duration(secs * float64(time.Second))
	if secs*float64(time.Second) > float64(maxRefuse) {
		d = maxRefuse
	}
	return d
}

// freeLocked returns resources to an agent and asks for an allocation of
// that agent soon.
func (c *Cluster) freeLocked(ag *agent, res pool) {
	ag.avail.add(res)
	c.changed[ag] = struct{}{}
	c.kickAllocation()
}

// kickFullLocked asks for an allocation over every agent soon (a framework
// arrived, filters were cleared, agents came back).
func (c *Cluster) kickFullLocked() {
	c.fullCycle = true
	c.kickAllocation()
}

// allocateLocked runs one allocation cycle over every agent (full) or only
// over those whose free resources changed since the last cycle, as Mesos'
// allocator does for event-triggered allocations: each agent's unoffered
// resources go, whole, to the next eligible framework in round-robin order.
func (c *Cluster) allocateLocked(now time.Time, full bool) {
	if c.leader < 0 {
		return
	}
	agents := c.agentOrder
	if full || c.fullCycle {
		c.fullCycle = false
	} else {
		agents = make([]*agent, 0, len(c.changed))
		for ag := range c.changed {
			agents = append(agents, ag)
		}
		sort.Slice(agents, func(i, j int) bool { return agents[i].seq < agents[j].seq })
	}
	clear(c.changed)
	fws := make([]*framework, 0, len(c.frameworks))
	for _, fw := range c.frameworks {
		if fw.connected && fw.known {
			fws = append(fws, fw)
		}
	}
	if len(fws) == 0 {
		return
	}
	sort.Slice(fws, func(i, j int) bool { return fws[i].id < fws[j].id })
	batches := map[*framework][]mesos.Offer{}
	for _, ag := range agents {
		if ag.state != AgentActive || ag.avail.empty() {
			continue
		}
		for k := 0; k < len(fws); k++ {
			fw := fws[(c.rr+k)%len(fws)]
			role, ok := c.offerRole(fw)
			if !ok || c.filtered(fw, ag, now) {
				continue
			}
			o := c.makeOfferLocked(fw, ag, role)
			batches[fw] = append(batches[fw], o)
			break
		}
		c.rr++
	}
	for _, fw := range fws {
		offers := batches[fw]
		fw.counters.OffersMade += len(offers)
		// A real master sends one OFFERS event per cycle; with thousands of
		// agents that outgrows clients' record limits (mesos-go: 4 MiB), so
		// the simulator splits it. Each part is a valid OFFERS event.
		for len(offers) > 0 {
			n := min(len(offers), maxOffersPerEvent)
			fw.send(&scheduler.Event{Type: scheduler.Event_OFFERS, Offers: &scheduler.Event_Offers{Offers: offers[:n]}})
			offers = offers[n:]
		}
	}
}

// maxOffersPerEvent bounds one OFFERS event to well under a megabyte.
const maxOffersPerEvent = 500

// offerRole picks the first subscribed role that is not suppressed.
func (c *Cluster) offerRole(fw *framework) (string, bool) {
	for _, r := range fw.roles() {
		if !fw.suppressed[r] {
			return r, true
		}
	}
	return "", false
}

// filtered reports whether a refuse filter of fw covers everything the agent
// could offer now. As in Mesos' allocator, a filter holds back only offers
// whose resources it contains: once more is free, the agent is offered again.
func (c *Cluster) filtered(fw *framework, ag *agent, now time.Time) bool {
	fs := fw.filters[ag.id]
	live := fs[:0]
	hit := false
	for _, f := range fs {
		if now.Before(f.until) {
			live = append(live, f)
			if f.res.contains(ag.avail) {
				hit = true
			}
		}
	}
	if len(live) == 0 {
		delete(fw.filters, ag.id)
	} else {
		fw.filters[ag.id] = live
	}
	return hit
}

func (c *Cluster) makeOfferLocked(fw *framework, ag *agent, role string) mesos.Offer {
	id := fmt.Sprintf("%s-O%d", c.masterID, c.nextOffer)
	c.nextOffer++
	o := &offer{id: id, fw: fw, ag: ag, res: ag.avail, role: role}
	ag.avail = newPool()
	c.offers[id] = o
	fw.offers[id] = o
	if c.cfg.OfferTimeout > 0 {
		o.timer = c.afterFunc(c.cfg.OfferTimeout, func() {
			if c.offers[id] == o {
				c.removeOfferLocked(o, true)
			}
		})
	}
	var execs []mesos.ExecutorID
	seen := map[string]bool{}
	for t := range ag.tasks {
		if t.fw == fw && t.executorID != "" && !isTerminal(t.state) && !seen[t.executorID] {
			seen[t.executorID] = true
			execs = append(execs, mesos.ExecutorID{Value: t.executorID})
		}
	}
	sort.Slice(execs, func(i, j int) bool { return execs[i].Value < execs[j].Value })
	r := role
	return mesos.Offer{
		ID: mesos.OfferID{Value: id}, FrameworkID: mesos.FrameworkID{Value: fw.id},
		AgentID: mesos.AgentID{Value: ag.id}, Hostname: ag.hostname,
		Resources: o.res.resources(role), Attributes: ag.attributes, ExecutorIDs: execs,
		AllocationInfo: &mesos.Resource_AllocationInfo{Role: &r},
	}
}

// removeOfferLocked withdraws an offer and returns its resources to the
// agent; with rescind the framework is told (RESCIND).
func (c *Cluster) removeOfferLocked(o *offer, rescind bool) {
	o.stopTimer()
	delete(c.offers, o.id)
	delete(o.fw.offers, o.id)
	c.freeLocked(o.ag, o.res)
	if rescind {
		o.fw.counters.OffersRescinded++
		o.fw.send(&scheduler.Event{Type: scheduler.Event_RESCIND, Rescind: &scheduler.Event_Rescind{OfferID: mesos.OfferID{Value: o.id}}})
	}
}

// returnResourcesLocked gives unused resources back to an agent with the
// framework's refuse filter for them.
func (c *Cluster) returnResourcesLocked(fw *framework, ag *agent, res pool, filters *mesos.Filters, now time.Time) {
	if d := refuseDuration(filters); d > 0 && !res.empty() {
		fw.filters[ag.id] = append(fw.filters[ag.id], filter{res: res, until: now.Add(d)})
	}
	c.freeLocked(ag, res)
}

func (c *Cluster) declineLocked(fw *framework, d *scheduler.Call_Decline) {
	now := time.Now()
	for _, oid := range d.OfferIDs {
		o := fw.offers[oid.Value]
		if o == nil {
			continue // unknown or expired offers are ignored, as by the real master
		}
		o.stopTimer()
		delete(c.offers, o.id)
		delete(fw.offers, o.id)
		fw.counters.OffersDeclined++
		c.returnResourcesLocked(fw, o.ag, o.res, d.Filters, now)
	}
}

func (c *Cluster) suppressLocked(fw *framework, roles []string) {
	if len(roles) == 0 {
		roles = fw.roles()
	}
	for _, r := range roles {
		fw.suppressed[r] = true
	}
}

// reviveLocked un-suppresses roles and clears every refuse filter.
func (c *Cluster) reviveLocked(fw *framework, roles []string) {
	if len(roles) == 0 {
		roles = fw.roles()
	}
	for _, r := range roles {
		delete(fw.suppressed, r)
	}
	fw.filters = map[string][]filter{}
	c.kickFullLocked()
}
