package testserver_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/regent-sched/regent/integration/testserver"
)

func TestPKIIssues(t *testing.T) {
	p := testserver.NewPKI(t)
	roots := p.CertPool()
	certFile, _ := p.IssueServer(t, "server")
	server := readCert(t, certFile)
	for _, host := range []string{"127.0.0.1", "::1", "localhost"} {
		if err := server.VerifyHostname(host); err != nil {
			t.Errorf("server certificate for %s: %v", host, err)
		}
	}
	opts := x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	if _, err := server.Verify(opts); err != nil {
		t.Errorf("server certificate as a server: %v", err)
	}
	opts.KeyUsages = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	if _, err := server.Verify(opts); err != nil {
		t.Errorf("server certificate as a client: %v", err)
	}

	certFile, _ = p.IssueClient(t, "alice")
	client := readCert(t, certFile)
	if client.Subject.CommonName != "alice" {
		t.Errorf("client common name %q, want alice", client.Subject.CommonName)
	}
	if _, err := client.Verify(opts); err != nil {
		t.Errorf("client certificate as a client: %v", err)
	}
	opts.KeyUsages = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	if _, err := client.Verify(opts); err == nil {
		t.Error("client certificate verified as a server's")
	}
	if _, err := client.Verify(x509.VerifyOptions{Roots: testserver.NewPKI(t).CertPool()}); err == nil {
		t.Error("certificate verified against another CA")
	}
}

func TestEtcdTLS(t *testing.T) {
	p := testserver.NewPKI(t)
	e := testserver.StartEtcdTLS(t, p, testserver.WithEtcdLogLevel("warn"))
	ep := e.Endpoints()[0]
	if !strings.HasPrefix(ep, "https://127.0.0.1:") {
		t.Fatalf("endpoint %s, want https://127.0.0.1:port", ep)
	}
	putEventually(t, e.Client(t), "/testserver/tls", "1")

	// Without a client certificate, or with one from another CA, nothing
	// is answered.
	other := testserver.NewPKI(t).ClientTLS(t, "stranger")
	other.RootCAs = p.CertPool()
	for name, tc := range map[string]*tls.Config{
		"no certificate":           {RootCAs: p.CertPool(), MinVersion: tls.VersionTLS12},
		"another CA's certificate": other,
	} {
		cli := tlsClient(t, ep, tc, "", "")
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := cli.Get(ctx, "/testserver/tls")
		cancel()
		if err == nil {
			t.Errorf("%s: Get succeeded", name)
		}
	}
}

func TestEtcdEnableAuth(t *testing.T) {
	p := testserver.NewPKI(t)
	e := testserver.StartEtcdTLS(t, p, testserver.WithEtcdLogLevel("warn"))
	e.EnableAuth(t, testserver.EtcdUser{Name: "alice", Password: "alice-pw", Prefix: "/a/"})
	e.EnableAuth(t, testserver.EtcdUser{Name: "bob", Password: "bob-pw", Prefix: "/b/"})
	ep := e.Endpoints()[0]

	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	alice := tlsClient(t, ep, p.ClientTLS(t, "alice-cert"), "alice", "alice-pw")
	if _, err := alice.Put(ctx, "/a/key", "mine"); err != nil {
		t.Fatalf("alice writes under her prefix: %v", err)
	}
	if _, err := alice.Put(ctx, "/b/key", "bob's"); !errors.Is(err, rpctypes.ErrPermissionDenied) {
		t.Fatalf("alice writes under bob's prefix: %v, want permission denied", err)
	}
	bob := tlsClient(t, ep, p.ClientTLS(t, "bob-cert"), "bob", "bob-pw")
	if _, err := bob.Get(ctx, "/a/key"); !errors.Is(err, rpctypes.ErrPermissionDenied) {
		t.Fatalf("bob reads alice's prefix: %v, want permission denied", err)
	}
	root := e.Client(t)
	resp, err := root.Get(ctx, "/a/key")
	if err != nil || len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "mine" {
		t.Fatalf("root reads alice's key: %v, %v", resp, err)
	}

	_, err = clientv3.New(clientv3.Config{
		Endpoints: []string{ep}, TLS: p.ClientTLS(t, "alice-cert"), DialTimeout: opTimeout,
		Username: "alice", Password: "wrong", Logger: zap.NewNop(),
	})
	if !errors.Is(err, rpctypes.ErrAuthFailed) {
		t.Fatalf("wrong password: %v, want %v", err, rpctypes.ErrAuthFailed)
	}
}

func tlsClient(t *testing.T, ep string, tc *tls.Config, user, password string) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{
		Endpoints: []string{ep}, TLS: tc, DialTimeout: opTimeout,
		Username: user, Password: password, Logger: zap.NewNop(),
	})
	if err != nil {
		t.Fatalf("etcd client for %s: %v", ep, err)
	}
	t.Cleanup(func() { _ = cli.Close() })
	return cli
}

func readCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "CERTIFICATE" {
		t.Fatalf("%s holds no PEM certificate", path)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return cert
}
