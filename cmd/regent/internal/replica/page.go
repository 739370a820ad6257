package replica

import (
	"bytes"
	"context"
	_ "embed"
	"fmt"
	"html/template"
	"net/http"
	"sort"
	"time"

	"github.com/regent-sched/regent/cmd/regent/internal/api"
	"github.com/regent-sched/regent/cmd/regent/internal/fleet"
	"github.com/regent-sched/regent/core"
	"github.com/regent-sched/regent/ha"
)

//go:embed page.html
var pageHTML string

var pageTemplate = template.Must(template.New("page").Funcs(template.FuncMap{
	"ago": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		d := time.Since(t)
		if d < 0 {
			return "in " + (-d).Round(time.Second).String()
		}
		return d.Round(time.Second).String() + " ago"
	},
	"stamp": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.UTC().Format("2006-01-02 15:04:05Z")
	},
}).Parse(pageHTML))

// pageData is everything the status page shows.
type pageData struct {
	Name        string
	Version     string
	Self        api.Self
	Ready       string
	Leader      ha.LeaderInfo
	Replicas    []ha.LeaderInfo
	ReplicasErr string
	// From the leader (here or through it):
	ServedBy    string
	DataErr     string
	Info        *api.Info
	States      []stateCount
	Tasks       []core.Task
	Agents      []fleet.AgentView
	Transitions []transition
	Now         time.Time
}

type stateCount struct {
	State string
	N     int
}

// statusPage renders the page from what this replica knows and, for the
// framework's data, from the leader: locally when it leads, else through
// the leader's REST API. It renders even when the leader cannot be
// reached, saying so.
func (r *Replica) statusPage(w http.ResponseWriter, req *http.Request) {
	ctx, cancel := context.WithTimeout(req.Context(), 3*time.Second)
	defer cancel()
	st := r.status()
	d := pageData{Name: r.cfg.Name, Version: Version, Self: r.selfStatus(), Leader: st.Leader,
		Transitions: r.transitions(), Now: time.Now(), Ready: "ready"}
	if err := r.readiness(); err != nil {
		d.Ready = "not ready: " + err.Error()
	}
	if list, err := r.backend.elector.Candidates(ctx); err != nil {
		d.ReplicasErr = err.Error()
	} else {
		d.Replicas = list
	}
	r.pageFrameworkData(ctx, st, &d)
	if d.Info != nil {
		for s, n := range d.Info.TasksByState {
			d.States = append(d.States, stateCount{s, n})
		}
		sort.Slice(d.States, func(i, j int) bool { return d.States[i].State < d.States[j].State })
	}
	var buf bytes.Buffer
	if err := pageTemplate.Execute(&buf, d); err != nil {
		http.Error(w, "rendering the status page: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(buf.Bytes())
}

func (r *Replica) pageFrameworkData(ctx context.Context, st ha.Status, d *pageData) {
	if s, err := r.runner.Scheduler(); err == nil {
		d.ServedBy = r.self.ID
		info := r.info(s)
		d.Info = &info
		if v, err := s.Ask(ctx, fleet.ListTasks{}); err == nil {
			d.Tasks, _ = v.([]core.Task)
		} else {
			d.DataErr = err.Error()
		}
		if v, err := s.Ask(ctx, fleet.ListAgents{}); err == nil {
			d.Agents, _ = v.([]fleet.AgentView)
		} else {
			d.DataErr = err.Error()
		}
		return
	}
	switch {
	case st.Stopping:
		d.DataErr = "this replica is handing over its leadership"
		return
	case st.Leading:
		d.DataErr = "this replica was just elected and is loading the state"
		return
	case st.Leader.ID == "":
		d.DataErr = "no leader is elected"
		return
	}
	c := api.Client{Base: st.Leader.Address, HTTP: r.forward.client}
	d.ServedBy = st.Leader.ID
	info, err := c.Info(ctx)
	if err != nil {
		d.DataErr = fmt.Sprintf("the leader %s at %s did not answer: %v", st.Leader.ID, st.Leader.Address, err)
		return
	}
	d.Info = &info
	if ts, err := c.Tasks(ctx); err == nil {
		d.Tasks = ts.Tasks
	} else {
		d.DataErr = err.Error()
	}
	if as, err := c.Agents(ctx); err == nil {
		d.Agents = as.Agents
	} else {
		d.DataErr = err.Error()
	}
}
