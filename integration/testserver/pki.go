package testserver

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/regent-sched/regent/integration/tb"
)

// pkiValidity is how long certificates from a [PKI] stay valid; they are
// backdated by an hour against clock skew.
const pkiValidity = 24 * time.Hour

// PKI is a throw-away certificate authority for one test. It issues server
// and client certificates (ECDSA P-256) as PEM files under t.TempDir(),
// for servers and clients that take file names, and builds the matching
// *tls.Config for Go clients in the test.
type PKI struct {
	dir    string
	caFile string
	ca     *x509.Certificate
	caKey  *ecdsa.PrivateKey
	serial atomic.Int64
}

// NewPKI creates a certificate authority whose certificate is written to
// [PKI.CAFile].
func NewPKI(t tb.TB) *PKI {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("testserver: PKI: CA key: %v", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "regent test CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(pkiValidity),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatalf("testserver: PKI: CA certificate: %v", err)
	}
	ca, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("testserver: PKI: parse CA certificate: %v", err)
	}
	p := &PKI{dir: t.TempDir(), ca: ca, caKey: key}
	p.serial.Store(1)
	p.caFile = filepath.Join(p.dir, "ca.pem")
	writePEM(t, p.caFile, "CERTIFICATE", der)
	return p
}

// CAFile returns the PEM file of the CA certificate, for servers' and
// clients' trusted-CA settings.
func (p *PKI) CAFile() string { return p.caFile }

// CertPool returns a new pool holding the CA certificate.
func (p *PKI) CertPool() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(p.ca)
	return pool
}

// IssueServer issues a certificate named name for a loopback server: its
// subject alternative names are 127.0.0.1, ::1 and localhost. It may also
// authenticate as a client, as a server that calls its peers with its own
// certificate does. It returns the PEM certificate and key files.
func (p *PKI) IssueServer(t tb.TB, name string) (certFile, keyFile string) {
	t.Helper()
	return p.issue(t, name, &x509.Certificate{
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		DNSNames:    []string{"localhost"},
	})
}

// IssueClient issues a client certificate whose common name is name and
// returns the PEM certificate and key files. An etcd server with client
// certificate authentication takes the common name as the user of
// requests that carry no auth token.
func (p *PKI) IssueClient(t tb.TB, name string) (certFile, keyFile string) {
	t.Helper()
	return p.issue(t, name, &x509.Certificate{
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
}

// ClientTLS issues a client certificate named name (see [PKI.IssueClient])
// and returns a client configuration that presents it and trusts only the
// CA.
func (p *PKI) ClientTLS(t tb.TB, name string) *tls.Config {
	t.Helper()
	certFile, keyFile := p.IssueClient(t, name)
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatalf("testserver: PKI: load client certificate %s: %v", name, err)
	}
	return &tls.Config{RootCAs: p.CertPool(), Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
}

// issue signs tmpl's usages and names for name with a fresh key and writes
// both as PEM files named after the serial number and name.
func (p *PKI) issue(t tb.TB, name string, tmpl *x509.Certificate) (certFile, keyFile string) {
	t.Helper()
	if name == "" || strings.ContainsAny(name, `/\`) {
		t.Fatalf("testserver: PKI: certificate name %q: want a non-empty name without path separators", name)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("testserver: PKI: key for %s: %v", name, err)
	}
	serial := p.serial.Add(1)
	now := time.Now()
	tmpl.SerialNumber = big.NewInt(serial)
	tmpl.Subject = pkix.Name{CommonName: name}
	tmpl.NotBefore, tmpl.NotAfter = now.Add(-time.Hour), now.Add(pkiValidity)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca, &key.PublicKey, p.caKey)
	if err != nil {
		t.Fatalf("testserver: PKI: certificate for %s: %v", name, err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatalf("testserver: PKI: marshal key for %s: %v", name, err)
	}
	base := filepath.Join(p.dir, fmt.Sprintf("%03d-%s", serial, name))
	certFile, keyFile = base+".pem", base+"-key.pem"
	writePEM(t, certFile, "CERTIFICATE", der)
	writePEM(t, keyFile, "EC PRIVATE KEY", keyDER)
	return certFile, keyFile
}

func writePEM(t tb.TB, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatalf("testserver: PKI: %v", err)
	}
}
