package replica

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"

	"github.com/regent-sched/regent/cmd/regent/internal/api"
	"github.com/regent-sched/regent/cmd/regent/internal/fleet"
	"github.com/regent-sched/regent/core"
	"github.com/regent-sched/regent/ha"
)

// Handler is the replica's HTTP API.
func (r *Replica) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", r.method(http.MethodGet, r.healthz))
	mux.HandleFunc("/readyz", r.method(http.MethodGet, r.readyz))
	mux.Handle("/metrics", promhttp.HandlerFor(r.metrics.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/v1/leader", r.method(http.MethodGet, r.getLeader))
	mux.HandleFunc("/v1/leader/step-down", r.method(http.MethodPost, r.stepDown))
	mux.HandleFunc("/v1/replicas", r.method(http.MethodGet, r.getReplicas))
	mux.HandleFunc("/v1/info", r.method(http.MethodGet, r.viaLeader(r.getInfo)))
	mux.HandleFunc("/v1/tasks", r.method(http.MethodGet, r.viaLeader(r.getTasks)))
	mux.HandleFunc("/v1/agents", r.method(http.MethodGet, r.viaLeader(r.getAgents)))
	mux.HandleFunc("/v1/blacklist", r.method(http.MethodGet, r.viaLeader(r.getBlacklist)))
	mux.HandleFunc("/v1/blacklist/{agent}", r.blacklistOne)
	mux.HandleFunc("/v1/", func(w http.ResponseWriter, req *http.Request) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no endpoint %s", req.URL.Path))
	})
	mux.HandleFunc("/{$}", r.method(http.MethodGet, r.statusPage))
	mux.HandleFunc("/", func(w http.ResponseWriter, req *http.Request) {
		http.Error(w, "404 page not found: the status page is at /", http.StatusNotFound)
	})
	return mux
}

// method allows only m (and HEAD with GET).
func (r *Replica) method(m string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, req *http.Request) {
		if req.Method != m && !(m == http.MethodGet && req.Method == http.MethodHead) {
			w.Header().Set("Allow", m)
			writeError(w, http.StatusMethodNotAllowed, fmt.Sprintf("%s %s is not allowed; use %s", req.Method, req.URL.Path, m))
			return
		}
		h(w, req)
	}
}

func (r *Replica) healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintln(w, "ok")
}

func (r *Replica) readyz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if err := r.readiness(); err != nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintf(w, "not ready: %v\n", err)
		return
	}
	st := r.runner.Status()
	role := "standby"
	if st.Leading {
		role = "leader"
	}
	fmt.Fprintf(w, "ready (%s)\n", role)
}

func (r *Replica) selfStatus() api.Self {
	st := r.runner.Status()
	return api.Self{ID: r.self.ID, Address: r.self.Address, Leading: st.Leading, Ready: st.Ready, Stopping: st.Stopping, Term: st.Term,
		Transitions: st.Transitions, LastTransition: st.LastTransition, LastReason: st.LastReason, Started: r.started}
}

func (r *Replica) getLeader(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, api.Leader{Leader: r.status().Leader, Self: r.selfStatus()})
}

// stepDown serves POST /v1/leader/step-down: the leader hands over to the
// next replica at once (gracefully, as on SIGTERM) and campaigns again
// behind the others. A write: it needs credentials when they are
// configured, and a standby forwards it to the leader.
func (r *Replica) stepDown(w http.ResponseWriter, req *http.Request) {
	if ok, why := r.auth.allowed(req); !ok {
		w.Header().Set("WWW-Authenticate", `Bearer realm="regent"`)
		writeError(w, http.StatusUnauthorized, why)
		return
	}
	r.viaLeader(func(w http.ResponseWriter, req *http.Request, _ *core.Scheduler[fleet.State]) {
		if err := r.runner.StepDown(); err != nil {
			unavailable(w, fmt.Sprintf("%s cannot step down: %v", r.self.ID, err))
			return
		}
		r.log.Info("stepping down on an operator's request", zap.String("remote", req.RemoteAddr))
		writeJSON(w, http.StatusAccepted, api.StepDown{SteppingDown: r.self.ID})
	})(w, req)
}

