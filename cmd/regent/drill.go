package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/regent-sched/regent/cmd/regent/internal/api"
	"github.com/regent-sched/regent/integration/drill"
)

// drillRun is one hand-over as `regent drill` saw it.
type drillRun struct {
	// Pause is how long the soak waited before this step-down.
	Pause    string        `json:"pause,omitempty"`
	From     string        `json:"from"`
	To       string        `json:"to"`
	Took     time.Duration `json:"took_ns"`
	TookText string        `json:"took"`
}

// drillReport is what `regent drill -o json` prints.
type drillReport struct {
	Drill string `json:"drill"`
	Asked string `json:"asked"`
	// Seed and Duration are the soak's: the same seed replays the same
	// pauses.
	Seed       uint64     `json:"seed,omitempty"`
	Duration   string     `json:"duration,omitempty"`
	Runs       []drillRun `json:"runs"`
	P50        string     `json:"p50"`
	Max        string     `json:"max"`
	Checks     []string   `json:"checks"`
	Violations []string   `json:"violations"`
}

// A soak against a running cluster is bounded: it moves the leadership of
// a production framework, which an operator watches while it runs.
const (
	maxClusterSoak = time.Hour
	// maxSoakPause bounds the random pause between two step-downs: long
	// enough to catch a new leader still reconciling, or settled.
	maxSoakPause = 3 * time.Second
)

func newDrillCmd() *cobra.Command {
	var (
		cluster clusterFlags
		output  string
		runs    int
		timeout time.Duration
		local   localDrill
	)
	cmd := &cobra.Command{
		Use:   "drill NAME",
		Short: "Run a failover drill against a running cluster, or on a local topology, and report",
		Long: `Run a failover drill and print a report: how long each hand-over took, the
invariants checked, violations. Exit status 1 if any invariant was violated.

Against a running cluster, through its REST API (--addr):

  step-down   ask the leader to hand over (POST /v1/leader/step-down, as a
              graceful stop would, but the replica stays up), --runs times;
              each run waits until another replica leads and is subscribed
              to Mesos.
  soak        step-downs on a random schedule drawn from --seed for
              --duration (at most 1h): the first at once, then a pause of 0
              to 3s after each hand-over; none starts after --duration. The
              report names the seed: the same seed replays the same pauses.

Before the first step-down the drill records the leader's tasks (GET
/v1/tasks), once it is done reconciling and launching (waiting at most
--timeout). After the last hand-over it allows --timeout for things to
settle, then checks: one FrameworkID throughout; every task that was
running is still known to the new leader, running, with the same id on the
same agent (a task that ended on its own, FINISHED or FAILED as GET
/v1/agents records, passes only if another took its agent); no agent runs
two tasks of the framework; every new leader started reconciling when it
subscribed, and the last one finished. Each violation names the task, the
agent, what was expected and what was seen.

Stepping down is a write: against a cluster with --auth-token-file or
--tls-client-ca-file, give --token-file (a bearer token it lists), or
--cert-file and --key-file (a client certificate its client CA signed; the
replicas must serve https://, verified with --ca-file unless the system
roots will do).

On a local topology (--local): this binary starts a store (embedded etcd, or
the real ZooKeeper with --store zk: Debian's zookeeper package), mesos-sim
and --replicas replicas of itself, each behind fault proxies to the store
and to Mesos; runs the drill; runs the invariant checker over mesos-sim's
call journal, the store and the leader's API; and tears everything down.

  ` + strings.Join(drill.FaultNames(), ", ") + `
              one fault, --runs times (each run waits until a leader runs
              every task again)
  soak        random faults drawn from --seed for --duration`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return fmt.Errorf("want one drill name (got %q)", args)
			}
			name := args[0]
			switch {
			case !local.on && name != "step-down" && name != "soak":
				return fmt.Errorf("drill %q: against a running cluster only step-down and soak run; the others need --local", name)
			case local.on && name != "soak" && !slices.Contains(drill.FaultNames(), name):
				return fmt.Errorf("drill %q with --local: want soak or one of %s", name, strings.Join(drill.FaultNames(), ", "))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if output != "table" && output != "json" {
				return fmt.Errorf("-o %q: want table or json", output)
			}
			if runs < 1 || runs > 100 {
				return fmt.Errorf("--runs %d: want 1 to 100", runs)
			}
			if local.on {
				local.name, local.runs = args[0], runs
				return local.run(cmd, output)
			}
			if err := validateClusterDrill(cmd, args[0], local.duration, timeout); err != nil {
				return err
			}
			c, err := cluster.client(10 * time.Second)
			if err != nil {
				return err
			}
			var rep drillReport
			if args[0] == "soak" {
				if local.seed == 0 {
					local.seed = uint64(time.Now().UnixNano())
				}
				rep, err = soakDrill(cmd.Context(), c, local.seed, local.duration, timeout)
			} else {
				rep, err = stepDownDrill(cmd.Context(), c, runs, timeout)
			}
			var se *api.StatusError
			if errors.As(err, &se) && se.Code == http.StatusUnauthorized {
				err = fmt.Errorf("%w\n%s", err, cluster.credentialsHint())
			}
			return reportDrill(cmd.OutOrStdout(), output, rep, err)
		},
	}
	f := cmd.Flags()
	cluster.register(f, true, "step-down, soak")
	f.IntVar(&runs, "runs", 3, "how many hand-overs (step-down) or faults (a fault drill with --local)")
	f.DurationVar(&timeout, "timeout", time.Minute, "how long one hand-over, and the settling after the last, may take before the drill fails (step-down, soak)")
	f.StringVarP(&output, "output", "o", "table", "output format: table or json")
	local.flags(f)
	return cmd
}

