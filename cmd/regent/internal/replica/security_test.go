package replica

import (
	"crypto/tls"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/regent-sched/regent/cmd/regent/internal/api"
	"github.com/regent-sched/regent/integration/testserver"
)

const testToken = "s3cret-token-0123456789"

// TestBearerTokenGuardsWrites: with a token file, writes need a listed
// token (also through a standby, which passes it on); reads stay open; the
// token never shows in answers.
func TestBearerTokenGuardsWrites(t *testing.T) {
	w := newWorld(t, 2)
	tokens := filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(tokens, []byte("# operators\n"+testToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r1 := w.start(t, w.configFor(t, "r1", "--auth-token-file", tokens), Options{})
	eventually(t, 30*time.Second, "2 running tasks", allRunning(w.sim, 2))
	r2 := w.start(t, w.configFor(t, "r2", "--auth-token-file", tokens), Options{})
	eventually(t, 10*time.Second, "r2 sees r1 lead", func() bool { return r2.Runner().Status().Leader.ID == "r1" })
	agent := w.sim.AgentIDs()[0]

	for _, base := range []string{r1.base, r2.base} {
		if code, _, body := call(t, "POST", base+"/v1/leader/step-down", ""); code != 401 {
			t.Errorf("step-down without a token at %s = %d %s", base, code, body)
		}
		code, hdr, body := call(t, "POST", base+"/v1/blacklist/"+agent, "")
		if code != 401 || hdr.Get("WWW-Authenticate") == "" || !strings.Contains(body, "bearer token") {
			t.Errorf("no token at %s = %d %s", base, code, body)
		}
		code, _, body = call(t, "DELETE", base+"/v1/blacklist/"+agent, "", "Authorization", "Bearer wrong-token-0123456789")
		if code != 401 || !strings.Contains(body, "not valid") {
			t.Errorf("wrong token at %s = %d %s", base, code, body)
		}
		code, _, body = call(t, "DELETE", base+"/v1/blacklist/"+agent, "", "Authorization", "Basic abc")
		if code != 401 {
			t.Errorf("basic auth at %s = %d %s", base, code, body)
		}
		code, _, body = call(t, "GET", base+"/v1/info", "")
		if code != 200 || strings.Contains(body, testToken) {
			t.Errorf("read at %s = %d (token shown: %v)", base, code, strings.Contains(body, testToken))
		}
	}
	code, _, body := call(t, "POST", r2.base+"/v1/blacklist/"+agent, "", "Authorization", "Bearer "+testToken)
	if code != 200 {
		t.Fatalf("good token through the standby = %d %s", code, body)
	}
	code, _, body = call(t, "DELETE", r1.base+"/v1/blacklist/"+agent, "", "Authorization", "bearer "+testToken)
	if code != 200 {
		t.Fatalf("good token at the leader = %d %s", code, body)
	}
	for _, p := range []string{"/", "/metrics", "/v1/leader", "/v1/replicas"} {
		if _, _, body := call(t, "GET", r2.base+p, ""); strings.Contains(body, testToken) {
			t.Errorf("%s shows the token", p)
		}
	}
}

// TestMutualTLS: an HTTPS listener; a client certificate signed by the
// client CA authenticates writes; reads need none; a standby forwards a
// write with its own certificate.
func TestMutualTLS(t *testing.T) {
	w := newWorld(t, 2)
	pki := testserver.NewPKI(t)
	tlsFlags := func(id string) []string {
		cert, key := pki.IssueServer(t, id)
		return []string{"--tls-cert-file", cert, "--tls-key-file", key, "--tls-client-ca-file", pki.CAFile(),
			"--peer-ca-file", pki.CAFile()}
	}
	l1, l2 := freeListener(t), freeListener(t)
	cfg1 := w.configFor(t, "r1", append(tlsFlags("r1"), "--advertise-url", "https://"+l1.Addr().String())...)
	cfg2 := w.configFor(t, "r2", append(tlsFlags("r2"), "--advertise-url", "https://"+l2.Addr().String())...)
	r1 := w.start(t, cfg1, Options{Listener: l1})
	eventually(t, 30*time.Second, "2 running tasks", allRunning(w.sim, 2))
	r2 := w.start(t, cfg2, Options{Listener: l2})
	eventually(t, 10*time.Second, "r2 sees r1 lead", func() bool { return r2.Runner().Status().Leader.ID == "r1" })

	anon := httpsClient(t, &tls.Config{RootCAs: pki.CertPool(), MinVersion: tls.VersionTLS12})
	operator := httpsClient(t, pki.ClientTLS(t, "operator"))
	agent := w.sim.AgentIDs()[0]

	do := func(c *http.Client, method, url string) (int, string) {
		req, _ := http.NewRequest(method, url, nil)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, url, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := do(anon, "GET", r2.base+"/v1/info"); code != 200 || decodeInfo(t, body).Tasks != 2 {
		t.Errorf("anonymous read through the standby = %d %s", code, body)
	}
	if code, body := do(anon, "POST", r1.base+"/v1/blacklist/"+agent); code != 401 {
		t.Errorf("anonymous write = %d %s", code, body)
	}
	if code, body := do(operator, "POST", r2.base+"/v1/blacklist/"+agent); code != 200 {
		t.Errorf("write with a client certificate through the standby = %d %s", code, body)
	}
	if code, body := do(operator, "DELETE", r1.base+"/v1/blacklist/"+agent); code != 200 {
		t.Errorf("write with a client certificate at the leader = %d %s", code, body)
	}
	// Plain HTTP to a TLS listener is refused.
	if resp, err := http.Get("http://" + l1.Addr().String() + "/healthz"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Error("plain HTTP answered 200 on the TLS listener")
		}
	}
}

func decodeInfo(t *testing.T, body string) api.Info { return decode[api.Info](t, body) }

// httpsClient is an HTTP client with TLS settings tc.
func httpsClient(t *testing.T, tc *tls.Config) *http.Client {
	tr := &http.Transport{TLSClientConfig: tc}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}
