// Package dev is `regent dev`: a whole regent topology on one machine for
// trying regent out and for demonstrating failovers. It runs an embedded
// etcd (or the real ZooKeeper) and a simulated Mesos master in its own
// process, and the replicas as child processes of the same binary
// (`regent run`), so that killing one is a real crash. Everything it
// starts ends when it ends, even when it is killed (the children get
// SIGKILL from the kernel when their parent dies).
package dev

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"

	"github.com/regent-sched/regent/cmd/regent/internal/api"
	"github.com/regent-sched/regent/integration/childproc"
	"github.com/regent-sched/regent/integration/mesossim"
	"github.com/regent-sched/regent/integration/zkserver"
)

// Options configure a dev topology.
type Options struct {
	Replicas int
	Agents   int
	// Store is "etcd" (embedded) or "zk" (the real ZooKeeper, which must be
	// installed).
	Store string
	// Host is the loopback address everything listens on.
	Host string
	// Port is the first replica's port (the others take the next ones);
	// MesosPort the simulated master's; 0 picks free ports.
	Port, MesosPort int
	// DataDir keeps the store's data; a temporary directory, removed at the
	// end, when empty.
	DataDir string
	// TaskDuration and FailureRate make the simulated tasks end, to show
	// relaunches.
	TaskDuration time.Duration
	FailureRate  float64
	// ElectionTTL is the replicas' etcd lease TTL (ZooKeeper: the session
	// timeout is twice it).
	ElectionTTL time.Duration
	// Exe is the regent binary for the replicas (default: this one).
	Exe string
	// Out receives what a person should read; Log the details.
	Out io.Writer
	Log *zap.Logger
}

func (o *Options) validate() error {
	var errs []error
	if o.Replicas < 1 || o.Replicas > 9 {
		errs = append(errs, fmt.Errorf("--replicas %d: want 1 to 9", o.Replicas))
	}
	if o.Agents < 0 || o.Agents > 1000 {
		errs = append(errs, fmt.Errorf("--agents %d: want 0 to 1000", o.Agents))
	}
	if o.Store != "etcd" && o.Store != "zk" {
		errs = append(errs, fmt.Errorf("--store %q: want etcd or zk", o.Store))
	}
	if ip := net.ParseIP(o.Host); ip == nil || !ip.IsLoopback() {
		errs = append(errs, fmt.Errorf("--host %q: want a loopback address (regent dev is for one machine)", o.Host))
	}
	if o.Port < 0 || o.Port+o.Replicas > 65536 {
		errs = append(errs, fmt.Errorf("--port %d: out of range", o.Port))
	}
	if o.MesosPort < 0 || o.MesosPort > 65535 {
		errs = append(errs, fmt.Errorf("--mesos-port %d: out of range", o.MesosPort))
	}
	if o.FailureRate < 0 || o.FailureRate > 1 {
		errs = append(errs, fmt.Errorf("--failure-rate %v: want 0 to 1", o.FailureRate))
	}
	if o.TaskDuration < 0 {
		errs = append(errs, fmt.Errorf("--task-duration %v: must not be negative", o.TaskDuration))
	}
	if o.ElectionTTL < 2*time.Second || o.ElectionTTL%time.Second != 0 {
		errs = append(errs, fmt.Errorf("--election-ttl %v: want whole seconds, at least 2s", o.ElectionTTL))
	}
	return errors.Join(errs...)
}

