package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/regent-sched/regent/cmd/regent/internal/api"
	"github.com/regent-sched/regent/cmd/regent/internal/config"
	"github.com/regent-sched/regent/integration/drill"
)

// drillRun is one hand-over as `regent drill` saw it.
type drillRun struct {
	From     string        `json:"from"`
	To       string        `json:"to"`
	Took     time.Duration `json:"took_ns"`
	TookText string        `json:"took"`
}

// drillReport is what `regent drill -o json` prints.
type drillReport struct {
	Drill      string     `json:"drill"`
	Asked      string     `json:"asked"`
	Runs       []drillRun `json:"runs"`
	P50        string     `json:"p50"`
	Max        string     `json:"max"`
	Checks     []string   `json:"checks"`
	Violations []string   `json:"violations"`
}

func newDrillCmd() *cobra.Command {
	var (
		addr, output, caFile, tokenFile string
		runs                            int
		timeout                         time.Duration
		local                           localDrill
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
              to Mesos, then checks that the FrameworkID and the number of
              tasks are unchanged.

Stepping down is a write: with --auth-token-file or client certificates
configured on the cluster, give --token-file.

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
			case !local.on && name != "step-down":
				return fmt.Errorf("drill %q: against a running cluster only step-down runs; the others need --local", name)
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
			c := api.Client{Base: addr, HTTP: &http.Client{Timeout: 10 * time.Second}}
			if caFile != "" {
				pool, err := config.ReadCAPool(caFile)
				if err != nil {
					return fmt.Errorf("--ca-file: %w", err)
				}
				c.HTTP.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
			}
			if tokenFile != "" {
				tokens, err := config.ReadTokens(tokenFile)
				if err != nil {
					return fmt.Errorf("--token-file: %w", err)
				}
				c.Token = tokens[0]
			}
			rep, err := stepDownDrill(cmd.Context(), c, runs, timeout)
			if output == "json" {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				if eerr := enc.Encode(rep); eerr != nil {
					return eerr
				}
			} else {
				printDrill(cmd.OutOrStdout(), rep)
			}
			if err != nil {
				return err
			}
			if len(rep.Violations) > 0 {
				return fmt.Errorf("%d invariant violations", len(rep.Violations))
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&addr, "addr", "http://127.0.0.1:8080", "base URL of any replica (step-down)")
	f.IntVar(&runs, "runs", 3, "how many hand-overs (step-down) or faults (a fault drill with --local)")
	f.DurationVar(&timeout, "timeout", time.Minute, "how long one hand-over may take before the drill fails (step-down)")
	f.StringVar(&tokenFile, "token-file", "", "file holding a bearer token for the cluster's writes (step-down)")
	f.StringVar(&caFile, "ca-file", "", "PEM CA bundle to verify an https:// replica (step-down)")
	f.StringVarP(&output, "output", "o", "table", "output format: table or json")
	local.flags(f)
	return cmd
}

// stepDownDrill asks the leader to step down runs times, timing each
// hand-over from the request to the next leader subscribed.
func stepDownDrill(ctx context.Context, c api.Client, runs int, timeout time.Duration) (drillReport, error) {
	rep := drillReport{Drill: "step-down", Asked: c.Base, Runs: []drillRun{}, Checks: []string{}, Violations: []string{}}
	// A cluster in the middle of a takeover gets the timeout to settle.
	before, err := waitNewLeader(ctx, c, "", timeout)
	if err != nil {
		return rep, fmt.Errorf("%s: no leader to start from: %w", c.Base, err)
	}
	for i := 0; i < runs; i++ {
		from, err := c.Info(ctx)
		if err != nil {
			return rep, err
		}
		if err := waitCandidates(ctx, c, 2, timeout); err != nil {
			return rep, fmt.Errorf("run %d: %w", i+1, err)
		}
		start := time.Now()
		var sd api.StepDown
		if err := c.Do(ctx, http.MethodPost, "/v1/leader/step-down", nil, &sd); err != nil {
			return rep, fmt.Errorf("run %d: step-down: %w", i+1, err)
		}
		to, err := waitNewLeader(ctx, c, from.Leader.ID, timeout)
		if err != nil {
			return rep, fmt.Errorf("run %d: %w", i+1, err)
		}
		took := time.Since(start)
		rep.Runs = append(rep.Runs, drillRun{From: from.Leader.ID, To: to.Leader.ID, Took: took, TookText: took.Round(time.Millisecond).String()})
		if to.Framework.ID != before.Framework.ID {
			rep.Violations = append(rep.Violations, fmt.Sprintf("run %d: FrameworkID %s, was %s", i+1, to.Framework.ID, before.Framework.ID))
		}
	}
	rep.Checks = append(rep.Checks, "one FrameworkID throughout: "+before.Framework.ID)
	// The tasks come back to what they were (nothing lost, nothing doubled).
	deadline := time.Now().Add(timeout)
	for {
		after, err := c.Info(ctx)
		if err == nil && after.Tasks == before.Tasks && after.TasksByState["TASK_RUNNING"] == before.TasksByState["TASK_RUNNING"] {
			rep.Checks = append(rep.Checks, fmt.Sprintf("tasks unchanged: %d (%d running)", after.Tasks, after.TasksByState["TASK_RUNNING"]))
			break
		}
		if time.Now().After(deadline) {
			rep.Violations = append(rep.Violations, fmt.Sprintf("tasks: %d (%d running) before, %d (%d running) after %v",
				before.Tasks, before.TasksByState["TASK_RUNNING"], after.Tasks, after.TasksByState["TASK_RUNNING"], timeout))
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	took := make([]time.Duration, len(rep.Runs))
	for i, r := range rep.Runs {
		took[i] = r.Took
	}
	sort.Slice(took, func(i, j int) bool { return took[i] < took[j] })
	rep.P50 = took[len(took)/2].Round(time.Millisecond).String()
	rep.Max = took[len(took)-1].Round(time.Millisecond).String()
	return rep, nil
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
	fmt.Fprintf(w, "DRILL %s against %s\n\n", rep.Drill, rep.Asked)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RUN\tFROM\tTO\tTOOK")
	for i, r := range rep.Runs {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", i+1, r.From, r.To, r.TookText)
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
		fmt.Fprintln(w, strings.TrimSpace("no violation"))
	}
}