func (r *Replica) getReplicas(w http.ResponseWriter, req *http.Request) {
	ctx, cancel := context.WithTimeout(req.Context(), 3*time.Second)
	defer cancel()
	list, err := r.backend.elector.Candidates(ctx)
	if err != nil {
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusServiceUnavailable, fmt.Sprintf("cannot read the replicas from the store: %v", err))
		return
	}
	if list == nil {
		list = []ha.LeaderInfo{}
	}
	writeJSON(w, http.StatusOK, api.Replicas{Replicas: list})
}

// leaderWait bounds how long a request waits for this replica's takeover
// (loading the state) before it gets 503.
const leaderWait = 10 * time.Second

// viaLeader runs h here when this replica is the ready leader, waits for
// the load when it has just won, and otherwise forwards to the leader.
// Writes are never lost silently: a request that cannot reach a ready
// leader gets 503 with Retry-After and was not applied; every write is
// idempotent, so a retry after an unknown outcome (502) is safe.
func (r *Replica) viaLeader(h func(http.ResponseWriter, *http.Request, *core.Scheduler[fleet.State])) http.HandlerFunc {
	return func(w http.ResponseWriter, req *http.Request) {
		if s, err := r.runner.Scheduler(); err == nil {
			w.Header().Set(api.HeaderServedBy, r.self.ID)
			h(w, req, s)
			return
		}
		st := r.status()
		if st.Stopping {
			unavailable(w, fmt.Sprintf("%s is handing over its leadership; retry", r.self.ID))
			return
		}
		if st.Leading {
			ctx, cancel := context.WithTimeout(req.Context(), leaderWait)
			s, err := r.runner.WaitReady(ctx)
			cancel()
			if err == nil {
				w.Header().Set(api.HeaderServedBy, r.self.ID)
				h(w, req, s)
				return
			}
			unavailable(w, "this replica was elected and is still loading the state; retry")
			return
		}
		switch {
		case req.Header.Get(api.HeaderForwardedBy) != "":
			unavailable(w, fmt.Sprintf("forwarded by %s, but %s is not the leader (leadership is moving); retry",
				req.Header.Get(api.HeaderForwardedBy), r.self.ID))
		case st.Leader.ID == "":
			unavailable(w, "no leader is elected; retry")
		case st.Leader.ID == r.self.ID:
			unavailable(w, "this replica is taking over; retry")
		default:
			r.forward.forward(w, req, r.self.ID, st.Leader.ID, st.Leader.Address)
		}
	}
}

func unavailable(w http.ResponseWriter, msg string) {
	w.Header().Set("Retry-After", "1")
	writeError(w, http.StatusServiceUnavailable, msg)
}

// ask asks the framework and maps scheduler errors to status codes.
func (r *Replica) ask(w http.ResponseWriter, req *http.Request, s *core.Scheduler[fleet.State], payload any) (any, bool) {
	ctx, cancel := context.WithTimeout(req.Context(), 30*time.Second)
	defer cancel()
	v, err := s.Ask(ctx, payload)
	switch {
	case err == nil:
		return v, true
	case errors.Is(err, fleet.ErrUnknownAgent):
		writeError(w, http.StatusNotFound, err.Error())
	case errors.Is(err, fleet.ErrBadAgentID):
		writeError(w, http.StatusBadRequest, err.Error())
	case errors.Is(err, core.ErrStopped), errors.Is(err, core.ErrQueueFull), errors.Is(err, context.DeadlineExceeded):
		// Not committed, or not known to be: every write is idempotent.
		unavailable(w, fmt.Sprintf("the scheduler could not answer: %v", err))
	default:
		r.log.Warn("request failed", zap.String("path", req.URL.Path), zap.Error(err))
		writeError(w, http.StatusInternalServerError, err.Error())
	}
	return nil, false
}

func (r *Replica) getInfo(w http.ResponseWriter, _ *http.Request, s *core.Scheduler[fleet.State]) {
	writeJSON(w, http.StatusOK, r.info(s))
}

func (r *Replica) info(s *core.Scheduler[fleet.State]) api.Info {
	ss := s.Status()
	fc := r.fw.Config()
	by := ss.TasksByState
	if by == nil {
		by = map[string]int{}
	}
	return api.Info{
		Framework: api.FrameworkInfo{ID: ss.FrameworkID, Name: r.cfg.Name, Role: r.cfg.Role, Principal: r.cfg.Principal,
			User: r.cfg.User, FailoverTimeout: r.cfg.FailoverTimeout.String()},
		Master:         ss.Master,
		MasterSpec:     core.RedactMasterSpec(r.cfg.Master),
		Subscribed:     ss.Subscribed,
		Task:           api.TaskSpec{CPUs: fc.CPUs, Mem: fc.Mem, Command: fc.Command},
		Leader:         r.runner.Status().Leader,
		Tasks:          ss.Tasks,
		TasksByState:   by,
		Reconciliation: ss.Reconciliation,
		Generation:     ss.Generation,
		Store:          api.StoreInfo{Kind: r.cfg.StoreKind(), Prefix: r.cfg.Prefix},
		Version:        Version,
	}
}