// Run starts the topology, prints where to look, and keeps it running
// until ctx ends; then it stops the replicas (gracefully, then SIGKILL),
// Mesos and the store, and removes what it created.
func Run(ctx context.Context, o Options) (err error) {
	if err := o.validate(); err != nil {
		return err
	}
	if o.Log == nil {
		o.Log = zap.NewNop()
	}
	if o.Exe == "" {
		if o.Exe, err = os.Executable(); err != nil {
			return err
		}
	}
	if o.Store == "zk" {
		if err := zkserver.Installed(); err != nil {
			return err
		}
	}
	dir := o.DataDir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "regent-dev-"); err != nil {
			return err
		}
		defer os.RemoveAll(dir)
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	ports, err := pickPorts(o)
	if err != nil {
		return err
	}
	say := func(format string, args ...any) { fmt.Fprintf(o.Out, format+"\n", args...) }

	storeFlags, stopStore, err := startStore(ctx, o, dir)
	if err != nil {
		return err
	}
	defer stopStore()

	sim, err := startMesos(o, ports.mesos)
	if err != nil {
		return err
	}
	defer sim.Close()
	say("mesos-sim: %s (%d agents; control API under %s/sim/)", sim.URL(), o.Agents, sim.URL())

	reps := make([]*child, o.Replicas)
	defer func() { stopChildren(reps, o.Log) }()
	for i := range reps {
		id := fmt.Sprintf("replica-%d", i+1)
		addr := net.JoinHostPort(o.Host, strconv.Itoa(ports.replicas[i]))
		args := append([]string{"run",
			"--id", id,
			"--name", "regent-dev",
			"--listen", addr,
			"--advertise-url", "http://" + addr,
			"--master", sim.URL(),
			"--log-format", "console",
			"--failover-timeout", "1h",
			"--shutdown-timeout", "10s",
			"--relaunch-backoff-min", "500ms",
			"--relaunch-backoff-max", "10s",
		}, storeFlags...)
		logPath := filepath.Join(dir, id+".log")
		if reps[i], err = startChild(o.Exe, args, logPath, id, "http://"+addr); err != nil {
			return err
		}
		say("%s: pid %d, http://%s/ (log %s)", id, reps[i].proc.PID(), addr, logPath)
	}
	return watch(ctx, o, reps, say)
}

type devPorts struct {
	mesos    int
	replicas []int
}

func pickPorts(o Options) (devPorts, error) {
	p := devPorts{mesos: o.MesosPort}
	free := func() (int, error) {
		l, err := net.Listen("tcp", net.JoinHostPort(o.Host, "0"))
		if err != nil {
			return 0, err
		}
		defer l.Close()
		return l.Addr().(*net.TCPAddr).Port, nil
	}
	var err error
	if p.mesos == 0 {
		if p.mesos, err = free(); err != nil {
			return p, err
		}
	}
	for i := 0; i < o.Replicas; i++ {
		port := o.Port + i
		if o.Port == 0 {
			if port, err = free(); err != nil {
				return p, err
			}
		}
		p.replicas = append(p.replicas, port)
	}
	return p, nil
}

// startStore starts the store and returns the replicas' flags for it.
func startStore(ctx context.Context, o Options, dir string) ([]string, func(), error) {
	if o.Store == "zk" {
		zs, err := zkserver.Start(ctx, zkserver.Options{Dir: filepath.Join(dir, "zookeeper")})
		if err != nil {
			return nil, nil, err
		}
		fmt.Fprintf(o.Out, "zookeeper: %s (data %s)\n", zs.Addr(), zs.DataDir())
		session := 2 * o.ElectionTTL
		return []string{"--zk-servers", zs.Addr(), "--zk-session-timeout", session.String()}, func() { zs.Close() }, nil
	}
	e, endpoint, err := startEtcd(filepath.Join(dir, "etcd"), o.Host)
	if err != nil {
		return nil, nil, err
	}
	fmt.Fprintf(o.Out, "etcd: %s (embedded, data %s)\n", endpoint, e.Config().Dir)
	return []string{"--etcd-endpoints", endpoint, "--election-ttl", o.ElectionTTL.String()}, func() {
		e.Close()
		<-e.Server.StopNotify()
	}, nil
}

func startEtcd(dir, host string) (*embed.Etcd, string, error) {
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		cport, err := freePort(host)
		if err != nil {
			return nil, "", err
		}
		pport, err := freePort(host)
		if err != nil {
			return nil, "", err
		}
		cu := url.URL{Scheme: "http", Host: net.JoinHostPort(host, strconv.Itoa(cport))}
		pu := url.URL{Scheme: "http", Host: net.JoinHostPort(host, strconv.Itoa(pport))}
		cfg := embed.NewConfig()
		cfg.Name = "regent-dev"
		cfg.Dir = dir
		cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{cu}, []url.URL{cu}
		cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{pu}, []url.URL{pu}
		cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
		// etcd logs to a file of its own: its shutdown is noisy.
		cfg.LogLevel = "warn"
		cfg.LogOutputs = []string{filepath.Join(filepath.Dir(dir), "etcd.log")}
		e, err := embed.StartEtcd(cfg)
		if err != nil {
			lastErr = err
			continue
		}
		select {
		case <-e.Server.ReadyNotify():
			return e, cu.String(), nil
		case <-time.After(30 * time.Second):
			e.Close()
			return nil, "", errors.New("embedded etcd did not become ready within 30s")
		}
	}
	return nil, "", fmt.Errorf("embedded etcd: %w", lastErr)
}

