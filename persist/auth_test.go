package persist

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
)

// testPKI is a CA with a server certificate for 127.0.0.1 and a client
// certificate, written as PEM files.
type testPKI struct {
	dir                   string
	caFile                string
	serverCert, serverKey string
	clientCert, clientKey string
	pool                  *x509.CertPool
}

func newTestPKI(t *testing.T) *testPKI {
	t.Helper()
	p := &testPKI{dir: t.TempDir()}
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "regent test CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		IsCA:                  true,
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	p.pool = x509.NewCertPool()
	p.pool.AddCert(ca)
	p.caFile = p.writePEM(t, "ca.pem", "CERTIFICATE", caDER)
	leaf := func(name string, serial int64, usage x509.ExtKeyUsage) (string, string) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial),
			Subject:      pkix.Name{CommonName: name},
			NotBefore:    now.Add(-time.Hour),
			NotAfter:     now.Add(24 * time.Hour),
			KeyUsage:     x509.KeyUsageDigitalSignature,
			ExtKeyUsage:  []x509.ExtKeyUsage{usage},
			IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		keyDER, err := x509.MarshalECPrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		return p.writePEM(t, name+".pem", "CERTIFICATE", der), p.writePEM(t, name+"-key.pem", "EC PRIVATE KEY", keyDER)
	}
	p.serverCert, p.serverKey = leaf("server", 2, x509.ExtKeyUsageServerAuth)
	p.clientCert, p.clientKey = leaf("client", 3, x509.ExtKeyUsageClientAuth)
	return p
}

