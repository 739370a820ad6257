package mesossim

import (
	"fmt"
	"math"
	"net/http"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"
	"go.uber.org/zap"
)

// framework is the master's record of one framework.
type framework struct {
	id   string
	info mesos.FrameworkInfo

	lastAcked mesos.TaskState // state of the update the latest ACKNOWLEDGE released
	stream    *stream         // nil while disconnected
	connected bool
	// known is false for a framework the current leading master has not
	// heard of yet (after a master failover, until it re-subscribes or an
	// agent running its tasks re-registers).
	known bool

	suppressed map[string]bool // roles
	filters    map[string][]filter
	offers     map[string]*offer
	tasks      map[string]*task // live tasks and terminal ones not yet acknowledged
	everUsed   map[string]struct{}

	partitionAware, killingState, multiRole bool

	failoverTimer *time.Timer
	counters      FrameworkCounters
}

type filter struct {
	res   pool
	until time.Time
}

// roles returns the roles the framework subscribed with.
func (fw *framework) roles() []string {
	if fw.multiRole {
		return fw.info.Roles
	}
	if fw.info.Role != nil && *fw.info.Role != "" {
		return []string{*fw.info.Role}
	}
	return []string{"*"}
}

func (fw *framework) send(ev *scheduler.Event) {
	if fw.stream != nil {
		fw.stream.send(ev)
	}
}

func (fw *framework) stopTimers() {
	if fw.failoverTimer != nil {
		fw.failoverTimer.Stop()
		fw.failoverTimer = nil
	}
}

func (fw *framework) setCapabilities() {
	fw.partitionAware, fw.killingState, fw.multiRole = false, false, false
	for _, c := range fw.info.Capabilities {
		switch c.GetType() {
		case mesos.FrameworkInfo_Capability_PARTITION_AWARE:
			fw.partitionAware = true
		case mesos.FrameworkInfo_Capability_TASK_KILLING_STATE:
			fw.killingState = true
		case mesos.FrameworkInfo_Capability_MULTI_ROLE:
			fw.multiRole = true
		}
	}
}

// validateFrameworkInfo applies the checks a real master makes after it has
// answered 200: their failures arrive as an ERROR event.
func validateFrameworkInfo(info *mesos.FrameworkInfo, suppressed []string) error {
	multi := false
	for _, c := range info.Capabilities {
		if c.GetType() == mesos.FrameworkInfo_Capability_MULTI_ROLE {
			multi = true
		}
	}
	if ft := info.GetFailoverTimeout(); math.IsNaN(ft) || math.IsInf(ft, 0) || ft < 0 {
		return fmt.Errorf("Invalid failover_timeout: %v", ft)
	}
	var roles []string
	if multi {
		if info.Role != nil {
			return fmt.Errorf("'FrameworkInfo.role' must not be set when the MULTI_ROLE capability is enabled")
		}
		roles = info.Roles
	} else {
		if len(info.Roles) > 0 {
			return fmt.Errorf("'FrameworkInfo.roles' must not be set unless the MULTI_ROLE capability is enabled")
		}
		roles = []string{info.GetRole()}
	}
	seen := map[string]bool{}
	for _, r := range roles {
		if err := validateRole(r); err != nil {
			return err
		}
		if seen[r] {
			return fmt.Errorf("'FrameworkInfo.roles' contains duplicate role '%s'", r)
		}
		seen[r] = true
	}
	for _, r := range suppressed {
		if !seen[r] {
			return fmt.Errorf("Suppressed role '%s' is not contained in the list of roles", r)
		}
	}
	return nil
}

func validateRole(r string) error {
	switch {
	case r == "":
		return fmt.Errorf("Invalid role: empty role name")
	case r == "." || r == "..":
		return fmt.Errorf("Invalid role '%s'", r)
	case r[0] == '-' || r[0] == '/' || r[len(r)-1] == '/':
		return fmt.Errorf("Invalid role '%s'", r)
	}
	for _, ch := range r {
		if ch <= ' ' || ch == 0x7f || ch == '\\' {
			return fmt.Errorf("Invalid role '%s': contains a whitespace or control character or backslash", r)
		}
	}
	return nil
}

