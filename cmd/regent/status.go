package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/regent-sched/regent/cmd/regent/internal/api"
)

// statusReport is what `regent status -o json` prints.
type statusReport struct {
	Asked     string        `json:"asked"`
	Leader    api.Leader    `json:"leader"`
	Replicas  []api.Replica `json:"replicas"`
	Info      *api.Info     `json:"info,omitempty"`
	InfoError string        `json:"info_error,omitempty"`
}

func newStatusCmd() *cobra.Command {
	var (
		cluster clusterFlags
		output  string
		timeout time.Duration
	)
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Ask a running cluster who leads and what it runs",
		Long: `Ask one replica (any: standbys answer from the leader) who leads, which
replicas campaign, and what the framework runs.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if output != "table" && output != "json" {
				return fmt.Errorf("-o %q: want table or json", output)
			}
			c, err := cluster.client(timeout)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			rep, err := collectStatus(ctx, c)
			if err != nil {
				return err
			}
			if output == "json" {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(rep)
			}
			printStatus(cmd.OutOrStdout(), rep)
			return nil
		},
	}
	f := cmd.Flags()
	cluster.register(f, false, "")
	f.StringVarP(&output, "output", "o", "table", "output format: table or json")
	f.DurationVar(&timeout, "timeout", 10*time.Second, "how long to wait for the answers")
	return cmd
}

func collectStatus(ctx context.Context, c api.Client) (statusReport, error) {
	rep := statusReport{Asked: c.Base}
	var err error
	if rep.Leader, err = c.Leader(ctx); err != nil {
		return rep, fmt.Errorf("asking %s: %w", c.Base, err)
	}
	rs, err := c.Replicas(ctx)
	if err != nil {
		return rep, fmt.Errorf("asking %s for the replicas: %w", c.Base, err)
	}
	rep.Replicas = rs.Replicas
	if info, err := c.Info(ctx); err != nil {
		rep.InfoError = err.Error()
	} else {
		rep.Info = &info
	}
	return rep, nil
}

func printStatus(w io.Writer, rep statusReport) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	l := rep.Leader.Leader
	if l.ID == "" {
		fmt.Fprintf(tw, "LEADER\tnone elected\n")
	} else {
		fmt.Fprintf(tw, "LEADER\t%s\tterm %d\t%s\n", l.ID, l.Token, l.Address)
	}
	if in := rep.Info; in != nil {
		id := in.Framework.ID
		if id == "" {
			id = "(not registered yet)"
		}
		fmt.Fprintf(tw, "FRAMEWORK\t%s\t%s\trole %s\n", in.Framework.Name, id, in.Framework.Role)
		sub := "not subscribed"
		if in.Subscribed {
			sub = "subscribed to " + in.Master
		}
		fmt.Fprintf(tw, "MESOS\t%s\n", sub)
		states := make([]string, 0, len(in.TasksByState))
		for s, n := range in.TasksByState {
			states = append(states, fmt.Sprintf("%s %d", strings.TrimPrefix(s, "TASK_"), n))
		}
		sort.Strings(states)
		fmt.Fprintf(tw, "TASKS\t%d\t%s\n", in.Tasks, strings.Join(states, ", "))
		rec := "idle"
		if in.Reconciliation.Active {
			rec = fmt.Sprintf("running, %d pending", in.Reconciliation.Pending)
		}
		fmt.Fprintf(tw, "RECONCILIATION\t%s\n", rec)
	} else {
		fmt.Fprintf(tw, "FRAMEWORK\tunavailable: %s\n", rep.InfoError)
	}
	tw.Flush()
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "REPLICA\tROLE\tADDRESS\tTOKEN")
	for _, r := range rep.Replicas {
		role := "standby"
		if r.ID == l.ID {
			role = "leader"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\n", r.ID, role, r.Address, r.Token)
	}
	if len(rep.Replicas) == 0 {
		fmt.Fprintln(tw, "(none)\t\t\t")
	}
	tw.Flush()
}
