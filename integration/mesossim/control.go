package mesossim

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

// AgentRequest is the body of POST /sim/agents. Zero resources take the
// defaults of DefaultAgentResources; Ports is "begin-end[,begin-end...]".
type AgentRequest struct {
	Hostname   string            `json:"hostname"`
	CPUs       float64           `json:"cpus"`
	Mem        float64           `json:"mem"`
	Disk       float64           `json:"disk"`
	Ports      string            `json:"ports"`
	Attributes map[string]string `json:"attributes"`
}

// Spec turns the request into an AgentSpec, validating it.
func (r AgentRequest) Spec() (AgentSpec, error) {
	def := map[string]float64{"cpus": 4, "mem": 8192, "disk": 65536}
	vals := map[string]float64{"cpus": r.CPUs, "mem": r.Mem, "disk": r.Disk}
	var rs []mesos.Resource
	for _, name := range []string{"cpus", "mem", "disk"} {
		v := vals[name]
		if v < 0 {
			return AgentSpec{}, fmt.Errorf("%s: %v is negative", name, v)
		}
		if v == 0 {
			v = def[name]
		}
		rs = append(rs, mesos.Resource{Name: name, Type: mesos.SCALAR.Enum(), Scalar: &mesos.Value_Scalar{Value: v}})
	}
	ports := r.Ports
	if ports == "" {
		ports = "31000-32000"
	}
	rg, err := ParseRanges(ports)
	if err != nil {
		return AgentSpec{}, fmt.Errorf("ports: %w", err)
	}
	rs = append(rs, mesos.Resource{Name: "ports", Type: mesos.RANGES.Enum(), Ranges: &mesos.Value_Ranges{Range: rg}})
	var attrs []mesos.Attribute
	for _, k := range sortedKeys(r.Attributes) {
		v := r.Attributes[k]
		attrs = append(attrs, mesos.Attribute{Name: k, Type: mesos.TEXT, Text: &mesos.Value_Text{Value: v}})
	}
	return AgentSpec{Hostname: r.Hostname, Resources: rs, Attributes: attrs}, nil
}

// ParseRanges parses "31000-32000,33000-33010" into Mesos ranges.
func ParseRanges(s string) ([]mesos.Value_Range, error) {
	var out []mesos.Value_Range
	for _, part := range strings.Split(s, ",") {
		b, e, ok := strings.Cut(strings.TrimSpace(part), "-")
		if !ok {
			e = b
		}
		begin, err1 := strconv.ParseUint(strings.TrimSpace(b), 10, 64)
		end, err2 := strconv.ParseUint(strings.TrimSpace(e), 10, 64)
		if err1 != nil || err2 != nil || begin > end {
			return nil, fmt.Errorf("%q is not a range like 31000-32000", part)
		}
		out = append(out, mesos.Value_Range{Begin: begin, End: end})
	}
	return out, nil
}

// FaultRequest is the body of POST /sim/faults.
type FaultRequest struct {
	StallStreams *bool `json:"stall_streams"`
	FailRequests *int  `json:"fail_requests"`
	HoldLaunches *bool `json:"hold_launches"`
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func writeErr(w http.ResponseWriter, code int, err error) {
	writeJSON(w, code, map[string]string{"error": err.Error()})
}

// decodeBody reads a JSON body strictly: unknown fields and trailing data
// are errors.
func decodeBody(r *http.Request, v any) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("invalid JSON body: %w", err)
	}
	if dec.More() {
		return errors.New("invalid JSON body: trailing data")
	}
	return nil
}

// serveControl is the simulator's control API, for tests and operators:
//
//	GET    /sim/state                          cluster snapshot (State)
//	POST   /sim/agents                         add an agent (AgentRequest) → 201 {"id": ...}
//	DELETE /sim/agents/{id}                    remove an agent for good
//	POST   /sim/agents/{id}/partition          make it unreachable
//	POST   /sim/agents/{id}/restore            let it re-register
//	POST   /sim/master/failover[?gap=1s]       fail the leading master over
//	POST   /sim/frameworks/{id}/disconnect     cut a framework's stream
//	POST   /sim/faults                         FaultRequest
func (c *Cluster) serveControl(w http.ResponseWriter, r *http.Request) {
	parts := strings.Split(strings.Trim(strings.TrimPrefix(r.URL.Path, "/sim/"), "/"), "/")
	route := r.Method + " " + parts[0]
	switch {
	case route == "GET state" && len(parts) == 1:
		writeJSON(w, http.StatusOK, c.Snapshot())
	case route == "POST agents" && len(parts) == 1:
		var req AgentRequest
		if err := decodeBody(r, &req); err != nil {
			writeErr(w, http.StatusBadRequest, err)
			return
		}
		spec, err := req.Spec()
		if err != nil {
			writeErr(w, http.StatusBadRequest, err)
			return
		}
		id, err := c.AddAgent(spec)
		if err != nil {
			writeErr(w, http.StatusBadRequest, err)
			return
		}
		writeJSON(w, http.StatusCreated, map[string]string{"id": id})
	case route == "DELETE agents" && len(parts) == 2:
		c.agentFault(w, c.RemoveAgent(parts[1]))
	case route == "POST agents" && len(parts) == 3 && parts[2] == "partition":
		c.agentFault(w, c.PartitionAgent(parts[1]))
	case route == "POST agents" && len(parts) == 3 && parts[2] == "restore":
		c.agentFault(w, c.RestoreAgent(parts[1]))
	case route == "POST master" && len(parts) == 2 && parts[1] == "failover":
		var gap time.Duration
		if g := r.URL.Query().Get("gap"); g != "" {
			d, err := time.ParseDuration(g)
			if err != nil || d < 0 {
				writeErr(w, http.StatusBadRequest, fmt.Errorf("gap: %q is not a non-negative duration", g))
				return
			}
			gap = d
		}
		c.FailoverMaster(gap)
		writeJSON(w, http.StatusOK, map[string]string{"status": "failed over"})
	case route == "POST frameworks" && len(parts) == 3 && parts[2] == "disconnect":
		if err := c.DisconnectFramework(parts[1]); err != nil {
			writeErr(w, http.StatusNotFound, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "disconnected"})
	case route == "POST faults" && len(parts) == 1:
		var req FaultRequest
		if err := decodeBody(r, &req); err != nil {
			writeErr(w, http.StatusBadRequest, err)
			return
		}
		if req.FailRequests != nil && *req.FailRequests < 0 {
			writeErr(w, http.StatusBadRequest, fmt.Errorf("fail_requests: %d is negative", *req.FailRequests))
			return
		}
		if req.StallStreams != nil {
			c.StallStreams(*req.StallStreams)
		}
		if req.FailRequests != nil {
			c.FailNextRequests(*req.FailRequests)
		}
		if req.HoldLaunches != nil {
			c.HoldLaunches(*req.HoldLaunches)
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	default:
		writeErr(w, http.StatusNotFound, fmt.Errorf("no control endpoint %s %s", r.Method, r.URL.Path))
	}
}

func (c *Cluster) agentFault(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, ErrUnknownAgent):
		writeErr(w, http.StatusNotFound, err)
	case err != nil:
		writeErr(w, http.StatusConflict, err)
	default:
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	}
}

