package mesossim

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"
)

const (
	mediaJSON     = "application/json"
	mediaProtobuf = "application/x-protobuf"
	maxCallBytes  = 64 << 20
)

// ServeHTTP routes a master's endpoints: the scheduler API, the subset of
// the master's state endpoints the simulator keeps, /master/redirect, and
// the simulator's own control API under /sim/.
func (m *master) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch p := r.URL.Path; {
	case p == "/api/v1/scheduler" || p == "/master/api/v1/scheduler":
		m.scheduler(w, r)
	case p == "/state" || p == "/master/state" || p == "/state.json" || p == "/master/state.json":
		m.c.serveState(w, r)
	case p == "/redirect" || p == "/master/redirect":
		m.redirect(w, r)
	case p == "/health" || p == "/master/health":
		w.WriteHeader(http.StatusOK)
	case strings.HasPrefix(p, "/sim/"):
		m.c.serveControl(w, r)
	default:
		http.NotFound(w, r)
	}
}

func (m *master) redirect(w http.ResponseWriter, r *http.Request) {
	m.c.mu.Lock()
	leader := m.c.leader
	m.c.mu.Unlock()
	if leader < 0 {
		http.Error(w, "No leader elected", http.StatusServiceUnavailable)
		return
	}
	l := m.c.masters[leader]
	w.Header().Set("Location", "//"+net.JoinHostPort(l.host, strconv.Itoa(l.port)))
	w.WriteHeader(http.StatusTemporaryRedirect)
}

// httpError is a call refused before it reached the master's logic.
type httpError struct {
	code int
	msg  string
}

func (e *httpError) Error() string { return e.msg }

func fail(code int, format string, args ...any) *httpError {
	return &httpError{code: code, msg: fmt.Sprintf(format, args...)}
}

func (m *master) scheduler(w http.ResponseWriter, r *http.Request) {
	c := m.c
	c.mu.Lock()
	leader := c.leader
	injected := c.failRequests > 0
	if injected {
		c.failRequests--
	}
	c.mu.Unlock()
	switch {
	case leader < 0:
		http.Error(w, "No leader elected", http.StatusServiceUnavailable)
		return
	case leader != m.index:
		l := c.masters[leader]
		w.Header().Set("Location", "//"+net.JoinHostPort(l.host, strconv.Itoa(l.port))+r.URL.Path)
		w.WriteHeader(http.StatusTemporaryRedirect)
		return
	case injected:
		http.Error(w, "Simulated failure (mesos-sim fault injection)", http.StatusServiceUnavailable)
		return
	}
	call, isJSON, herr := decodeCall(r)
	if herr == nil {
		herr = validateCall(call)
	}
	if herr != nil {
		c.countRejected()
		http.Error(w, herr.msg, herr.code)
		return
	}
	var before any
	if c.cfg.BeforeCall != nil {
		before = c.cfg.BeforeCall(call)
	}
	if call.Type == scheduler.Call_SUBSCRIBE {
		m.subscribe(w, r, call, before)
		return
	}
	code, msg := c.dispatch(call, r.Header.Get("Mesos-Stream-Id"), isJSON, before)
	if code >= 400 {
		c.countRejected()
		http.Error(w, msg, code)
		return
	}
	w.WriteHeader(code)
}

// decodeCall reads a call in the codec its Content-Type names.
func decodeCall(r *http.Request) (*scheduler.Call, bool, *httpError) {
	if r.Method != http.MethodPost {
		return nil, false, &httpError{code: http.StatusMethodNotAllowed,
			msg: fmt.Sprintf("Expecting a 'POST' request, received '%s'", r.Method)}
	}
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		return nil, false, fail(http.StatusBadRequest, "Expecting 'Content-Type' to be present")
	}
	if ct != mediaJSON && ct != mediaProtobuf {
		return nil, false, fail(http.StatusUnsupportedMediaType,
			"Expecting 'Content-Type' of %s or %s", mediaJSON, mediaProtobuf)
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxCallBytes+1))
	if err != nil {
		return nil, false, fail(http.StatusBadRequest, "Failed to read body: %v", err)
	}
	if len(body) > maxCallBytes {
		return nil, false, fail(http.StatusRequestEntityTooLarge, "Request body is larger than %d bytes", maxCallBytes)
	}
	call := &scheduler.Call{}
	if ct == mediaJSON {
		if err := call.UnmarshalJSON(body); err != nil {
			return nil, true, fail(http.StatusBadRequest, "Failed to parse body into JSON: %v", err)
		}
		return call, true, nil
	}
	if err := call.Unmarshal(body); err != nil {
		return nil, false, fail(http.StatusBadRequest, "Failed to parse body into Call protobuf: %v", err)
	}
	return call, false, nil
}

