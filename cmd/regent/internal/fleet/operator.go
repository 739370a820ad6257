package fleet

import (
	"fmt"
	"sort"
	"time"

	"github.com/regent-sched/regent/core"
)

// request runs an operator's request and answers it when the caller waits
// (Ask); a request sent with Send is applied without an answer.
func (f *Framework) request(s State, in core.Input, msg core.UserMessage) (State, []core.Action) {
	var (
		value any
		err   error
		acts  []core.Action
	)
	switch p := msg.Payload.(type) {
	case Blacklist:
		s, value, acts, err = blacklist(s, in, p)
	case *Blacklist:
		if p == nil {
			err = fmt.Errorf("fleet: nil %T request", p)
			break
		}
		s, value, acts, err = blacklist(s, in, *p)
	case Unblacklist:
		s, value, acts, err = unblacklist(s, in, p)
	case *Unblacklist:
		if p == nil {
			err = fmt.Errorf("fleet: nil %T request", p)
			break
		}
		s, value, acts, err = unblacklist(s, in, *p)
	case ListAgents, *ListAgents:
		value = listAgents(s, in, false)
	case ListBlacklist, *ListBlacklist:
		value = listAgents(s, in, true)
	case ListTasks, *ListTasks:
		value = listTasks(in.Tasks)
	default:
		// Answer anyway: an Ask must never wait for a reply that is not
		// coming.
		err = fmt.Errorf("fleet: unknown request %T", p)
	}
	if msg.Request {
		if err != nil {
			value = nil
		}
		acts = append(acts, core.Reply{To: msg.ID, Value: value, Err: err})
	}
	return s, acts
}

// known looks an operator's agent id up: valid, and either recorded or
// the agent of one of our tasks.
func known(s State, in core.Input, id string) (Agent, error) {
	if err := ValidAgentID(id); err != nil {
		return Agent{}, err
	}
	a, ok := s.Agents[id]
	if !ok && len(tasksOn(in.Tasks, id, false)) == 0 {
		return Agent{}, fmt.Errorf("%w %q", ErrUnknownAgent, id)
	}
	return a, nil
}

// blacklist stops launches on an agent and kills the task on it.
func blacklist(s State, in core.Input, req Blacklist) (State, BlacklistResult, []core.Action, error) {
	a, err := known(s, in, req.AgentID)
	if err != nil {
		return s, BlacklistResult{}, nil, err
	}
	changed := !a.Blacklisted
	if changed {
		a.Blacklisted, a.BlacklistedAt, a.Reason = true, in.Now, req.Reason
		s.Agents[req.AgentID] = a
	}
	// On a repeat this kills again a task that is still alive. That is
	// harmless: Mesos answers a KILL of a task being killed by carrying on,
	// and of one that ended with its terminal state; and since Mesos does
	// not deliver KILL reliably, repeating the request is how an operator
	// retries it. Nothing new is killed: no task is ever launched here.
	live := tasksOn(in.Tasks, req.AgentID, true)
	var acts []core.Action
	var killed string
	for _, t := range live {
		acts = append(acts, core.Kill{TaskID: t.ID})
		if killed == "" {
			killed = t.ID
		}
	}
	return s, BlacklistResult{Agent: view(req.AgentID, a, live, in.Now), Changed: changed, KilledTask: killed}, acts, nil
}

// unblacklist allows launches on an agent again, with a clean slate.
func unblacklist(s State, in core.Input, req Unblacklist) (State, BlacklistResult, []core.Action, error) {
	a, err := known(s, in, req.AgentID)
	if err != nil {
		return s, BlacklistResult{}, nil, err
	}
	changed := a.Blacklisted
	var acts []core.Action
	if changed {
		a.Blacklisted, a.BlacklistedAt, a.Reason = false, time.Time{}, ""
		a.Failures, a.NotBefore = 0, time.Time{}
		s.Agents[req.AgentID] = a
		// Its offers were declined with a long filter meanwhile.
		acts = append(acts, core.Revive{})
	}
	live := tasksOn(in.Tasks, req.AgentID, true)
	return s, BlacklistResult{Agent: view(req.AgentID, a, live, in.Now), Changed: changed}, acts, nil
}

// view renders an agent for operators; live are its non-terminal tasks,
// sorted by id.
func view(id string, a Agent, live []core.Task, now time.Time) AgentView {
	v := AgentView{ID: id, Hostname: a.Hostname, Blacklisted: a.Blacklisted, Reason: a.Reason,
		BlacklistedAt: a.BlacklistedAt, Failures: a.Failures, LastOffer: a.LastOffer, Gone: a.Gone}
	if len(live) > 0 {
		v.TaskID, v.TaskState = live[0].ID, live[0].State.String()
	} else if !a.Blacklisted && a.NotBefore.After(now) {
		v.NextLaunch = a.NotBefore
	}
	if a.LastExit != nil {
		e := *a.LastExit
		v.LastExit = &e
	}
	return v
}

// listAgents lists the recorded agents and those of our tasks, sorted by
// id; only blacklisted ones when onlyBlacklisted.
func listAgents(s State, in core.Input, onlyBlacklisted bool) []AgentView {
	ids := map[string]bool{}
	for id := range s.Agents {
		ids[id] = true
	}
	live := map[string][]core.Task{}
	rangeTasks(in.Tasks, func(t core.Task) {
		id := taskAgent(t)
		if id == "" {
			return
		}
		ids[id] = true
		if !t.Terminal() {
			live[id] = append(live[id], t)
		}
	})
	out := []AgentView{}
	for id := range ids {
		a := s.Agents[id]
		if onlyBlacklisted && !a.Blacklisted {
			continue
		}
		ts := live[id]
		sort.Slice(ts, func(i, j int) bool { return ts[i].ID < ts[j].ID })
		out = append(out, view(id, a, ts, in.Now))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// listTasks copies the tasks regent tracks, sorted by id. The copy shares
// nothing with core's records: the reply is read on another goroutine.
func listTasks(tv core.TaskView) []core.Task {
	out := []core.Task{}
	rangeTasks(tv, func(t core.Task) {
		if t.Data != nil {
			t.Data = append([]byte(nil), t.Data...)
		}
		out = append(out, t)
	})
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}