// serveState answers the master's /state endpoint with the subset of its
// JSON that tools read most: frameworks with their tasks, agents ("slaves")
// with total and used resources, and the completed frameworks.
func (c *Cluster) serveState(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	defer c.mu.Unlock()
	type taskJSON struct {
		ID          string         `json:"id"`
		Name        string         `json:"name"`
		FrameworkID string         `json:"framework_id"`
		SlaveID     string         `json:"slave_id"`
		State       string         `json:"state"`
		Resources   map[string]any `json:"resources"`
	}
	type fwJSON struct {
		ID        string     `json:"id"`
		Name      string     `json:"name"`
		Active    bool       `json:"active"`
		Connected bool       `json:"connected"`
		Tasks     []taskJSON `json:"tasks"`
	}
	type slaveJSON struct {
		ID            string         `json:"id"`
		Hostname      string         `json:"hostname"`
		Active        bool           `json:"active"`
		Resources     map[string]any `json:"resources"`
		UsedResources map[string]any `json:"used_resources"`
	}
	out := struct {
		ID                  string              `json:"id"`
		Version             string              `json:"version"`
		Leader              string              `json:"leader,omitempty"`
		ActivatedSlaves     int                 `json:"activated_slaves"`
		Frameworks          []fwJSON            `json:"frameworks"`
		Slaves              []slaveJSON         `json:"slaves"`
		CompletedFrameworks []map[string]string `json:"completed_frameworks"`
	}{ID: c.masterID, Version: c.cfg.Version, Frameworks: []fwJSON{}, Slaves: []slaveJSON{}, CompletedFrameworks: []map[string]string{}}
	if c.leader >= 0 {
		l := c.masters[c.leader]
		out.Leader = "master@" + l.host + ":" + strconv.Itoa(l.port)
	}
	for _, id := range sortedKeys(c.frameworks) {
		fw := c.frameworks[id]
		if !fw.known {
			continue
		}
		f := fwJSON{ID: fw.id, Name: fw.info.Name, Active: fw.connected, Connected: fw.connected, Tasks: []taskJSON{}}
		for _, tid := range sortedKeys(fw.tasks) {
			t := fw.tasks[tid]
			f.Tasks = append(f.Tasks, taskJSON{ID: t.id, Name: t.name, FrameworkID: fw.id, SlaveID: t.ag.id,
				State: t.state.String(), Resources: t.res.stateJSON()})
		}
		out.Frameworks = append(out.Frameworks, f)
	}
	for _, ag := range c.agentOrder {
		if ag.state == AgentGone {
			continue
		}
		used := ag.total.clone()
		free := ag.avail.clone()
		for _, o := range c.offersOnAgent(ag) {
			free.add(o.res)
		}
		used.sub(free)
		out.Slaves = append(out.Slaves, slaveJSON{ID: ag.id, Hostname: ag.hostname, Active: ag.state == AgentActive,
			Resources: ag.total.stateJSON(), UsedResources: used.stateJSON()})
		if ag.state == AgentActive {
			out.ActivatedSlaves++
		}
	}
	for _, id := range sortedKeys(c.completed) {
		out.CompletedFrameworks = append(out.CompletedFrameworks, map[string]string{"id": id})
	}
	writeJSON(w, http.StatusOK, out)
}

// stateJSON renders a pool the way the master's /state does: scalars as
// numbers, ranges as "[a-b, c-d]" strings, sets as "{x, y}".
func (p pool) stateJSON() map[string]any {
	out := map[string]any{}
	for k, v := range p.scalars {
		out[k] = fromMilli(v)
	}
	for k, rs := range p.ranges {
		var parts []string
		for _, r := range rs {
			parts = append(parts, fmt.Sprintf("%d-%d", r.begin, r.end))
		}
		out[k] = "[" + strings.Join(parts, ", ") + "]"
	}
	for k, s := range p.sets {
		out[k] = "{" + strings.Join(sortedKeys(s), ", ") + "}"
	}
	return out
}