// negotiate picks the stream's codec from Accept: JSON when acceptable,
// else protobuf; a missing Accept means anything (so JSON).
func negotiate(accept string) (json bool, ok bool) {
	if strings.TrimSpace(accept) == "" {
		return true, true
	}
	jsonQ, pbQ := -1.0, -1.0
	for _, part := range strings.Split(accept, ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		q := 1.0
		if qs, ok := params["q"]; ok {
			if v, err := strconv.ParseFloat(qs, 64); err == nil {
				q = v
			}
		}
		switch mt {
		case mediaJSON:
			jsonQ = max(jsonQ, q)
		case mediaProtobuf:
			pbQ = max(pbQ, q)
		case "application/*", "*/*":
			jsonQ = max(jsonQ, q)
			pbQ = max(pbQ, q)
		}
	}
	switch {
	case jsonQ > 0:
		return true, true
	case pbQ > 0:
		return false, true
	}
	return false, false
}

func (m *master) subscribe(w http.ResponseWriter, r *http.Request, call *scheduler.Call, before any) {
	c := m.c
	if r.Header.Get("Mesos-Stream-Id") != "" {
		c.countRejected()
		http.Error(w, "Subscribe calls should not include the 'Mesos-Stream-Id' header", http.StatusBadRequest)
		return
	}
	isJSON, ok := negotiate(r.Header.Get("Accept"))
	if !ok {
		c.countRejected()
		http.Error(w, fmt.Sprintf("Expecting 'Accept' to allow '%s' or '%s'", mediaProtobuf, mediaJSON), http.StatusNotAcceptable)
		return
	}
	s := newStream(uuid.New().String(), isJSON)
	ct := mediaProtobuf
	if isJSON {
		ct = mediaJSON
	}
	w.Header().Set("Content-Type", ct)
	w.Header().Set("Mesos-Stream-Id", s.id)
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	fw := c.subscribeLocked(s, call.Subscribe, before)
	c.mu.Unlock()
	s.serve(w, r, c.cfg.HeartbeatInterval, c.isStalled, c.done)
	c.mu.Lock()
	if !c.closed {
		c.streamEndedLocked(fw, s)
	}
	c.mu.Unlock()
}

func (c *Cluster) isStalled() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stalled
}

// dispatch runs a non-SUBSCRIBE call and returns the HTTP status to answer.
func (c *Cluster) dispatch(call *scheduler.Call, streamID string, isJSON bool, before any) (int, string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ack := CallRecord{Before: before}
	if a := call.Acknowledge; call.Type == scheduler.Call_ACKNOWLEDGE && a != nil {
		ack.TaskID, ack.AckUUID = a.TaskID.Value, hex.EncodeToString(a.UUID)
		acks := c.ackCount(call)
		code, msg := c.dispatchLocked(call, streamID)
		if code < 300 && c.ackCount(call) > acks {
			ack.AckedState = c.frameworks[call.FrameworkID.Value].lastAcked.String()
		}
		c.recordCall(call, streamID, code, ack)
		return code, msg
	}
	code, msg := c.dispatchLocked(call, streamID)
	c.recordCall(call, streamID, code, ack)
	return code, msg
}

func (c *Cluster) recordCall(call *scheduler.Call, streamID string, code int, ack CallRecord) {
	if c.cfg.OnCall != nil {
		c.cfg.OnCall(CallRecord{At: time.Now(), FrameworkID: call.FrameworkID.GetValue(), Type: call.Type.String(),
			StreamID: streamID, Status: code, TaskID: ack.TaskID, AckUUID: ack.AckUUID, AckedState: ack.AckedState,
			Before: ack.Before})
	}
}

