package main

import (
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/regent-sched/regent/cmd/regent/internal/dev"
)

func newDevCmd() *cobra.Command {
	o := dev.Options{}
	var logLevel string
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run a whole regent topology on this machine: a store, simulated Mesos, several replicas",
		Long: `Run a whole regent topology on this machine, for trying regent out:
an embedded etcd (or, with --store zk, the real ZooKeeper, which must be
installed: sudo scripts/install-zookeeper.sh), the simulated Mesos master
mesos-sim with a few agents, and several replicas as child processes running
'regent run'. It prints every replica's status page and the command that
kills the current leader, so that you can watch a failover.

Ctrl-C stops everything it started and removes its temporary data.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := newLogger(logLevel, "console")
			if err != nil {
				return err
			}
			defer log.Sync()
			o.Out, o.Log = cmd.OutOrStdout(), log
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGTERM, syscall.SIGINT)
			defer stop()
			return dev.Run(ctx, o)
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.Replicas, "replicas", 3, "number of regent replicas")
	f.IntVar(&o.Agents, "agents", 5, "number of simulated Mesos agents")
	f.StringVar(&o.Store, "store", "etcd", "store: etcd (embedded) or zk (the real ZooKeeper)")
	f.StringVar(&o.Host, "host", "127.0.0.1", "loopback address everything listens on")
	f.IntVar(&o.Port, "port", 8080, "first replica's HTTP port; the others take the next ones (0: free ports)")
	f.IntVar(&o.MesosPort, "mesos-port", 5050, "the simulated Mesos master's port (0: a free port)")
	f.StringVar(&o.DataDir, "data-dir", "", "keep the store's data and the replicas' logs here (default: a temporary directory, removed at the end)")
	f.DurationVar(&o.TaskDuration, "task-duration", 0, "simulated tasks end after this long and are relaunched (0: they run until killed)")
	f.Float64Var(&o.FailureRate, "failure-rate", 0, "probability in [0,1] that a simulated task fails instead of finishing")
	f.DurationVar(&o.ElectionTTL, "election-ttl", 3*time.Second, "the replicas' election TTL: how long a crashed leader goes unnoticed at most")
	f.StringVar(&logLevel, "log-level", "warn", "log level of regent dev itself (the replicas log to files)")
	return cmd
}