// validateClusterDrill checks the flags of a drill against a running
// cluster before it touches the cluster.
func validateClusterDrill(cmd *cobra.Command, name string, duration, timeout time.Duration) error {
	f := cmd.Flags()
	switch {
	case timeout <= 0:
		return fmt.Errorf("--timeout %v: want more than 0", timeout)
	case name == "soak" && (duration <= 0 || duration > maxClusterSoak):
		return fmt.Errorf("--duration %v: a soak against a running cluster wants more than 0 and at most %v", duration, maxClusterSoak)
	case name == "step-down" && (f.Changed("duration") || f.Changed("seed")):
		// Silently ignoring them would let an operator believe the step-downs
		// were spread over time.
		return errors.New("--duration and --seed apply to soak (and to --local drills), not to step-down: use --runs")
	}
	return nil
}

// reportDrill prints the report (also when the drill stopped early: the
// runs so far help) and turns violations into the exit status.
func reportDrill(w io.Writer, output string, rep drillReport, err error) error {
	if output == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if eerr := enc.Encode(rep); eerr != nil {
			return eerr
		}
	} else {
		printDrill(w, rep)
	}
	replay := ""
	if rep.Seed != 0 {
		replay = fmt.Sprintf(" (seed %d)", rep.Seed)
	}
	if err != nil {
		return fmt.Errorf("%w%s", err, replay)
	}
	if len(rep.Violations) > 0 {
		return fmt.Errorf("%d invariant violations%s", len(rep.Violations), replay)
	}
	return nil
}

// schedule says, before hand-over i (from 0), how long to pause first, or
// that the drill is over.
type schedule func(i int) (pause time.Duration, more bool)

// stepDownDrill asks the leader to step down runs times in a row.
func stepDownDrill(ctx context.Context, c api.Client, runs int, timeout time.Duration) (drillReport, error) {
	rep := newDrillReport("step-down", c.Base)
	err := drillHandOvers(ctx, c, &rep, timeout, func(i int) (time.Duration, bool) { return 0, i < runs })
	return rep, err
}

// soakDrill steps the leader down for d, pausing a random time drawn from
// seed after each hand-over. The first step-down is at once, so a soak
// always moves the leadership; none starts after d.
func soakDrill(ctx context.Context, c api.Client, seed uint64, d, timeout time.Duration) (drillReport, error) {
	rep := newDrillReport("soak", c.Base)
	rep.Seed, rep.Duration = seed, d.String()
	rng := soakRand(seed)
	end := time.Now().Add(d)
	err := drillHandOvers(ctx, c, &rep, timeout, func(i int) (time.Duration, bool) {
		if i == 0 {
			return 0, true
		}
		pause := soakPause(rng)
		return pause, time.Now().Add(pause).Before(end)
	})
	return rep, err
}

