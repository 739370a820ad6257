package main

import (
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/regent-sched/regent/integration/mesossim"
	"github.com/regent-sched/regent/integration/simtest"
	"github.com/regent-sched/regent/integration/testserver"
)

// TestSecretsNeverShow: replicas given every kind of secret — a bearer
// token file, an etcd password or a ZooKeeper digest, a Mesos master URL
// with a password (zk://user:password@...) — run, lead, take authenticated
// and refused writes, and stop, logging at debug level. No secret appears
// in anything they print (stdout and stderr, from start to exit) or serve:
// /v1/info, /, /metrics, /v1/replicas and the rest of the API.
func TestSecretsNeverShow(t *testing.T) {
	const (
		token      = "bearer-S3CRET-token-0123456789"
		zkPassword = "zk-digest-S3CRET-pw"
		etcdPass   = "etcd-S3CRET-password"
		masterPass = "mesos-zk-S3CRET-pw"
	)
	secrets := []string{token, zkPassword, etcdPass, masterPass}

	z := testserver.StartZooKeeper(t)
	sim := simtest.Start(t, 2, func(c *mesossim.Config) { c.ZooKeeper = []string{z.Addr()} })
	e := testserver.StartEtcd(t)
	e.EnableAuth(t, testserver.EtcdUser{Name: "regent", Password: etcdPass, Prefix: "/regent/"})

	tokens := writeFile(t, "tokens", token+"\n")
	common := []string{"--master", "zk://mesos-user:" + masterPass + "@" + z.Addr() + "/mesos",
		"--auth-token-file", tokens, "--log-level", "debug", "--log-format", "json"}
	onZK := startRun(t, "on-zk", false, append([]string{"--name", "secrets-zk", "--zk-servers", z.Addr(),
		"--zk-session-timeout", "4s", "--zk-digest-file", writeFile(t, "digest", "regent:"+zkPassword+"\n")}, common...)...)
	onEtcd := startRun(t, "on-etcd", false, append([]string{"--name", "secrets-etcd", "--etcd-endpoints", e.Endpoints()[0],
		"--etcd-username", "regent", "--etcd-password-file", writeFile(t, "etcd-password", etcdPass+"\n")}, common...)...)

	hc := testClient(t, nil)
	agent := sim.AgentIDs()[0]
	for _, r := range []*replicaProc{onZK, onEtcd} {
		waitLeading(t, hc, r, 2)
		// Writes: refused without a token or with a wrong one, done with
		// the right one.
		for _, tc := range []struct {
			method, auth string
			want         int
		}{
			{"POST", "", 401},
			{"POST", "Bearer not-the-token-0123456789", 401},
			{"POST", "Bearer " + token, 200},
			{"DELETE", "Bearer " + token, 200},
		} {
			req, _ := http.NewRequest(tc.method, r.base+"/v1/blacklist/"+agent, nil)
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Errorf("%s: %s /v1/blacklist with %q = %d, want %d", r.id, tc.method, tc.auth, resp.StatusCode, tc.want)
			}
		}
		for _, path := range []string{"/v1/info", "/", "/metrics", "/v1/replicas", "/v1/leader", "/v1/tasks",
			"/v1/agents", "/v1/blacklist", "/readyz", "/healthz", "/v1/nothing-here"} {
			code, body := get(hc, r.base+path)
			if code == 0 || (code != 200 && path != "/v1/nothing-here") {
				t.Errorf("%s: GET %s = %d %s", r.id, path, code, body)
			}
			for _, s := range secrets {
				if strings.Contains(body, s) {
					t.Errorf("%s: GET %s shows the secret %q", r.id, path, s)
				}
			}
		}
		// The master is shown, its password masked.
		if _, body := get(hc, r.base+"/v1/info"); !strings.Contains(body, "zk://mesos-user:***@") {
			t.Errorf("%s: /v1/info does not show the master spec, redacted: %s", r.id, body)
		}
	}

	for _, r := range []*replicaProc{onZK, onEtcd} {
		r.signal(t, syscall.SIGTERM)
		if err := r.wait(t, 60*time.Second); err != nil {
			t.Errorf("%s exited with %v", r.id, err)
		}
		out := r.output()
		// Something worth checking was logged: the start, with the master
		// redacted, the election, the writes.
		for _, w := range []string{`"replica started"`, "zk://mesos-user:***@", `"blacklist changed"`, `"replica stopped"`, `"level":"debug"`} {
			if !strings.Contains(out, w) {
				t.Errorf("%s: its log lacks %s", r.id, w)
			}
		}
		for _, s := range secrets {
			if strings.Contains(out, s) {
				i := strings.Index(out, s)
				t.Errorf("%s: its output shows the secret %q: ...%s...", r.id, s, out[max(0, i-200):min(len(out), i+len(s)+50)])
			}
		}
	}
}
