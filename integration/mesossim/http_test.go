package mesossim

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"
)

// Raw HTTP: every way a request can be wrong gets the status and the kind
// of plain-text reason a real master gives, in the master's order of checks.

type rawReq struct {
	method, ct, accept, streamID string
	body                         []byte
	path                         string
}

func doRaw(t *testing.T, base string, r rawReq) (*http.Response, string) {
	t.Helper()
	if r.method == "" {
		r.method = http.MethodPost
	}
	if r.path == "" {
		r.path = "/api/v1/scheduler"
	}
	req, err := http.NewRequest(r.method, base+r.path, bytes.NewReader(r.body))
	if err != nil {
		t.Fatal(err)
	}
	if r.ct != "" {
		req.Header.Set("Content-Type", r.ct)
	}
	if r.accept != "" {
		req.Header.Set("Accept", r.accept)
	}
	if r.streamID != "" {
		req.Header.Set("Mesos-Stream-Id", r.streamID)
	}
	client := &http.Client{Timeout: 5 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode == http.StatusOK && resp.Header.Get("Mesos-Stream-Id") != "" {
		return resp, "" // a stream: the caller reads and closes it
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func jsonCall(t *testing.T, c *scheduler.Call) []byte {
	t.Helper()
	b, err := c.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func pbCall(t *testing.T, c *scheduler.Call) []byte {
	t.Helper()
	b, err := c.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func subscribeCall(id string) *scheduler.Call {
	info := &mesos.FrameworkInfo{User: "root", Name: "raw"}
	ft := 60.0
	info.FailoverTimeout = &ft
	c := &scheduler.Call{Type: scheduler.Call_SUBSCRIBE, Subscribe: &scheduler.Call_Subscribe{FrameworkInfo: info}}
	if id != "" {
		info.ID = &mesos.FrameworkID{Value: id}
		c.FrameworkID = &mesos.FrameworkID{Value: id}
	}
	return c
}

// rawStream is an open SUBSCRIBE response read record by record.
type rawStream struct {
	resp *http.Response
	r    *bufio.Reader
	json bool
}

func (s *rawStream) next(t *testing.T) *scheduler.Event {
	t.Helper()
	line, err := s.r.ReadString('\n')
	if err != nil {
		t.Fatalf("read record length: %v", err)
	}
	n, err := strconv.Atoi(strings.TrimSuffix(line, "\n"))
	if err != nil || n <= 0 {
		t.Fatalf("record length %q is not a positive decimal", line)
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(s.r, buf); err != nil {
		t.Fatalf("read record: %v", err)
	}
	ev := &scheduler.Event{}
	if s.json {
		err = ev.UnmarshalJSON(buf)
	} else {
		err = ev.Unmarshal(buf)
	}
	if err != nil {
		t.Fatalf("decode record: %v", err)
	}
	return ev
}

func openStream(t *testing.T, base string, id string, json bool) (*rawStream, string) {
	t.Helper()
	req := rawReq{ct: mediaProtobuf, accept: mediaProtobuf, body: pbCall(t, subscribeCall(id))}
	if json {
		req = rawReq{ct: mediaJSON, accept: mediaJSON, body: jsonCall(t, subscribeCall(id))}
	}
	resp, body := doRaw(t, base, req)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("SUBSCRIBE: %d %s", resp.StatusCode, body)
	}
	t.Cleanup(func() { resp.Body.Close() })
	s := &rawStream{resp: resp, r: bufio.NewReader(resp.Body), json: json}
	ev := s.next(t)
	if ev.Type != scheduler.Event_SUBSCRIBED {
		t.Fatalf("first event %v", ev.Type)
	}
	return s, ev.Subscribed.FrameworkID.Value
}

func TestSubscribeResponseIsAChunkedRecordIOStream(t *testing.T) {
	c := newSim(t, 0, nil)
	for _, json := range []bool{true, false} {
		s, _ := openStream(t, c.URL(), "", json)
		h := s.resp.Header
		want := map[bool]string{true: mediaJSON, false: mediaProtobuf}[json]
		if h.Get("Content-Type") != want || len(h.Get("Mesos-Stream-Id")) != 36 ||
			h.Get("Content-Length") != "" || s.resp.ContentLength != -1 ||
			len(s.resp.TransferEncoding) != 1 || s.resp.TransferEncoding[0] != "chunked" {
			t.Fatalf("headers %v, transfer encoding %v, length %d", h, s.resp.TransferEncoding, s.resp.ContentLength)
		}
		if ev := s.next(t); ev.Type != scheduler.Event_HEARTBEAT {
			t.Fatalf("second event %v, want HEARTBEAT", ev.Type)
		}
	}
}

func TestAcceptNegotiation(t *testing.T) {
	c := newSim(t, 0, nil)
	body := jsonCall(t, subscribeCall(""))
	for _, tc := range []struct {
		accept string
		code   int
		ct     string
	}{
		{"", 200, mediaJSON},
		{"*/*", 200, mediaJSON},
		{"application/*;q=0.5", 200, mediaJSON},
		{"application/x-protobuf", 200, mediaProtobuf},
		{"application/json;q=0, application/x-protobuf", 200, mediaProtobuf},
		{"text/html", 406, ""},
	} {
		resp, msg := doRaw(t, c.URL(), rawReq{ct: mediaJSON, accept: tc.accept, body: body})
		if resp.StatusCode != tc.code || (tc.ct != "" && resp.Header.Get("Content-Type") != tc.ct) {
			t.Errorf("Accept %q: %d %q %s, want %d %q", tc.accept, resp.StatusCode, resp.Header.Get("Content-Type"), msg, tc.code, tc.ct)
		}
		resp.Body.Close()
	}
}

func TestBadRequests(t *testing.T) {
	c := newSim(t, 1, nil)
	s, fwID := openStream(t, c.URL(), "", false)
	sid := s.resp.Header.Get("Mesos-Stream-Id")
	fid := &mesos.FrameworkID{Value: fwID}
	revive := func(id *mesos.FrameworkID) []byte {
		return pbCall(t, &scheduler.Call{Type: scheduler.Call_REVIVE, FrameworkID: id})
	}
	ack := func(uuid []byte) []byte {
		return pbCall(t, &scheduler.Call{Type: scheduler.Call_ACKNOWLEDGE, FrameworkID: fid, Acknowledge: &scheduler.Call_Acknowledge{
			AgentID: mesos.AgentID{Value: "a"}, TaskID: mesos.TaskID{Value: "t"}, UUID: uuid}})
	}
	mismatch := subscribeCall("x")
	mismatch.FrameworkID = &mesos.FrameworkID{Value: "y"}
	for _, tc := range []struct {
		name string
		req  rawReq
		code int
		msg  string
	}{
		{"GET", rawReq{method: http.MethodGet}, 405, "Expecting a 'POST' request"},
		{"no content type", rawReq{body: revive(fid)}, 400, "Expecting 'Content-Type'"},
		{"text/plain", rawReq{ct: "text/plain", body: []byte("hi")}, 415, "Expecting 'Content-Type' of"},
		{"content type with parameters", rawReq{ct: "application/json; charset=utf-8", body: []byte("{}")}, 415, "Expecting 'Content-Type' of"},
		{"garbage protobuf", rawReq{ct: mediaProtobuf, body: []byte{0xff, 0xff, 0xff}}, 400, "Failed to parse body"},
		{"garbage json", rawReq{ct: mediaJSON, body: []byte("{not json")}, 400, "Failed to parse body"},
		{"json of the wrong shape", rawReq{ct: mediaJSON, body: []byte(`{"type":"NOT_A_CALL"}`)}, 400, "Failed to parse body"},
		{"no type", rawReq{ct: mediaJSON, body: []byte(`{}`)}, 400, "Expecting 'type' to be present"},
		{"unknown numeric type", rawReq{ct: mediaProtobuf, body: []byte{0x10, 0x63}}, 400, "not supported by mesos-sim"},
		{"subscribe without subscribe", rawReq{ct: mediaJSON, body: []byte(`{"type":"SUBSCRIBE"}`)}, 400, "Expecting 'subscribe'"},
		{"subscribe without name", rawReq{ct: mediaJSON, body: []byte(`{"type":"SUBSCRIBE","subscribe":{"framework_info":{"user":"u"}}}`)}, 400, "framework_info.name"},
		{"subscribe id mismatch", rawReq{ct: mediaProtobuf, body: pbCall(t, mismatch)}, 400, "differs"},
		{"subscribe with stream id", rawReq{ct: mediaProtobuf, streamID: sid, body: pbCall(t, subscribeCall(""))}, 400, "should not include the 'Mesos-Stream-Id'"},
		{"call without framework id", rawReq{ct: mediaProtobuf, streamID: sid, body: revive(nil)}, 400, "Expecting 'framework_id'"},
		{"unknown framework", rawReq{ct: mediaProtobuf, streamID: sid, body: revive(&mesos.FrameworkID{Value: "nope"})}, 400, "Framework cannot be found"},
		{"missing stream id", rawReq{ct: mediaProtobuf, body: revive(fid)}, 400, "Mesos-Stream-Id"},
		{"wrong stream id", rawReq{ct: mediaProtobuf, streamID: "0000", body: revive(fid)}, 400, "didn't match"},
		{"accept without sub-message", rawReq{ct: mediaJSON, streamID: sid, body: []byte(`{"type":"ACCEPT","framework_id":{"value":"` + fwID + `"}}`)}, 400, "Expecting 'accept'"},
		{"ack uuid too short", rawReq{ct: mediaProtobuf, streamID: sid, body: ack([]byte{1, 2})}, 400, "Not a valid UUID"},
		{"kill without task id", rawReq{ct: mediaJSON, streamID: sid, body: []byte(`{"type":"KILL","framework_id":{"value":"` + fwID + `"},"kill":{"task_id":{"value":""}}}`)}, 400, "kill.task_id"},
		{"good revive", rawReq{ct: mediaProtobuf, streamID: sid, body: revive(fid)}, 202, ""},
		{"good ack of unknown task", rawReq{ct: mediaProtobuf, streamID: sid, body: ack(bytes.Repeat([]byte{1}, 16))}, 202, ""},
		{"message is accepted and dropped", rawReq{ct: mediaJSON, streamID: sid, body: []byte(`{"type":"MESSAGE","framework_id":{"value":"` + fwID + `"},"message":{"agent_id":{"value":"a"},"executor_id":{"value":"e"},"data":"aGk="}}`)}, 202, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, msg := doRaw(t, c.URL(), tc.req)
			if resp.StatusCode != tc.code || !strings.Contains(msg, tc.msg) {
				t.Fatalf("got %d %q, want %d containing %q", resp.StatusCode, msg, tc.code, tc.msg)
			}
			if tc.code == 202 && msg != "" {
				t.Fatalf("202 with a body %q", msg)
			}
		})
	}
	if c.Snapshot().Stats.RejectedCalls < 15 {
		t.Fatalf("rejected calls not counted: %+v", c.Snapshot().Stats)
	}
}

func TestStaleStreamAndDisconnectedFramework(t *testing.T) {
	var mu sync.Mutex
	var calls []CallRecord
	c := newSim(t, 0, func(cfg *Config) {
		cfg.OnCall = func(r CallRecord) { mu.Lock(); calls = append(calls, r); mu.Unlock() }
	})
	old, fwID := openStream(t, c.URL(), "", true)
	oldID := old.resp.Header.Get("Mesos-Stream-Id")
	fid := &mesos.FrameworkID{Value: fwID}
	// A second subscriber takes over; the first stream gets ERROR and ends.
	cur, _ := openStream(t, c.URL(), fwID, false)
	for {
		ev := old.next(t)
		if ev.Type == scheduler.Event_ERROR {
			if ev.Error.Message != "Framework failed over" {
				t.Fatalf("error %q", ev.Error.Message)
			}
			break
		}
	}
	if _, err := old.r.ReadByte(); err != io.EOF {
		t.Fatalf("old stream still open after ERROR: %v", err)
	}
	revive := pbCall(t, &scheduler.Call{Type: scheduler.Call_REVIVE, FrameworkID: fid})
	resp, msg := doRaw(t, c.URL(), rawReq{ct: mediaProtobuf, streamID: oldID, body: revive})
	if resp.StatusCode != 400 || !strings.Contains(msg, "didn't match") {
		t.Fatalf("call with the superseded stream id: %d %q", resp.StatusCode, msg)
	}
	// The current subscriber drops its connection: the framework is
	// disconnected and its calls get 403 until it subscribes again.
	curID := cur.resp.Header.Get("Mesos-Stream-Id")
	cur.resp.Body.Close()
	eventually(t, func() bool {
		fw, _ := c.Snapshot().Framework(fwID)
		return !fw.Connected
	}, "framework disconnected")
	resp, msg = doRaw(t, c.URL(), rawReq{ct: mediaProtobuf, streamID: curID, body: revive})
	if resp.StatusCode != 403 || !strings.Contains(msg, "not subscribed") {
		t.Fatalf("call of a disconnected framework: %d %q", resp.StatusCode, msg)
	}
	fw, _ := c.Snapshot().Framework(fwID)
	if fw.Counters.StaleStreamCalls != 1 {
		t.Fatalf("stale stream calls = %d, want 1", fw.Counters.StaleStreamCalls)
	}
	// OnCall saw every call in order, refused ones with their status.
	mu.Lock()
	defer mu.Unlock()
	want := []CallRecord{
		{FrameworkID: fwID, Type: "SUBSCRIBE", StreamID: oldID, Status: 200},
		{FrameworkID: fwID, Type: "SUBSCRIBE", StreamID: curID, Status: 200},
		{FrameworkID: fwID, Type: "REVIVE", StreamID: oldID, Status: 400},
		{FrameworkID: fwID, Type: "REVIVE", StreamID: curID, Status: 403},
	}
	if len(calls) != len(want) {
		t.Fatalf("OnCall saw %+v, want %+v", calls, want)
	}
	for i, w := range want {
		got := calls[i]
		if got.At.IsZero() || (i > 0 && got.At.Before(calls[i-1].At)) {
			t.Errorf("call %d at %v", i, got.At)
		}
		got.At = time.Time{}
		if got != w {
			t.Errorf("call %d = %+v, want %+v", i, got, w)
		}
	}
}

func TestSubscribeErrorsArriveOnTheStream(t *testing.T) {
	c := newSim(t, 0, nil)
	for _, tc := range []struct {
		name string
		body string
		msg  string
	}{
		{"suppressed role not subscribed", `{"type":"SUBSCRIBE","subscribe":{"framework_info":{"user":"u","name":"n"},"suppressed_roles":["other"]}}`, "Suppressed role 'other'"},
		{"negative failover timeout", `{"type":"SUBSCRIBE","subscribe":{"framework_info":{"user":"u","name":"n","failover_timeout":-1}}}`, "Invalid failover_timeout"},
		{"roles without MULTI_ROLE", `{"type":"SUBSCRIBE","subscribe":{"framework_info":{"user":"u","name":"n","roles":["a"]}}}`, "MULTI_ROLE"},
		{"bad role", `{"type":"SUBSCRIBE","subscribe":{"framework_info":{"user":"u","name":"n","role":"a b"}}}`, "Invalid role"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, _ := doRaw(t, c.URL(), rawReq{ct: mediaJSON, body: []byte(tc.body)})
			defer resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("status %d, want 200 then an ERROR event", resp.StatusCode)
			}
			s := &rawStream{resp: resp, r: bufio.NewReader(resp.Body), json: true}
			ev := s.next(t)
			if ev.Type != scheduler.Event_ERROR || !strings.Contains(ev.Error.Message, tc.msg) {
				t.Fatalf("event %v, want ERROR containing %q", ev, tc.msg)
			}
			if _, err := s.r.ReadByte(); err != io.EOF {
				t.Fatalf("stream open after ERROR: %v", err)
			}
		})
	}
}

func TestRedirectAndNoLeader(t *testing.T) {
	c := newSim(t, 0, func(cfg *Config) { cfg.Masters = 2 })
	leader, follower := c.URLs()[0], c.URLs()[1]
	for _, path := range []string{"/api/v1/scheduler", "/master/api/v1/scheduler"} {
		resp, _ := doRaw(t, follower, rawReq{path: path, ct: mediaJSON, body: jsonCall(t, subscribeCall(""))})
		want := "//" + strings.TrimPrefix(leader, "http://") + path
		if resp.StatusCode != 307 || resp.Header.Get("Location") != want {
			t.Fatalf("follower %s: %d Location %q, want 307 %q", path, resp.StatusCode, resp.Header.Get("Location"), want)
		}
	}
	// Every call is redirected, not only SUBSCRIBE; even a malformed one.
	resp, _ := doRaw(t, follower, rawReq{method: http.MethodGet})
	if resp.StatusCode != 307 {
		t.Fatalf("GET on follower: %d", resp.StatusCode)
	}
	resp, _ = doRaw(t, follower, rawReq{path: "/master/redirect", method: http.MethodGet})
	if resp.StatusCode != 307 || resp.Header.Get("Location") != "//"+strings.TrimPrefix(leader, "http://") {
		t.Fatalf("/master/redirect: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	c.FailoverMaster(time.Hour)
	for _, base := range c.URLs() {
		resp, msg := doRaw(t, base, rawReq{ct: mediaJSON, body: jsonCall(t, subscribeCall(""))})
		if resp.StatusCode != 503 || !strings.Contains(msg, "No leader") {
			t.Fatalf("without a leader: %d %q", resp.StatusCode, msg)
		}
	}
}

func TestInjectedFailures(t *testing.T) {
	c := newSim(t, 0, nil)
	c.FailNextRequests(1)
	resp, msg := doRaw(t, c.URL(), rawReq{ct: mediaJSON, body: jsonCall(t, subscribeCall(""))})
	if resp.StatusCode != 503 || !strings.Contains(msg, "Simulated failure") {
		t.Fatalf("injected failure: %d %q", resp.StatusCode, msg)
	}
	openStream(t, c.URL(), "", true)
}

func TestStateEndpoint(t *testing.T) {
	c := newSim(t, 2, nil)
	m := newMGO(t, c.URL(), false)
	m.subscribe(frameworkInfo("state"))
	o := m.offer(wait)
	runTask(t, m, o, "t1")
	resp, body := doRaw(t, c.URL(), rawReq{method: http.MethodGet, path: "/master/state"})
	if resp.StatusCode != 200 {
		t.Fatalf("state: %d", resp.StatusCode)
	}
	for _, want := range []string{`"id":"t1"`, `"state":"TASK_RUNNING"`, `"slave_id":"` + o.AgentID.Value + `"`,
		`"activated_slaves":2`, `"ports":"[31000-32000]"`, `"name":"state"`} {
		if !strings.Contains(body, want) {
			t.Errorf("state lacks %s: %s", want, body)
		}
	}
}

func TestControlAPI(t *testing.T) {
	c := newSim(t, 0, nil)
	post := func(path, body string) (int, string) {
		resp, err := http.Post(c.URL()+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	code, body := post("/sim/agents", `{"hostname":"h1","cpus":2,"mem":1024,"ports":"1000-1010,2000-2001","attributes":{"rack":"r1"}}`)
	if code != 201 || !strings.Contains(body, `"id"`) {
		t.Fatalf("add agent: %d %s", code, body)
	}
	id := c.AgentIDs()[0]
	for _, tc := range []struct {
		path, body string
		code       int
		msg        string
	}{
		{"/sim/agents", `{"cpus":-1}`, 400, "negative"},
		{"/sim/agents", `{"ports":"10-1"}`, 400, "not a range"},
		{"/sim/agents", `{"gpus":1}`, 400, "unknown field"},
		{"/sim/agents", `{"cpus":1} {}`, 400, "trailing"},
		{"/sim/agents/nope/partition", ``, 404, "unknown agent"},
		{"/sim/agents/" + id + "/restore", ``, 409, "not unreachable"},
		{"/sim/agents/" + id + "/partition", ``, 200, "ok"},
		{"/sim/agents/" + id + "/restore", ``, 200, "ok"},
		{"/sim/faults", `{"fail_requests":-2}`, 400, "negative"},
		{"/sim/faults", `{"stall_streams":false,"fail_requests":0,"hold_launches":false}`, 200, "ok"},
		{"/sim/master/failover?gap=-1s", ``, 400, "gap"},
		{"/sim/frameworks/nope/disconnect", ``, 404, "not connected"},
		{"/sim/nothing", ``, 404, "no control endpoint"},
	} {
		code, body := post(tc.path, tc.body)
		if code != tc.code || !strings.Contains(body, tc.msg) {
			t.Errorf("POST %s %s: %d %s, want %d containing %q", tc.path, tc.body, code, body, tc.code, tc.msg)
		}
	}
	resp, err := http.Get(c.URL() + "/sim/state")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(b), `"resources":"cpus:2;disk:65536;mem:1024;ports:[1000-1010, 2000-2001]"`) {
		t.Fatalf("state: %s", b)
	}
	req, _ := http.NewRequest(http.MethodDelete, c.URL()+"/sim/agents/"+id, nil)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || len(c.AgentIDs()) != 0 {
		t.Fatalf("delete agent: %d, agents %v", resp.StatusCode, c.AgentIDs())
	}
	code, body = post("/sim/master/failover?gap=10ms", "")
	if code != 200 {
		t.Fatalf("failover: %d %s", code, body)
	}
	eventually(t, func() bool { return c.LeaderURL() != "" }, fmt.Sprintf("leader after gap (%s)", body))
}