// ackCount is how many acks the call's framework had released so far.
func (c *Cluster) ackCount(call *scheduler.Call) int {
	if fw := c.frameworks[call.FrameworkID.GetValue()]; fw != nil {
		return fw.counters.Acks
	}
	return 0
}

func (c *Cluster) dispatchLocked(call *scheduler.Call, streamID string) (int, string) {
	fw := c.frameworks[call.FrameworkID.Value]
	if fw == nil || !fw.known {
		return http.StatusBadRequest, "Framework cannot be found"
	}
	if !fw.connected {
		return http.StatusForbidden, "Framework is not subscribed"
	}
	if streamID == "" {
		fw.counters.StaleStreamCalls++
		return http.StatusBadRequest, "All non-subscribe calls should include the 'Mesos-Stream-Id' header"
	}
	if streamID != fw.stream.id {
		fw.counters.StaleStreamCalls++
		return http.StatusBadRequest, fmt.Sprintf("The stream ID '%s' included in this request didn't match the stream ID currently associated with framework ID %s",
			streamID, fw.id)
	}
	fw.counters.Calls++
	switch call.Type {
	case scheduler.Call_TEARDOWN:
		c.removeFrameworkLocked(fw)
	case scheduler.Call_ACCEPT:
		c.acceptLocked(fw, call.Accept)
	case scheduler.Call_DECLINE:
		c.declineLocked(fw, call.Decline)
	case scheduler.Call_REVIVE:
		var roles []string
		if call.Revive != nil {
			roles = call.Revive.Roles
		}
		c.reviveLocked(fw, roles)
	case scheduler.Call_SUPPRESS:
		var roles []string
		if call.Suppress != nil {
			roles = call.Suppress.Roles
		}
		c.suppressLocked(fw, roles)
	case scheduler.Call_KILL:
		c.killLocked(fw, call.Kill)
	case scheduler.Call_SHUTDOWN:
		c.shutdownLocked(fw, call.Shutdown)
	case scheduler.Call_ACKNOWLEDGE:
		c.acknowledgeLocked(fw, call.Acknowledge)
	case scheduler.Call_RECONCILE:
		c.reconcileLocked(fw, call.Reconcile)
	case scheduler.Call_UPDATE_FRAMEWORK:
		if err := c.updateFrameworkLocked(fw, call.UpdateFramework); err != nil {
			return http.StatusBadRequest, err.Error()
		}
		return http.StatusOK, ""
	case scheduler.Call_MESSAGE, scheduler.Call_REQUEST, scheduler.Call_ACCEPT_INVERSE_OFFERS,
		scheduler.Call_DECLINE_INVERSE_OFFERS, scheduler.Call_ACKNOWLEDGE_OPERATION_STATUS,
		scheduler.Call_RECONCILE_OPERATIONS:
		// Accepted and dropped: mesos-sim runs no executors and no operations.
	}
	return http.StatusAccepted, ""
}

func (c *Cluster) updateFrameworkLocked(fw *framework, u *scheduler.Call_UpdateFramework) error {
	info := u.FrameworkInfo
	if info.User != fw.info.User || info.GetPrincipal() != fw.info.GetPrincipal() || info.GetCheckpoint() != fw.info.GetCheckpoint() {
		return errors.New("Updating 'FrameworkInfo.user', 'principal' or 'checkpoint' is not supported")
	}
	if err := validateFrameworkInfo(&info, u.SuppressedRoles); err != nil {
		return err
	}
	fw.info = info
	fw.setCapabilities()
	fw.suppressed = map[string]bool{}
	for _, r := range u.SuppressedRoles {
		fw.suppressed[r] = true
	}
	roles := map[string]bool{}
	for _, r := range fw.roles() {
		roles[r] = true
	}
	for _, o := range fw.offers {
		if !roles[o.role] {
			c.removeOfferLocked(o, true)
		}
	}
	c.kickFullLocked()
	return nil
}

func (c *Cluster) countRejected() {
	c.mu.Lock()
	c.stats.RejectedCalls++
	c.mu.Unlock()
}