// subscribeLocked handles a SUBSCRIBE that passed HTTP-level validation and
// has been answered 200 on stream s (before: what Config.BeforeCall
// returned for it). It returns the framework, or nil when the
// subscription was refused with an ERROR event (then s is closing).
func (c *Cluster) subscribeLocked(s *stream, sub *scheduler.Call_Subscribe, before any) *framework {
	info := *sub.FrameworkInfo
	if err := validateFrameworkInfo(&info, sub.SuppressedRoles); err != nil {
		c.refuseLocked(s, err.Error())
		return nil
	}
	id := ""
	if info.ID != nil {
		id = info.ID.Value
	}
	if id != "" && c.completed[id] {
		c.refuseLocked(s, "Framework has been removed")
		return nil
	}
	fw := c.frameworks[id]
	if fw == nil {
		if id == "" {
			id = fmt.Sprintf("%s-%04d", c.masterID, c.nextFramework)
			c.nextFramework++
		}
		fw = &framework{
			id: id, filters: map[string][]filter{}, offers: map[string]*offer{},
			tasks: map[string]*task{}, everUsed: map[string]struct{}{},
		}
		c.frameworks[id] = fw
		c.log.Info("framework added", zap.String("framework_id", id), zap.String("name", info.Name))
	} else {
		// Fields a re-subscribe may not change keep their first value, as the
		// real master keeps them.
		info.User = fw.info.User
		info.Principal = fw.info.Principal
		info.Checkpoint = fw.info.Checkpoint
		if fw.stream != nil {
			old := fw.stream
			old.send(errorEvent("Framework failed over"))
			old.close()
			fw.counters.FailedOver++
			c.log.Info("framework failed over", zap.String("framework_id", id))
		}
	}
	info.ID = &mesos.FrameworkID{Value: id}
	fw.info = info
	fw.setCapabilities()
	fw.stopTimers()
	fw.stream = s
	fw.connected = true
	fw.known = true
	fw.suppressed = map[string]bool{}
	for _, r := range sub.SuppressedRoles {
		fw.suppressed[r] = true
	}
	// Outstanding offers are discarded without RESCIND; fresh ones follow.
	for _, o := range fw.offers {
		c.removeOfferLocked(o, false)
	}
	fw.counters.Subscriptions++
	if c.cfg.OnCall != nil {
		c.cfg.OnCall(CallRecord{At: time.Now(), FrameworkID: id, Type: "SUBSCRIBE", StreamID: s.id, Status: http.StatusOK, Before: before})
	}
	hb := c.cfg.HeartbeatInterval.Seconds()
	mi := c.masters[c.leader].info(c.masterID, c.cfg.Version)
	s.send(&scheduler.Event{Type: scheduler.Event_SUBSCRIBED, Subscribed: &scheduler.Event_Subscribed{
		FrameworkID: &mesos.FrameworkID{Value: id}, HeartbeatIntervalSeconds: &hb, MasterInfo: &mi,
	}})
	s.send(&scheduler.Event{Type: scheduler.Event_HEARTBEAT})
	c.kickFullLocked()
	return fw
}

func (c *Cluster) refuseLocked(s *stream, msg string) {
	s.send(errorEvent(msg))
	s.close()
	c.stats.RefusedSubscriptions++
}

func errorEvent(msg string) *scheduler.Event {
	return &scheduler.Event{Type: scheduler.Event_ERROR, Error: &scheduler.Event_Error{Message: msg}}
}

// streamEndedLocked runs when the writer of s returned: the client went
// away, the stream was superseded, or the master closed it.
func (c *Cluster) streamEndedLocked(fw *framework, s *stream) {
	if fw == nil || fw.stream != s {
		return
	}
	c.disconnectLocked(fw)
}

// disconnectLocked marks fw disconnected: offers are withdrawn, calls get
// 403, and the failover timer starts.
func (c *Cluster) disconnectLocked(fw *framework) {
	if fw.stream != nil {
		fw.stream.close()
	}
	fw.stream = nil
	fw.connected = false
	for _, o := range fw.offers {
		c.removeOfferLocked(o, false)
	}
	fw.stopTimers()
	timeout := time.Duration(fw.info.GetFailoverTimeout() * float64(time.Second))
	c.log.Info("framework disconnected", zap.String("framework_id", fw.id), zap.Duration("failover_timeout", timeout))
	fw.failoverTimer = c.afterFunc(timeout, func() {
		if c.frameworks[fw.id] == fw && !fw.connected {
			c.log.Info("framework failover timeout", zap.String("framework_id", fw.id))
			c.removeFrameworkLocked(fw)
		}
	})
}

// removeFrameworkLocked tears a framework down: every task is killed, its
// id is completed and may never subscribe again.
func (c *Cluster) removeFrameworkLocked(fw *framework) {
	fw.stopTimers()
	for _, o := range fw.offers {
		c.removeOfferLocked(o, false)
	}
	for _, t := range fw.tasks {
		c.forgetTaskLocked(t)
	}
	if fw.stream != nil {
		fw.stream.close()
		fw.stream = nil
	}
	fw.connected = false
	delete(c.frameworks, fw.id)
	c.completed[fw.id] = true
	c.stats.FrameworksRemoved++
	c.kickFullLocked()
}
