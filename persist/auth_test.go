package persist

import (
	"errors"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/regent-sched/regent/integration/testserver"
)

// TestEtcdTLSAndAuth runs the etcd store over mutual TLS, with etcd's
// user authentication on top: the store needs nothing but the client.
func TestEtcdTLSAndAuth(t *testing.T) {
	pki := testserver.NewPKI(t)
	e := testserver.StartEtcdTLS(t, pki, testserver.WithEtcdLogLevel("error"))
	endpoint := e.Endpoints()[0]
	newClient := func(user, password string) *clientv3.Client {
		cli, err := clientv3.New(clientv3.Config{
			Endpoints: []string{endpoint}, TLS: pki.ClientTLS(t, "client"), DialTimeout: 10 * time.Second,
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
	e.EnableAuth(t, testserver.EtcdUser{Name: "regent", Password: "regentpw", Prefix: testPrefix + "/"})
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
	part := hashedPart(recKey{kindEntry, "big"}, 1, 0)
	for _, rel := range []string{manifestName, shardsDir, shardName(0, 0), bucketDir(part), part} {
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
