package mesossim

import (
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/mesos/mesos-go/api/v1/lib/scheduler"
	"go.uber.org/zap"
)

// Config sets up a simulated Mesos cluster. The zero value of every field
// means "the real master's default" unless its comment says otherwise; tests
// shorten the intervals.
type Config struct {
	// Masters is how many masters share the cluster state. Exactly one leads;
	// the others answer 307 with the leader's address. Default 1.
	Masters int
	// Listen holds one listen address per master. Missing entries default to
	// 127.0.0.1:0 (a free loopback port).
	Listen []string
	// Hostname is what MasterInfo and redirects advertise. Default: the host
	// part of each master's listen address.
	Hostname string

	// HeartbeatInterval is sent in SUBSCRIBED and paces HEARTBEAT events.
	// Real masters use 15 s.
	HeartbeatInterval time.Duration
	// AllocationInterval paces offer cycles (real default 1 s). Offers are
	// also made shortly after resources free up or a framework subscribes.
	AllocationInterval time.Duration
	// OfferTimeout rescinds an offer left unused this long; 0 never does
	// (the real master's default).
	OfferTimeout time.Duration

	// LaunchDelay is how long a launch takes to reach its agent. A master
	// failover inside that window loses the launch, as a real one can.
	LaunchDelay time.Duration
	// StartDelay separates TASK_STARTING from TASK_RUNNING, and TASK_KILLING
	// from TASK_KILLED.
	StartDelay time.Duration
	// TaskDuration is the lifetime of a task whose command does not say
	// (`sleep N` does); 0 runs it until it is killed.
	TaskDuration time.Duration
	// FailureRate is the probability in [0,1] that a task fails (TASK_FAILED)
	// at a random point of its life instead of finishing.
	FailureRate float64
	// StatusRetryMin and StatusRetryMax bound the agent's resend interval of an
	// unacknowledged status update (real: 10 s doubling to 10 min).
	StatusRetryMin, StatusRetryMax time.Duration
	// AgentReregisterDelay is how long agents take to re-register with a new
	// leading master; explicit reconciliation of their tasks gets no answer
	// meanwhile. Default 2 s.
	AgentReregisterDelay time.Duration

	// ZooKeeper, when set, is a list of host:port servers where the leading
	// master publishes its MasterInfo as an ephemeral sequential
	// `json.info_` znode under ZKPath (default /mesos).
	ZooKeeper []string
	ZKPath    string

	// Seed makes task failures and IDs reproducible. 0 picks one from the clock.
	Seed int64
	// Version is reported in MasterInfo. Default "1.10.0".
	Version string
	// Logger receives the simulator's own log; default a no-op logger.
	Logger *zap.Logger
	// OnCall, when set, is called for every scheduler call a master handled
	// (SUBSCRIBE included, refused calls too), in the order the cluster
	// handled them, with the cluster's lock held: it must return quickly
	// and must not call the Cluster. Drills time failovers and check that
	// no deposed scheduler's call was accepted with it.
	OnCall func(CallRecord)
	// BeforeCall, when set, is called with every valid call (SUBSCRIBE
	// included) before the master handles it, without the cluster's
	// lock: it may take a moment (a drill reads the scheduler's store
	// there, to check that an update was committed before it was
	// acknowledged, and who leads the scheduler's election), and the call
	// waits for it. It must not change the call. What it returns is the
	// call's CallRecord.Before, so that what it saw is judged with exactly
	// the call it saw it for.
	BeforeCall func(*scheduler.Call) any
}

// FastConfig returns a configuration whose intervals are milliseconds
// instead of seconds: heartbeats every 200 ms, offers every 50 ms, launches
// and state changes in 10 ms, status updates re-sent after 150 ms, agents
// re-registering 400 ms after a master failover. Tests and failover
// rehearsals use it so that protocol behaviour shows at once.
func FastConfig() Config {
	return Config{
		HeartbeatInterval:    200 * time.Millisecond,
		AllocationInterval:   50 * time.Millisecond,
		LaunchDelay:          10 * time.Millisecond,
		StartDelay:           10 * time.Millisecond,
		StatusRetryMin:       150 * time.Millisecond,
		StatusRetryMax:       time.Second,
		AgentReregisterDelay: 400 * time.Millisecond,
		Seed:                 1,
	}
}

func (c Config) withDefaults() Config {
	if c.Masters == 0 {
		c.Masters = 1
	}
	for len(c.Listen) < c.Masters {
		c.Listen = append(c.Listen, "127.0.0.1:0")
	}
	if c.HeartbeatInterval == 0 {
		c.HeartbeatInterval = 15 * time.Second
	}
	if c.AllocationInterval == 0 {
		c.AllocationInterval = time.Second
	}
	if c.LaunchDelay == 0 {
		c.LaunchDelay = 20 * time.Millisecond
	}
	if c.StartDelay == 0 {
		c.StartDelay = 20 * time.Millisecond
	}
	if c.StatusRetryMin == 0 {
		c.StatusRetryMin = 10 * time.Second
	}
	if c.StatusRetryMax == 0 {
		c.StatusRetryMax = 10 * time.Minute
	}
	if c.AgentReregisterDelay == 0 {
		c.AgentReregisterDelay = 2 * time.Second
	}
	if c.ZKPath == "" {
		c.ZKPath = "/mesos"
	}
	if c.Seed == 0 {
		c.Seed = time.Now().UnixNano()
	}
	if c.Version == "" {
		c.Version = "1.10.0"
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	return c
}

// Validate reports the first setting that cannot work, naming it.
func (c Config) Validate() error {
	var errs []error
	if c.Masters < 0 || c.Masters > 16 {
		errs = append(errs, fmt.Errorf("masters: %d is outside 1..16", c.Masters))
	}
	if len(c.Listen) > c.Masters && c.Masters > 0 {
		errs = append(errs, fmt.Errorf("listen: %d addresses for %d masters", len(c.Listen), c.Masters))
	}
	for _, a := range c.Listen {
		if _, _, err := net.SplitHostPort(a); err != nil {
			errs = append(errs, fmt.Errorf("listen: %q: %w", a, err))
		}
	}
	for name, d := range map[string]time.Duration{
		"heartbeat interval": c.HeartbeatInterval, "allocation interval": c.AllocationInterval,
		"offer timeout": c.OfferTimeout, "launch delay": c.LaunchDelay, "start delay": c.StartDelay,
		"task duration": c.TaskDuration, "status retry min": c.StatusRetryMin,
		"status retry max": c.StatusRetryMax, "agent reregister delay": c.AgentReregisterDelay,
	} {
		if d < 0 {
			errs = append(errs, fmt.Errorf("%s: %v is negative", name, d))
		}
	}
	if c.StatusRetryMax > 0 && c.StatusRetryMin > c.StatusRetryMax {
		errs = append(errs, fmt.Errorf("status retry: min %v is above max %v", c.StatusRetryMin, c.StatusRetryMax))
	}
	if c.FailureRate < 0 || c.FailureRate > 1 || c.FailureRate != c.FailureRate {
		errs = append(errs, fmt.Errorf("failure rate: %v is outside [0,1]", c.FailureRate))
	}
	if c.ZKPath != "" && (c.ZKPath[0] != '/' || (len(c.ZKPath) > 1 && c.ZKPath[len(c.ZKPath)-1] == '/')) {
		errs = append(errs, fmt.Errorf("zk path: %q must start with / and not end with /", c.ZKPath))
	}
	return errors.Join(errs...)
}
