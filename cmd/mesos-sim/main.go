// Command mesos-sim runs a simulated Mesos master speaking the real v1
// scheduler HTTP API, for rehearsing framework failovers without a cluster.
//
//	mesos-sim --listen 127.0.0.1:5050 --masters 3 --agents 10
//
// It prints one line "mesos-sim serving <url> ..." once it serves and stops
// cleanly on SIGTERM or SIGINT. See the package integration/mesossim for the
// control API under /sim/.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"go.uber.org/zap"

	"github.com/regent-sched/regent/integration/mesossim"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "mesos-sim:", err)
		os.Exit(2)
	}
}

type options struct {
	cfg    mesossim.Config
	agents int
	agent  mesossim.AgentRequest
	zk     string
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("mesos-sim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:5050", "address of the first master; extra masters take the following ports")
	fs.IntVar(&o.cfg.Masters, "masters", 1, "number of masters (1..16); one leads, the others answer 307")
	fs.StringVar(&o.cfg.Hostname, "hostname", "", "host name masters advertise (default: the listen host)")
	fs.IntVar(&o.agents, "agents", 3, "number of agents to start with")
	fs.Float64Var(&o.agent.CPUs, "agent-cpus", 4, "cpus of each agent")
	fs.Float64Var(&o.agent.Mem, "agent-mem", 8192, "mem (MB) of each agent")
	fs.Float64Var(&o.agent.Disk, "agent-disk", 65536, "disk (MB) of each agent")
	fs.StringVar(&o.agent.Ports, "agent-ports", "31000-32000", "port ranges of each agent, e.g. 31000-32000,33000-33100")
	attrs := fs.String("agent-attributes", "", "attributes of each agent, e.g. rack:r1;zone:a")
	fs.DurationVar(&o.cfg.TaskDuration, "task-duration", 0, "lifetime of a task whose command does not say (`sleep N` does); 0 = until killed")
	fs.Float64Var(&o.cfg.FailureRate, "failure-rate", 0, "probability in [0,1] that a task fails instead of finishing")
	fs.DurationVar(&o.cfg.HeartbeatInterval, "heartbeat-interval", 15*time.Second, "interval of HEARTBEAT events")
	fs.DurationVar(&o.cfg.AllocationInterval, "allocation-interval", time.Second, "interval of offer cycles")
	fs.DurationVar(&o.cfg.OfferTimeout, "offer-timeout", 0, "rescind offers unused this long (0 = never)")
	fs.DurationVar(&o.cfg.StatusRetryMin, "status-retry-min", 10*time.Second, "first resend interval of an unacknowledged status update")
	fs.DurationVar(&o.cfg.StatusRetryMax, "status-retry-max", 10*time.Minute, "longest resend interval of an unacknowledged status update")
	fs.DurationVar(&o.cfg.AgentReregisterDelay, "agent-reregister-delay", 2*time.Second, "how long agents take to re-register after a master failover")
	fs.StringVar(&o.zk, "zk", "", "publish the leading master in ZooKeeper, e.g. zk://127.0.0.1:2181/mesos")
	fs.Int64Var(&o.cfg.Seed, "seed", 0, "seed for task failures and ids (0 = from the clock)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	if o.agents < 0 || o.agents > 100000 {
		return o, fmt.Errorf("--agents: %d is outside 0..100000", o.agents)
	}
	host, portStr, err := net.SplitHostPort(*listen)
	if err != nil {
		return o, fmt.Errorf("--listen %q: %w", *listen, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 0 || port > 65535 || (port == 0 && o.cfg.Masters > 1) {
		return o, fmt.Errorf("--listen %q: need a port number (not 0 when --masters > 1)", *listen)
	}
	if o.cfg.Masters < 1 || o.cfg.Masters > 16 {
		return o, fmt.Errorf("--masters: %d is outside 1..16", o.cfg.Masters)
	}
	if port+o.cfg.Masters-1 > 65535 {
		return o, fmt.Errorf("--listen %q: no room for %d masters above port %d", *listen, o.cfg.Masters, port)
	}
	for i := 0; i < o.cfg.Masters; i++ {
		p := port
		if port != 0 {
			p = port + i
		}
		o.cfg.Listen = append(o.cfg.Listen, net.JoinHostPort(host, strconv.Itoa(p)))
	}
	if *attrs != "" {
		o.agent.Attributes = map[string]string{}
		for _, kv := range strings.Split(*attrs, ";") {
			k, v, ok := strings.Cut(kv, ":")
			if !ok || k == "" {
				return o, fmt.Errorf("--agent-attributes: %q is not name:value", kv)
			}
			o.agent.Attributes[k] = v
		}
	}
	if _, err := o.agent.Spec(); err != nil {
		return o, fmt.Errorf("agent resources: %w", err)
	}
	if o.zk != "" {
		servers, path, err := parseZK(o.zk)
		if err != nil {
			return o, fmt.Errorf("--zk: %w", err)
		}
		o.cfg.ZooKeeper, o.cfg.ZKPath = servers, path
	}
	if err := o.cfg.Validate(); err != nil {
		return o, err
	}
	return o, nil
}

// parseZK splits zk://host:port,host:port/path.
func parseZK(s string) ([]string, string, error) {
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "zk" || u.Host == "" {
		return nil, "", fmt.Errorf("%q is not zk://host:port[,host:port]/path", s)
	}
	path := u.Path
	if path == "" || path == "/" {
		return nil, "", fmt.Errorf("%q has no path (e.g. /mesos)", s)
	}
	var servers []string
	for _, h := range strings.Split(u.Host, ",") {
		if _, _, err := net.SplitHostPort(h); err != nil {
			return nil, "", fmt.Errorf("%q: server %q: %w", s, h, err)
		}
		servers = append(servers, h)
	}
	return servers, strings.TrimSuffix(path, "/"), nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	logger, err := zap.NewProduction()
	if err != nil {
		return err
	}
	defer func() { _ = logger.Sync() }()
	o.cfg.Logger = logger
	c, err := mesossim.New(o.cfg)
	if err != nil {
		return err
	}
	defer c.Close()
	spec, _ := o.agent.Spec()
	for i := 0; i < o.agents; i++ {
		s := spec
		s.Hostname = fmt.Sprintf("agent-%d.sim", i)
		s.Resources = append([]mesos.Resource(nil), spec.Resources...)
		if _, err := c.AddAgent(s); err != nil {
			return err
		}
	}
	fmt.Fprintf(stdout, "mesos-sim serving %s (masters %s, %d agents, leader %s)\n",
		c.URL(), strings.Join(c.URLs(), " "), o.agents, c.LeaderURL())
	<-ctx.Done()
	fmt.Fprintln(stdout, "mesos-sim stopping")
	return nil
}