func freePort(host string) (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func startMesos(o Options, port int) (*mesossim.Cluster, error) {
	cfg := mesossim.Config{
		Listen:             []string{net.JoinHostPort(o.Host, strconv.Itoa(port))},
		HeartbeatInterval:  5 * time.Second,
		AllocationInterval: 500 * time.Millisecond,
		LaunchDelay:        200 * time.Millisecond,
		StartDelay:         200 * time.Millisecond,
		TaskDuration:       o.TaskDuration,
		FailureRate:        o.FailureRate,
		StatusRetryMin:     2 * time.Second,
		StatusRetryMax:     30 * time.Second,
		Logger:             o.Log.Named("mesos-sim"),
	}
	sim, err := mesossim.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("mesos-sim: %w", err)
	}
	for i := 0; i < o.Agents; i++ {
		if _, err := sim.AddAgent(mesossim.AgentSpec{Hostname: fmt.Sprintf("agent-%d", i+1)}); err != nil {
			sim.Close()
			return nil, fmt.Errorf("mesos-sim: add agent: %w", err)
		}
	}
	return sim, nil
}

// child is one replica process.
type child struct {
	id, url  string
	proc     *childproc.Process
	reported bool // its exit has been announced; touched only by watch
}

// startChild starts a replica with its output appended to logPath. The
// replica is in a process group of its own, so that a Ctrl-C reaches it
// only through regent dev's orderly stop, and gets SIGKILL from the kernel
// when regent dev dies.
func startChild(exe string, args []string, logPath, id, base string) (*child, error) {
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	// The child has its own copy of the descriptor after Start.
	defer f.Close()
	p, err := childproc.Start(childproc.Config{Argv: append([]string{exe}, args...), Output: f, OwnGroup: true})
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", id, err)
	}
	return &child{id: id, url: base, proc: p}, nil
}

// stopChildren sends SIGTERM to every replica, waits up to 15 s for them,
// then SIGKILLs what is left.
func stopChildren(reps []*child, log *zap.Logger) {
	for _, c := range reps {
		if c != nil {
			if err := c.proc.Signal(syscall.SIGTERM); err != nil {
				log.Warn("cannot stop replica", zap.String("replica", c.id), zap.Error(err))
			}
		}
	}
	deadline := time.After(15 * time.Second)
	for _, c := range reps {
		if c == nil {
			continue
		}
		select {
		case <-c.proc.Done():
		case <-deadline:
			log.Warn("replica did not stop in time; killing it", zap.String("replica", c.id))
			if err := c.proc.Kill(); err != nil {
				log.Warn("cannot kill replica", zap.String("replica", c.id), zap.Error(err))
			}
		}
	}
}

// watch prints leadership changes and where to look until ctx ends.
func watch(ctx context.Context, o Options, reps []*child, say func(string, ...any)) error {
	hc := &http.Client{Timeout: time.Second}
	lastLeader, up := "", false
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			say("stopping: replicas, mesos-sim, %s", o.Store)
			return nil
		case <-t.C:
		}
		for _, c := range reps {
			if c.proc.Exited() && !c.reported {
				c.reported = true
				say("%s exited (%s); the others carry on", c.id, c.proc.ExitStatus())
			}
		}
		leader, subscribed := ask(ctx, hc, reps)
		if leader != lastLeader && leader != "" {
			var pid int
			for _, c := range reps {
				if c.id == leader {
					pid = c.proc.PID()
				}
			}
			say("leader: %s (pid %d). To watch a failover: kill -9 %d", leader, pid, pid)
			lastLeader = leader
		}
		if !up && subscribed {
			up = true
			say("regent dev is up: status page %s/ (any replica's address works; Ctrl-C stops everything)", reps[0].url)
		}
	}
}

// ask asks the live replicas who leads and whether the leader is
// subscribed.
func ask(ctx context.Context, hc *http.Client, reps []*child) (leader string, subscribed bool) {
	for _, c := range reps {
		if c.proc.Exited() {
			continue
		}
		cl := api.Client{Base: c.url, HTTP: hc}
		l, err := cl.Leader(ctx)
		if err != nil || l.Leader.ID == "" {
			continue
		}
		info, err := cl.Info(ctx)
		return l.Leader.ID, err == nil && info.Subscribed
	}
	return "", false
}