// soakRand is the soak's source of pauses: the seed alone decides them.
func soakRand(seed uint64) *rand.Rand {
	return rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
}

// soakPause draws the next pause, in whole milliseconds so that the report
// shows exactly what was drawn.
func soakPause(rng *rand.Rand) time.Duration {
	return time.Duration(rng.Int64N(int64(maxSoakPause/time.Millisecond)+1)) * time.Millisecond
}

func newDrillReport(name, base string) drillReport {
	return drillReport{Drill: name, Asked: base, Runs: []drillRun{}, Checks: []string{}, Violations: []string{}}
}

// drillHandOvers records the leader's state, runs the hand-overs next
// asks for, timing each from the request to the next leader subscribed,
// then judges the state the last leader settles in.
func drillHandOvers(ctx context.Context, c api.Client, rep *drillReport, timeout time.Duration, next schedule) error {
	// The times of the runs done help also when a later one failed.
	defer func() { rep.P50, rep.Max = handOverTimes(rep.Runs) }()
	// A cluster in the middle of a takeover gets the timeout to settle.
	if _, err := waitNewLeader(ctx, c, "", timeout); err != nil {
		return fmt.Errorf("%s: no leader to start from: %w", c.Base, err)
	}
	base, err := waitBaseline(ctx, c, timeout)
	if err != nil {
		return fmt.Errorf("%s: the leader's state before the first step-down: %w", c.Base, err)
	}
	var takeovers []api.Info
	for i := 0; ; i++ {
		pause, more := next(i)
		if !more {
			break
		}
		if err := sleep(ctx, pause); err != nil {
			return err
		}
		run, to, err := handOver(ctx, c, timeout)
		if err != nil {
			return fmt.Errorf("run %d: %w", i+1, err)
		}
		if rep.Drill == "soak" && i > 0 {
			run.Pause = pause.String()
		}
		rep.Runs = append(rep.Runs, run)
		takeovers = append(takeovers, to)
	}
	final, checks, violations := settle(ctx, c, base, timeout)
	rep.record(checkFrameworkID(base.info, takeovers, final))
	rep.record(checkReconcileStarted(takeovers))
	rep.Checks = append(rep.Checks, checks...)
	rep.Violations = append(rep.Violations, violations...)
	return nil
}

// record adds check to the report when nothing violated it, else the
// violations.
func (r *drillReport) record(check string, violations []string) {
	if len(violations) == 0 {
		r.Checks = append(r.Checks, check)
	}
	r.Violations = append(r.Violations, violations...)
}

// checkFrameworkID checks that every leader, at its takeover and at the
// end (final, when it could be read), had the FrameworkID of the first.
func checkFrameworkID(before api.Info, takeovers []api.Info, final *api.Info) (string, []string) {
	want := before.Framework.ID
	var out []string
	for i, to := range takeovers {
		if to.Framework.ID != want {
			out = append(out, fmt.Sprintf("run %d: leader %s subscribed with FrameworkID %s, want %s", i+1, to.Leader.ID, to.Framework.ID, want))
		}
	}
	if final != nil && final.Framework.ID != want {
		out = append(out, fmt.Sprintf("after the drill: leader %s has FrameworkID %s, want %s", final.Leader.ID, final.Framework.ID, want))
	}
	return "one FrameworkID throughout: " + want, out
}

// checkReconcileStarted checks every new leader as it was first seen
// subscribed. Each term runs a fresh scheduler, which starts reconciling
// in the step that handles SUBSCRIBED: a subscribed leader with no
// reconciliation started skipped it.
func checkReconcileStarted(takeovers []api.Info) (string, []string) {
	var out []string
	for i, to := range takeovers {
		if to.Reconciliation.Started.IsZero() {
			out = append(out, fmt.Sprintf("run %d: leader %s (token %d) subscribed but had not started reconciliation", i+1, to.Leader.ID, to.Leader.Token))
		}
	}
	return fmt.Sprintf("every new leader started reconciliation when it subscribed (%d hand-overs)", len(takeovers)), out
}