func (r *Replica) getTasks(w http.ResponseWriter, req *http.Request, s *core.Scheduler[fleet.State]) {
	if v, ok := r.ask(w, req, s, fleet.ListTasks{}); ok {
		tasks, _ := v.([]core.Task)
		if tasks == nil {
			tasks = []core.Task{}
		}
		writeJSON(w, http.StatusOK, api.Tasks{Tasks: tasks})
	}
}

func (r *Replica) getAgents(w http.ResponseWriter, req *http.Request, s *core.Scheduler[fleet.State]) {
	r.listAgents(w, req, s, fleet.ListAgents{})
}

func (r *Replica) getBlacklist(w http.ResponseWriter, req *http.Request, s *core.Scheduler[fleet.State]) {
	r.listAgents(w, req, s, fleet.ListBlacklist{})
}

func (r *Replica) listAgents(w http.ResponseWriter, req *http.Request, s *core.Scheduler[fleet.State], q any) {
	if v, ok := r.ask(w, req, s, q); ok {
		agents, _ := v.([]fleet.AgentView)
		if agents == nil {
			agents = []fleet.AgentView{}
		}
		writeJSON(w, http.StatusOK, api.Agents{Agents: agents})
	}
}

// maxBody bounds request bodies.
const maxBody = 64 << 10

// blacklistOne serves POST and DELETE /v1/blacklist/{agent}: validated
// and authenticated here, applied by the leader.
func (r *Replica) blacklistOne(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodPost && req.Method != http.MethodDelete {
		w.Header().Set("Allow", "POST, DELETE")
		writeError(w, http.StatusMethodNotAllowed, fmt.Sprintf("%s %s is not allowed; use POST or DELETE", req.Method, req.URL.Path))
		return
	}
	if ok, why := r.auth.allowed(req); !ok {
		w.Header().Set("WWW-Authenticate", `Bearer realm="regent"`)
		writeError(w, http.StatusUnauthorized, why)
		return
	}
	agent := req.PathValue("agent")
	if err := fleet.ValidAgentID(agent); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	var payload any = fleet.Unblacklist{AgentID: agent}
	if req.Method == http.MethodPost {
		body, err := io.ReadAll(http.MaxBytesReader(w, req.Body, maxBody))
		if err != nil {
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body: %v", err))
			return
		}
		var in api.BlacklistRequest
		if len(bytes.TrimSpace(body)) > 0 {
			dec := json.NewDecoder(bytes.NewReader(body))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&in); err != nil {
				writeError(w, http.StatusBadRequest, fmt.Sprintf("body: want {\"reason\": \"...\"}: %v", err))
				return
			}
			if dec.More() {
				writeError(w, http.StatusBadRequest, "body: want one JSON object")
				return
			}
		}
		if len(in.Reason) > 1024 {
			writeError(w, http.StatusBadRequest, "reason: longer than 1024 bytes")
			return
		}
		// The body may be forwarded to the leader: put it back.
		req.Body, req.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
		payload = fleet.Blacklist{AgentID: agent, Reason: in.Reason}
	}
	r.viaLeader(func(w http.ResponseWriter, req *http.Request, s *core.Scheduler[fleet.State]) {
		if v, ok := r.ask(w, req, s, payload); ok {
			res, _ := v.(fleet.BlacklistResult)
			r.log.Info("blacklist changed", zap.String("method", req.Method), zap.String("agent", agent),
				zap.Bool("changed", res.Changed), zap.String("killed_task", res.KilledTask))
			writeJSON(w, http.StatusOK, res)
		}
	})(w, req)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	w.Write(append(b, '\n'))
}

func writeError(w http.ResponseWriter, code int, msg string) {
	b, _ := json.Marshal(api.Error{Error: strings.TrimSpace(msg)})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	w.Write(append(b, '\n'))
}
