// Command regent runs a highly available Mesos framework: the example
// framework that keeps one task on every agent, as one of several replicas
// that elect a leader through etcd or ZooKeeper.
//
//	regent run --etcd-endpoints http://etcd:2379 --master http://mesos:5050
//	regent dev                 # embedded etcd, simulated Mesos, 3 replicas
//	regent status --addr http://127.0.0.1:8080
//	regent version
//
// Every flag of `regent run` can also be set through the environment
// (REGENT_<FLAG>, e.g. REGENT_ETCD_ENDPOINTS) or a YAML file (--config).
package main

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"

	"github.com/regent-sched/regent/cmd/regent/internal/replica"
	"github.com/regent-sched/regent/ha"
)

// version is set at build time: -ldflags "-X main.version=v1.2.3".
var version = ""

// Exit codes.
const (
	exitError  = 1 // bad usage, bad configuration, a failed command
	exitFatal  = 2 // the replica stopped for good: the store or Mesos needs an operator
	exitHelped = 0
)

func main() {
	replica.Version = buildVersion()
	root := newRoot()
	if err := root.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "regent:", err)
		if errors.Is(err, ha.ErrFatal) {
			os.Exit(exitFatal)
		}
		os.Exit(exitError)
	}
	os.Exit(exitHelped)
}

func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:   "regent",
		Short: "A highly available Mesos framework: replicas elect a leader through etcd or ZooKeeper",
		Long: `regent runs a Mesos framework as several replicas. They elect a leader through
etcd or ZooKeeper; only the leader subscribes to Mesos, and it keeps the
framework's state (FrameworkID, tasks) in the same store, fenced by its
leadership, so that the next leader carries on with the same FrameworkID and
reconciles at once.

The framework it runs keeps one task on every eligible Mesos agent.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newRunCmd(), newDevCmd(), newStatusCmd(), newDrillCmd(), newVersionCmd())
	return root
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version of this binary",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprintf(cmd.OutOrStdout(), "regent %s (%s, %s/%s)\n", replica.Version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
			return nil
		},
	}
}

// buildVersion is the -X version, else the module version or VCS revision
// the Go toolchain recorded, else "dev".
func buildVersion() string {
	if version != "" {
		return version
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "dev"
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	rev, dirty := "", false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if rev == "" {
		return "dev"
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if dirty {
		rev += "-dirty"
	}
	return "dev-" + rev
}