func (p *testPKI) writePEM(t *testing.T, name, typ string, der []byte) string {
	t.Helper()
	path := filepath.Join(p.dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func (p *testPKI) clientTLS(t *testing.T) *tls.Config {
	t.Helper()
	cert, err := tls.LoadX509KeyPair(p.clientCert, p.clientKey)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{RootCAs: p.pool, Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
}

// startTLSEtcd starts an embedded etcd that serves clients only over TLS
// and requires client certificates (the harness has no TLS option).
func startTLSEtcd(t *testing.T, p *testPKI) string {
	t.Helper()
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		ports := make([]int, 2)
		for i := range ports {
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			ports[i] = l.Addr().(*net.TCPAddr).Port
			_ = l.Close()
		}
		cu, _ := url.Parse("https://127.0.0.1:" + strconv.Itoa(ports[0]))
		pu, _ := url.Parse("http://127.0.0.1:" + strconv.Itoa(ports[1]))
		cfg := embed.NewConfig()
		cfg.Name = "tls"
		cfg.Dir = filepath.Join(t.TempDir(), "etcd")
		cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{*cu}, []url.URL{*cu}
		cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{*pu}, []url.URL{*pu}
		cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
		cfg.ClientTLSInfo.CertFile = p.serverCert
		cfg.ClientTLSInfo.KeyFile = p.serverKey
		cfg.ClientTLSInfo.TrustedCAFile = p.caFile
		cfg.ClientTLSInfo.ClientCertAuth = true
		cfg.UnsafeNoFsync = true
		cfg.LogLevel = "error"
		cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
		srv, err := embed.StartEtcd(cfg)
		if err != nil {
			lastErr = err
			continue
		}
		select {
		case <-srv.Server.ReadyNotify():
			t.Cleanup(srv.Close)
			return cu.String()
		case err := <-srv.Err():
			srv.Close()
			lastErr = err
		case <-time.After(30 * time.Second):
			srv.Close()
			t.Fatal("TLS etcd did not start")
		}
	}
	t.Fatalf("start TLS etcd: %v", lastErr)
	return ""
}

// TestEtcdTLSAndAuth runs the etcd store over mutual TLS, with etcd's
// user authentication on top: the store needs nothing but the client.
func TestEtcdTLSAndAuth(t *testing.T) {
	pki := newTestPKI(t)
	endpoint := startTLSEtcd(t, pki)
	newClient := func(user, password string) *clientv3.Client {
		cli, err := clientv3.New(clientv3.Config{
			Endpoints: []string{endpoint}, TLS: pki.clientTLS(t), DialTimeout: 10 * time.Second,
			Username: user, Password: password, Logger: zap.NewNop(),
		})
		if err != nil {
			t.Fatalf("TLS client: %v", err)
		}
		t.Cleanup(func() { _ = cli.Close() })
		return cli
	}
	// Over TLS alone, the contract's basics.
	cli := newClient("", "")
	h := etcdHarness(cli, []string{endpoint})
	fw := uniqueFW("tls")
	s := h.newStore(t, testPrefix, fw)
	f := h.grant(t, testPrefix, fw)
	m := newModel()
	b := bigBatch("t", 200, 100)
	b.PutEntries = map[string][]byte{"big": value("big", 1<<20)}
	mustCommit(t, s, f, b)
	m.apply(b)
	checkModel(t, h.newStore(t, testPrefix, fw), m)

	// Enable authentication: a user whose role may only touch this prefix.
	ctx := testCtx(t)
	for _, step := range []func() error{
		func() error { _, err := cli.UserAdd(ctx, "root", "rootpw"); return err },
		func() error { _, err := cli.UserGrantRole(ctx, "root", "root"); return err },
		func() error { _, err := cli.RoleAdd(ctx, "regent"); return err },
		func() error {
			_, err := cli.RoleGrantPermission(ctx, "regent", testPrefix+"/", clientv3.GetPrefixRangeEnd(testPrefix+"/"), clientv3.PermissionType(clientv3.PermReadWrite))
			return err
		},
		func() error { _, err := cli.UserAdd(ctx, "regent", "regentpw"); return err },
		func() error { _, err := cli.UserGrantRole(ctx, "regent", "regent"); return err },
		func() error { _, err := cli.AuthEnable(ctx); return err },
	} {
		if err := step(); err != nil {
			t.Fatalf("set up etcd auth: %v", err)
		}
	}
	user := newClient("regent", "regentpw")
	uh := etcdHarness(user, []string{endpoint})
	us := uh.newStore(t, testPrefix, fw)
	checkModel(t, us, m)
	uf := uh.grant(t, testPrefix, fw)
	b = Batch{PutTasks: map[string][]byte{"authed": []byte("yes")}}
	mustCommit(t, us, uf, b)
	m.apply(b)
	checkModel(t, us, m)

	// The same user may not read another prefix.
	other, err := NewEtcd(user, EtcdOptions{Prefix: "/elsewhere", Framework: fw})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.Load(testCtx(t)); err == nil {
		t.Fatal("Load outside the user's permitted prefix succeeded")
	} else {
		t.Logf("Load outside the permitted prefix: %v", err)
	}
}

// testZKDigest runs the ZooKeeper store with a digest ACL: a session
// authenticated as the user reads and writes; one that is not can do
// neither, and changes nothing.
func testZKDigest(t *testing.T, authed, anonymous *zk.Conn) {
	const user, password = "regent", "s3cret"
	if err := authed.AddAuth("digest", []byte(user+":"+password)); err != nil {
		t.Fatalf("AddAuth: %v", err)
	}
	acl := zk.DigestACL(zk.PermAll, user, password)
	fw := uniqueFW("digest")
	s, err := NewZooKeeper(authed, ZKOptions{Prefix: testPrefix, Framework: fw, ACL: acl})
	if err != nil {
		t.Fatal(err)
	}
	f := zkGrant(t, authed, testPrefix, fw)
	m := newModel()
	b := bigBatch("t", 20, 100)
	b.PutEntries = map[string][]byte{"big": value("big", 300<<10)}
	b.FrameworkID = strp("digest-id")
	mustCommit(t, s, f, b)
	m.apply(b)
	checkModel(t, s, m)
	for _, rel := range []string{manifestName, tasksDir, layout{buckets: true}.record(recKey{kindTask, "t-00001"})} {
		got, _, err := authed.GetACL(testPrefix + "/" + fw + "/" + rel)
		if err != nil || len(got) != 1 || got[0].Scheme != "digest" || got[0].ID != acl[0].ID {
			t.Fatalf("ACL of %s: %+v, %v; want %+v", rel, got, err, acl)
		}
	}

	anon, err := NewZooKeeper(anonymous, ZKOptions{Prefix: testPrefix, Framework: fw, ACL: acl})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := anon.Load(testCtx(t)); !errors.Is(err, zk.ErrNoAuth) {
		t.Fatalf("Load without credentials: %v, want zk.ErrNoAuth", err)
	}
	if _, err := anon.Commit(testCtx(t), f, Batch{PutTasks: map[string][]byte{"x": nil}}); err == nil {
		t.Fatal("Commit without credentials succeeded")
	}
	checkModel(t, s, m)
}
