package main

import (
	"crypto/tls"
	"strings"
	"testing"
	"time"

	"github.com/regent-sched/regent/integration/simtest"
	"github.com/regent-sched/regent/integration/testserver"
)

// TestDrillAndStatusWithCredentials: against a cluster that serves HTTPS
// and requires credentials for writes (bearer tokens and client
// certificates), `regent drill step-down` hands the leadership over with a
// token (--token-file) or a client certificate (--cert-file, --key-file),
// and without either, or with a wrong token, fails before moving anything,
// saying which flags give credentials. `regent status` takes the same TLS
// flags.
func TestDrillAndStatusWithCredentials(t *testing.T) {
	pki := testserver.NewPKI(t)
	e := testserver.StartEtcd(t)
	sim := simtest.Start(t, 2, nil)
	const token = "drill-token-0123456789abcdef"
	tokens := writeFile(t, "tokens", "# operators\n"+token+"\n")
	start := func(id string) *replicaProc {
		cert, key := pki.IssueServer(t, id)
		return startRun(t, id, true, "--master", sim.URL(), "--etcd-endpoints", e.Endpoints()[0], "--election-ttl", "2s",
			"--tls-cert-file", cert, "--tls-key-file", key, "--tls-client-ca-file", pki.CAFile(), "--peer-ca-file", pki.CAFile(),
			"--auth-token-file", tokens)
	}
	r1 := start("r1")
	hc := testClient(t, &tls.Config{RootCAs: pki.CertPool(), MinVersion: tls.VersionTLS12})
	waitLeading(t, hc, r1, 2)
	r2 := start("r2")
	waitLeading(t, hc, r1, 2, r2)

	leader := func() string {
		t.Helper()
		l, err := leaderOf(hc, r2.base)
		if err != nil {
			t.Fatalf("ask %s who leads: %v", r2.id, err)
		}
		return l.Leader.ID
	}
	drill := []string{"drill", "step-down", "--addr", r2.base, "--ca-file", pki.CAFile(), "--runs", "1", "--timeout", "30s"}

	// Without credentials, or with a wrong token: refused, nothing moves.
	wrong := writeFile(t, "wrong-tokens", "not-the-token-0123456789\n")
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{nil, []string{"401 Unauthorized", "this endpoint needs a bearer token or a client certificate",
			"the cluster requires credentials for writes: give --token-file", "or --cert-file and --key-file"}},
		{[]string{"--token-file", wrong}, []string{"401 Unauthorized", "the bearer token is not valid",
			"the cluster refused the credentials given"}},
	} {
		before := leader()
		out, code := runRegent(t, 90*time.Second, append(drill, tc.args...)...)
		if code != exitError {
			t.Errorf("drill %v: exit status %d, want %d:\n%s", tc.args, code, exitError, out)
		}
		for _, w := range tc.want {
			if !strings.Contains(out, w) {
				t.Errorf("drill %v: output lacks %q:\n%s", tc.args, w, out)
			}
		}
		if strings.Contains(out, "no violation") || strings.Contains(out, token) {
			t.Errorf("drill %v: output claims success or shows the token:\n%s", tc.args, out)
		}
		if after := leader(); after != before {
			t.Errorf("drill %v without valid credentials moved the leadership from %s to %s", tc.args, before, after)
		}
	}

	// With a token, then with a client certificate: each hands over.
	cert, key := pki.IssueClient(t, "operator")
	for _, creds := range [][]string{{"--token-file", tokens}, {"--cert-file", cert, "--key-file", key}} {
		before := leader()
		out, code := runRegent(t, 90*time.Second, append(drill, append(creds, "-o", "json")...)...)
		if code != 0 {
			t.Fatalf("drill with %v: exit status %d:\n%s", creds, code, out)
		}
		rep := decodeJSON[drillReport](t, out)
		if len(rep.Runs) != 1 || len(rep.Violations) != 0 || rep.Runs[0].From != before || rep.Runs[0].To == before {
			t.Errorf("drill with %v: %+v, want one hand-over from %s", creds, rep, before)
		}
		waitFor(t, 30*time.Second, "the replicas agree on the new leader", func() bool {
			l1, err1 := leaderOf(hc, r1.base)
			l2, err2 := leaderOf(hc, r2.base)
			return err1 == nil && err2 == nil && l1.Leader.ID != "" && l1.Leader.ID != before && l1.Leader.ID == l2.Leader.ID
		})
	}

	// The same TLS flags for `regent status`; a certificate needs its key
	// and HTTPS, and the drill says so before any request.
	out, code := runRegent(t, 30*time.Second, "status", "--addr", r1.base, "--ca-file", pki.CAFile(), "--cert-file", cert, "--key-file", key)
	if code != 0 || !strings.Contains(out, "LEADER") || !strings.Contains(out, "REPLICA") {
		t.Errorf("status with a client certificate: exit status %d:\n%s", code, out)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"drill", "step-down", "--addr", r1.base, "--cert-file", cert}, "--cert-file and --key-file go together"},
		{[]string{"drill", "step-down", "--addr", "http://127.0.0.1:1", "--cert-file", cert, "--key-file", key}, "a client certificate needs an https:// --addr"},
		{[]string{"status", "--addr", r1.base, "--key-file", key}, "--cert-file and --key-file go together"},
		{[]string{"drill", "step-down", "--addr", r1.base, "--cert-file", key, "--key-file", cert}, "--cert-file/--key-file: "},
	} {
		out, code := runRegent(t, 30*time.Second, tc.args...)
		if code != exitError || !strings.Contains(out, tc.want) {
			t.Errorf("regent %v: exit status %d, want %d and %q:\n%s", tc.args, code, exitError, tc.want, out)
		}
	}
}
