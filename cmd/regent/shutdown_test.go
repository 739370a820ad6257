package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/regent-sched/regent/cmd/regent/internal/api"
	"github.com/regent-sched/regent/integration/simtest"
	"github.com/regent-sched/regent/integration/testserver"
	"github.com/regent-sched/regent/persist"
)

// TestGracefulStopHandsOverBeforeTheTTL: SIGTERM to a leading `regent run`
// with a 30 s election TTL while a request is in flight. The leader fails
// readiness at once (/readyz 503, answered: the listener stays open while
// that request runs), resigns, and the standby leads before the old
// leader's lease could have expired, which only the resignation explains;
// the request then completes, forwarded to the new leader, and the old
// leader exits with status 0.
func TestGracefulStopHandsOverBeforeTheTTL(t *testing.T) {
	const ttl = 30 * time.Second
	e := testserver.StartEtcd(t)
	sim := simtest.Start(t, 2, nil)
	flags := []string{"--master", sim.URL(), "--etcd-endpoints", e.Endpoints()[0], "--election-ttl", ttl.String(), "--log-level", "debug"}
	r1 := startRun(t, "r1", false, flags...)
	hc := testClient(t, nil)
	waitLeading(t, hc, r1, 2)
	r2 := startRun(t, "r2", false, flags...)
	waitLeading(t, hc, r1, 2, r2)

	// A write in flight: its headers are in, and the handler is reading a
	// body that has not arrived (the server's 100 Continue says the
	// handler is running).
	agent := sim.AgentIDs()[0]
	conn, err := net.Dial("tcp", strings.TrimPrefix(r1.base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	body := `{"reason": "graceful stop test"}`
	fmt.Fprintf(conn, "POST /v1/blacklist/%s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"+
		"Expect: 100-continue\r\nConnection: close\r\n\r\n", agent, strings.TrimPrefix(r1.base, "http://"), len(body))
	br := bufio.NewReader(conn)
	conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusContinue {
		t.Fatalf("the in-flight request: %v %v, want 100 Continue", resp, err)
	}

	// When could r1's lease expire at the earliest? Its key leads the
	// election; etcd says how long the lease has left.
	expiry := leaseExpiry(t, e)

	r1.signal(t, syscall.SIGTERM)
	stopped := time.Now()
	var ready string
	waitFor(t, 20*time.Second, "r1's /readyz answering 503 while it stops", func() bool {
		code, b := get(hc, r1.base+"/readyz")
		ready = b
		return code == http.StatusServiceUnavailable
	})
	if !strings.Contains(ready, "shutting down") {
		t.Errorf("r1's /readyz while stopping: %q, want it to say it is shutting down", ready)
	}
	var took time.Duration
	waitFor(t, ttl, "r2 leading", func() bool {
		l, err := leaderOf(hc, r2.base)
		took = time.Since(stopped)
		return err == nil && l.Self.Ready && l.Leader.ID == "r2"
	})
	if now := time.Now(); !now.Before(expiry) {
		t.Fatalf("r2 led only %v after SIGTERM, when r1's lease could have expired (%v after): no sign of a resignation",
			took, expiry.Sub(stopped))
	}
	t.Logf("r2 led %v after SIGTERM; r1's lease could not expire before %v after", took.Round(time.Millisecond), expiry.Sub(stopped).Round(time.Millisecond))
	// r1 still answers (its request is in flight) and knows who leads now.
	waitFor(t, 10*time.Second, "the stopping r1 seeing r2 lead", func() bool {
		l, err := leaderOf(hc, r1.base)
		return err == nil && l.Leader.ID == "r2"
	})

	// The rest of the body: the request completes, applied by the new
	// leader.
	if _, err := conn.Write([]byte(body)); err != nil {
		t.Fatalf("finish the in-flight request: %v", err)
	}
	// (Informational answers may come first: the leader forwarded the
	// request with its Expect header, and the proxy passes on 1xx.)
	for resp.StatusCode == http.StatusContinue {
		if resp, err = http.ReadResponse(br, nil); err != nil {
			t.Fatalf("the in-flight request got no answer: %v", err)
		}
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get(api.HeaderServedBy) != "r2" {
		t.Errorf("the in-flight request: %s, served by %q; want 200 from r2", resp.Status, resp.Header.Get(api.HeaderServedBy))
	}
	if code, b := get(hc, r2.base+"/v1/blacklist"); code != 200 || !strings.Contains(b, agent) {
		t.Errorf("r2's blacklist = %d %s, want %s in it", code, b, agent)
	}

	if err := r1.wait(t, 30*time.Second); err != nil {
		t.Errorf("r1 exited with %v, want status 0", err)
	}
	out := r1.output()
	for _, w := range []string{"stopping: handing over leadership", "replica stopped"} {
		if !strings.Contains(out, w) {
			t.Errorf("r1's log lacks %q", w)
		}
	}
	// And the listener is closed now.
	if code, b := get(hc, r1.base+"/healthz"); code != 0 {
		t.Errorf("r1's /healthz after it exited: %d %s", code, b)
	}
}

// leaseExpiry is the earliest moment the lease of the election's leading
// key can expire: etcd lets a lease live at least its remaining TTL
// (whole seconds, hence a second less to be sure).
func leaseExpiry(t *testing.T, e *testserver.Etcd) time.Time {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cli := e.Client(t)
	asked := time.Now()
	resp, err := cli.Get(ctx, persist.LeaderDir("", "regent-test")+"/", append(clientv3.WithFirstCreate(), clientv3.WithPrefix())...)
	if err != nil || len(resp.Kvs) == 0 {
		t.Fatalf("the election's keys: %v %v", resp, err)
	}
	ttl, err := cli.TimeToLive(ctx, clientv3.LeaseID(resp.Kvs[0].Lease))
	if err != nil || ttl.TTL <= 1 {
		t.Fatalf("the leader's lease: %+v %v", ttl, err)
	}
	if ttl.GrantedTTL != 30 {
		t.Errorf("the leader's lease was granted %ds, want the 30s --election-ttl", ttl.GrantedTTL)
	}
	return asked.Add(time.Duration(ttl.TTL-1) * time.Second)
}
