package replica

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/regent-sched/regent/cmd/regent/internal/api"
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
	pki := newPKI(t)
	tlsFlags := func(id string) []string {
		cert, key := pki.issue(t, id, true)
		return []string{"--tls-cert-file", cert, "--tls-key-file", key, "--tls-client-ca-file", pki.caFile,
			"--peer-ca-file", pki.caFile}
	}
	l1, l2 := freeListener(t), freeListener(t)
	cfg1 := w.configFor(t, "r1", append(tlsFlags("r1"), "--advertise-url", "https://"+l1.Addr().String())...)
	cfg2 := w.configFor(t, "r2", append(tlsFlags("r2"), "--advertise-url", "https://"+l2.Addr().String())...)
	r1 := w.start(t, cfg1, Options{Listener: l1})
	eventually(t, 30*time.Second, "2 running tasks", allRunning(w.sim, 2))
	r2 := w.start(t, cfg2, Options{Listener: l2})
	eventually(t, 10*time.Second, "r2 sees r1 lead", func() bool { return r2.Runner().Status().Leader.ID == "r1" })

	anon := pki.client(t, nil)
	cert, key := pki.issue(t, "operator", false)
	pair, err := tls.LoadX509KeyPair(cert, key)
	if err != nil {
		t.Fatal(err)
	}
	operator := pki.client(t, &pair)
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

// pki is a throw-away CA for one test.
type pki struct {
	dir    string
	caFile string
	ca     *x509.Certificate
	caKey  *ecdsa.PrivateKey
	serial int64
}

func newPKI(t *testing.T) *pki {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "regent test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(der)
	p := &pki{dir: t.TempDir(), ca: ca, caKey: key, serial: 1}
	p.caFile = filepath.Join(p.dir, "ca.pem")
	writePEM(t, p.caFile, "CERTIFICATE", der)
	return p
}

// issue makes a certificate for name (a loopback server too when server).
func (p *pki) issue(t *testing.T, name string, server bool) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p.serial++
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(p.serial), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if server {
		tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageServerAuth)
		tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca, &key.PublicKey, p.caKey)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(p.dir, name+".pem"), filepath.Join(p.dir, name+"-key.pem")
	writePEM(t, certFile, "CERTIFICATE", der)
	writePEM(t, keyFile, "EC PRIVATE KEY", kb)
	return certFile, keyFile
}

func (p *pki) client(t *testing.T, cert *tls.Certificate) *http.Client {
	pool := x509.NewCertPool()
	pool.AddCert(p.ca)
	tc := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	if cert != nil {
		tc.Certificates = []tls.Certificate{*cert}
	}
	tr := &http.Transport{TLSClientConfig: tc}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}
