package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/regent-sched/regent/integration/drill"
	"github.com/regent-sched/regent/integration/tb"
	"github.com/regent-sched/regent/integration/zkserver"
)

// localDrill is `regent drill NAME --local`: a drill on a topology this
// process starts and tears down.
type localDrill struct {
	on               bool
	store            string
	replicas, agents int
	seed             uint64
	duration         time.Duration
	verbose          bool
	name             string
	runs             int
	ttl, zkSession   time.Duration
}

func (l *localDrill) flags(f *pflag.FlagSet) {
	f.BoolVar(&l.on, "local", false, "run the drill on a local topology that this command starts and tears down")
	f.StringVar(&l.store, "store", "etcd", "with --local: etcd (embedded) or zk (the real ZooKeeper, from Debian's zookeeper package)")
	f.IntVar(&l.replicas, "replicas", 3, "with --local: how many replicas")
	f.IntVar(&l.agents, "agents", 3, "with --local: how many simulated agents (one task each)")
	f.Uint64Var(&l.seed, "seed", 0, "soak: seed of the random faults (--local) or pauses between step-downs (default: from the clock; the report names it)")
	f.DurationVar(&l.duration, "duration", time.Minute, "soak: how long it runs (up to 24h with --local, 1h against a running cluster)")
	f.DurationVar(&l.ttl, "election-ttl", 2*time.Second, "with --local: the replicas' etcd election TTL")
	f.DurationVar(&l.zkSession, "zk-session-timeout", 4*time.Second, "with --local: the replicas' ZooKeeper session timeout")
	f.BoolVarP(&l.verbose, "verbose", "v", false, "with --local: log every step and the topology's failures to stderr")
}

func (l *localDrill) validate() error {
	switch {
	case l.store != "etcd" && l.store != "zk":
		return fmt.Errorf("--store %q: want etcd or zk", l.store)
	case l.replicas < 1 || l.replicas > 9:
		return fmt.Errorf("--replicas %d: want 1 to 9", l.replicas)
	case l.agents < 1 || l.agents > 100:
		return fmt.Errorf("--agents %d: want 1 to 100", l.agents)
	case l.duration <= 0 || l.duration > 24*time.Hour:
		return fmt.Errorf("--duration %v: want up to 24h", l.duration)
	case l.ttl < 2*time.Second || l.ttl%time.Second != 0:
		return fmt.Errorf("--election-ttl %v: want whole seconds, at least 2s", l.ttl)
	case l.zkSession < 2*time.Second:
		return fmt.Errorf("--zk-session-timeout %v: want at least 2s", l.zkSession)
	}
	if l.store == "zk" {
		if err := zkserver.Installed(); err != nil {
			return fmt.Errorf("--store zk: %w (install it with: apt-get install -y --no-install-recommends zookeeper)", err)
		}
	}
	return nil
}

func (l *localDrill) run(cmd *cobra.Command, output string) error {
	if err := l.validate(); err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find this binary for the replicas: %w", err)
	}
	if l.seed == 0 {
		l.seed = uint64(time.Now().UnixNano())
	}
	var logw io.Writer
	if l.verbose {
		logw = cmd.ErrOrStderr()
	}
	runner := &tb.Runner{Log: logw}
	var rep drill.Report
	started := time.Now()
	rerr := runner.Run(func() {
		tp := drill.Start(runner, drill.Options{Store: l.store, Replicas: l.replicas, Agents: l.agents,
			ElectionTTL: l.ttl, SessionTimeout: l.zkSession, Binary: self})
		rep = tp.Drill(l.name, l.runs, l.seed, l.duration, l.agents)
	})
	if output == "json" {
		enc := json.NewEncoder(cmd.OutOrStdout())
		enc.SetIndent("", "  ")
		if err := enc.Encode(localReport{Report: rep, Failures: runner.Errors(), Took: time.Since(started).Round(time.Millisecond).String()}); err != nil {
			return err
		}
	} else {
		printLocal(cmd.OutOrStdout(), rep, runner.Errors())
	}
	switch {
	case rerr != nil:
		return fmt.Errorf("the drill did not complete (seed %d): %w", l.seed, rerr)
	case len(rep.Violations) > 0:
		return fmt.Errorf("%d invariant violations (seed %d)", len(rep.Violations), l.seed)
	}
	return nil
}

// localReport is `regent drill --local -o json`.
type localReport struct {
	drill.Report
	// Failures are what stopped the drill before its end (a leader that
	// never came, a replica that exited), if anything did.
	Failures []string `json:"failures"`
	Took     string   `json:"took"`
}

func printLocal(w io.Writer, rep drill.Report, failures []string) {
	fmt.Fprintf(w, "DRILL %s on a local topology (%s)", rep.Drill, rep.Store)
	if rep.Seed != 0 {
		fmt.Fprintf(w, ", seed %d", rep.Seed)
	}
	fmt.Fprint(w, "\n\n")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "STEP\tFAULT\tFROM\tTO\tSUBSCRIBED\tRECONCILING\tWHAT")
	for i, s := range rep.Steps {
		sub, rec := "-", "-"
		if s.Subscribed > 0 {
			sub, rec = s.Subscribed.Round(time.Millisecond).String(), s.Reconciled.Round(time.Millisecond).String()
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", i+1, s.Fault, s.From, s.To, sub, rec, s.What)
	}
	tw.Flush()
	fmt.Fprintln(w)
	for _, f := range failures {
		fmt.Fprintln(w, "FAILED:", f)
	}
	if len(failures) > 0 {
		return // the checker did not run to the end
	}
	for _, r := range rep.Rules {
		fmt.Fprintln(w, "checked:", r)
	}
	for _, v := range rep.Violations {
		fmt.Fprintln(w, "VIOLATION:", v)
	}
	if len(rep.Violations) == 0 {
		fmt.Fprintln(w, "no violation")
	}
}