// handOver asks the leader to step down and waits for another one to
// subscribe; it returns the run and the new leader's /v1/info.
func handOver(ctx context.Context, c api.Client, timeout time.Duration) (drillRun, api.Info, error) {
	from, err := c.Info(ctx)
	if err != nil {
		return drillRun{}, api.Info{}, err
	}
	if err := waitCandidates(ctx, c, 2, timeout); err != nil {
		return drillRun{}, api.Info{}, err
	}
	start := time.Now()
	var sd api.StepDown
	if err := c.Do(ctx, http.MethodPost, "/v1/leader/step-down", nil, &sd); err != nil {
		return drillRun{}, api.Info{}, fmt.Errorf("step-down: %w", err)
	}
	to, err := waitNewLeader(ctx, c, from.Leader.ID, timeout)
	if err != nil {
		return drillRun{}, api.Info{}, err
	}
	took := time.Since(start)
	return drillRun{From: from.Leader.ID, To: to.Leader.ID, Took: took, TookText: took.Round(time.Millisecond).String()}, to, nil
}

func handOverTimes(runs []drillRun) (p50, maxTook string) {
	if len(runs) == 0 {
		return "", ""
	}
	took := make([]time.Duration, len(runs))
	for i, r := range runs {
		took[i] = r.Took
	}
	sort.Slice(took, func(i, j int) bool { return took[i] < took[j] })
	return took[len(took)/2].Round(time.Millisecond).String(), took[len(took)-1].Round(time.Millisecond).String()
}

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

// waitCandidates waits until at least n replicas campaign: stepping down
// with no other candidate would only re-elect the same replica.
func waitCandidates(ctx context.Context, c api.Client, n int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last string
	for {
		var rs api.Replicas
		err := c.Do(ctx, http.MethodGet, "/v1/replicas", nil, &rs)
		if err == nil && len(rs.Replicas) >= n {
			return nil
		}
		if err != nil {
			last = err.Error()
		} else {
			ids := make([]string, len(rs.Replicas))
			for i, r := range rs.Replicas {
				ids[i] = r.ID
			}
			last = fmt.Sprintf("only %v campaign", ids)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("a step-down needs another replica campaigning to take over; after %v: %s", timeout, last)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// waitNewLeader polls until a leader other than old is ready and
// subscribed, and returns its /v1/info.
func waitNewLeader(ctx context.Context, c api.Client, old string, timeout time.Duration) (api.Info, error) {
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		info, err := c.Info(ctx)
		var se *api.StatusError
		switch {
		case err == nil && info.Leader.ID != "" && info.Leader.ID != old && info.Subscribed:
			return info, nil
		case err != nil && !errors.As(err, &se):
			last = err
		case err != nil:
			last = err // 502/503 while the leadership moves
		}
		select {
		case <-ctx.Done():
			return api.Info{}, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return api.Info{}, fmt.Errorf("no new subscribed leader within %v (last: %v)", timeout, last)
}

func printDrill(w io.Writer, rep drillReport) {
	fmt.Fprintf(w, "DRILL %s against %s", rep.Drill, rep.Asked)
	if rep.Seed != 0 {
		fmt.Fprintf(w, ", seed %d, for %s", rep.Seed, rep.Duration)
	}
	fmt.Fprint(w, "\n\n")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	soak := rep.Drill == "soak"
	if soak {
		fmt.Fprintln(tw, "RUN\tPAUSE\tFROM\tTO\tTOOK")
	} else {
		fmt.Fprintln(tw, "RUN\tFROM\tTO\tTOOK")
	}
	for i, r := range rep.Runs {
		if soak {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", i+1, cmp.Or(r.Pause, "-"), r.From, r.To, r.TookText)
		} else {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", i+1, r.From, r.To, r.TookText)
		}
	}
	tw.Flush()
	if len(rep.Runs) > 0 {
		fmt.Fprintf(w, "\nhand-over p50 %s, max %s\n", rep.P50, rep.Max)
	}
	for _, c := range rep.Checks {
		fmt.Fprintln(w, "ok:", c)
	}
	for _, v := range rep.Violations {
		fmt.Fprintln(w, "VIOLATION:", v)
	}
	if len(rep.Violations) == 0 && len(rep.Runs) > 0 {
		fmt.Fprintln(w, "no violation")
	}
}
