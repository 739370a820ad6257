package replica

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap/zaptest"

	"github.com/regent-sched/regent/integration/simtest"
	"github.com/regent-sched/regent/integration/testserver"
	"github.com/regent-sched/regent/persist"
)

// TestStoreEtcdTLSAndAuth: a replica configured only through its flags
// reaches an etcd that requires client certificates and user auth, leads,
// runs its tasks and keeps every key under --store-prefix. A replica with
// a wrong password fails to open with etcd's answer, and the leader is
// unaffected.
func TestStoreEtcdTLSAndAuth(t *testing.T) {
	const prefix, user, password = "/tenants/blue", "regent", "regent-pw"
	pki := testserver.NewPKI(t)
	e := testserver.StartEtcdTLS(t, pki, testserver.WithEtcdLogLevel("warn"))
	e.EnableAuth(t, testserver.EtcdUser{Name: user, Password: password, Prefix: prefix + "/"})
	w := newEtcdWorld(t, e, 2)
	// The certificate's common name is no etcd user: only the password
	// login gives the replica rights.
	cert, key := pki.IssueClient(t, "regent-replica")
	flags := func(passwordFile string) []string {
		return []string{"--store-prefix", prefix, "--etcd-ca-file", pki.CAFile(),
			"--etcd-cert-file", cert, "--etcd-key-file", key,
			"--etcd-username", user, "--etcd-password-file", passwordFile}
	}

	r1 := w.start(t, w.configFor(t, "r1", flags(secretFile(t, "etcd-password", password+"\n"))...), Options{})
	eventually(t, 30*time.Second, "2 running tasks", allRunning(w.sim, 2))
	eventually(t, 10*time.Second, "r1 leads and is ready", func() bool {
		st := r1.Runner().Status()
		return st.Ready && st.Leader.ID == "r1"
	})
	eventually(t, 10*time.Second, "r1 ready", func() bool {
		code, _, _ := call(t, "GET", r1.base+"/readyz", "")
		return code == 200
	})

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := e.Client(t).Get(ctx, "\x00", clientv3.WithFromKey(), clientv3.WithKeysOnly())
	if err != nil {
		t.Fatalf("list keys as root: %v", err)
	}
	fwDir, leaderDir := prefix+"/regent-test/", persist.LeaderDir(prefix, "regent-test")+"/"
	var election, stored int
	for _, kv := range resp.Kvs {
		k := string(kv.Key)
		switch {
		case strings.HasPrefix(k, leaderDir):
			election++
		case strings.HasPrefix(k, fwDir):
			stored++
		default:
			t.Errorf("key %q outside %s", k, fwDir)
		}
	}
	if election == 0 || stored == 0 {
		t.Errorf("%d election keys and %d store keys under %s, want some of each", election, stored, fwDir)
	}

	// A wrong password: Open fails at once with etcd's answer, which an
	// operator sees as the command's error; nothing is left running.
	const wrong = "not-the-password"
	cfg := w.configFor(t, "r2", flags(secretFile(t, "wrong-password", wrong+"\n"))...)
	start := time.Now()
	r2, err := Open(cfg, zaptest.NewLogger(t).Named("r2"), Options{SchedulerTuning: fastScheduler})
	if err == nil {
		r2.Close()
		t.Fatal("Open with a wrong etcd password succeeded")
	}
	t.Logf("Open with a wrong etcd password, after %v: %v", time.Since(start).Round(time.Millisecond), err)
	if !errors.Is(err, rpctypes.ErrAuthFailed) || !strings.Contains(err.Error(), "etcd") {
		t.Errorf("Open with a wrong etcd password: %v, want an etcd error wrapping %v", err, rpctypes.ErrAuthFailed)
	}
	if strings.Contains(err.Error(), wrong) || strings.Contains(err.Error(), password) {
		t.Errorf("the error shows a password: %v", err)
	}
	if st := r1.Runner().Status(); !st.Ready || st.Leader.ID != "r1" {
		t.Errorf("after r2's failed start r1's status is %+v, want ready leader r1", st)
	}
}

// TestStoreZooKeeperDigest: a replica on ZooKeeper with --zk-digest-file
// leads and runs its tasks, and every znode it made carries the digest
// ACL: an anonymous session can neither read nor add to them, a session
// authenticated as the user can read them all.
func TestStoreZooKeeperDigest(t *testing.T) {
	const user, password = "regent", "zk-s3cret"
	z := testserver.StartZooKeeper(t)
	w := &world{sim: simtest.Start(t, 2, nil), store: []string{"--zk-servers", z.Addr()}}
	digest := secretFile(t, "zk-digest", user+":"+password+"\n")
	r1 := w.start(t, w.configFor(t, "r1", "--zk-digest-file", digest), Options{})
	eventually(t, 30*time.Second, "2 running tasks", allRunning(w.sim, 2))
	eventually(t, 10*time.Second, "r1 leads and is ready", func() bool {
		st := r1.Runner().Status()
		return st.Ready && st.Leader.ID == "r1"
	})
	eventually(t, 10*time.Second, "r1 ready", func() bool {
		code, _, _ := call(t, "GET", r1.base+"/readyz", "")
		return code == 200
	})

	anon, authed := z.Conn(t), z.Conn(t)
	if err := authed.AddAuth("digest", []byte(user+":"+password)); err != nil {
		t.Fatalf("AddAuth: %v", err)
	}
	want := zk.DigestACL(zk.PermAll, user, password)[0]
	fwDir := persist.DefaultPrefix + "/regent-test"
	nodes := zkTree(t, authed, persist.DefaultPrefix)
	var election, stored int
	for _, p := range nodes {
		switch {
		case strings.HasPrefix(p, persist.LeaderDir(persist.DefaultPrefix, "regent-test")+"/"):
			election++
		case strings.HasPrefix(p, fwDir+"/"):
			stored++
		}
		acl, _, err := authed.GetACL(p)
		if errors.Is(err, zk.ErrNoNode) {
			continue // replaced by a commit since the walk
		}
		if err != nil || len(acl) != 1 || acl[0] != want {
			t.Errorf("ACL of %s: %+v, %v; want [%+v]", p, acl, err, want)
		}
		if _, _, err := anon.Get(p); !errors.Is(err, zk.ErrNoAuth) && !errors.Is(err, zk.ErrNoNode) {
			t.Errorf("anonymous read of %s: %v, want %v", p, err, zk.ErrNoAuth)
		}
		if _, _, err := authed.Get(p); err != nil && !errors.Is(err, zk.ErrNoNode) {
			t.Errorf("authenticated read of %s: %v", p, err)
		}
	}
	if election == 0 || stored == 0 {
		t.Errorf("%d election znodes and %d store znodes under %s, want some of each: %v", election, stored, fwDir, nodes)
	}
	if _, err := anon.Create(fwDir+"/intruder", nil, 0, zk.WorldACL(zk.PermAll)); !errors.Is(err, zk.ErrNoAuth) {
		t.Errorf("anonymous create under %s: %v, want %v", fwDir, err, zk.ErrNoAuth)
	}

	// A replica with the wrong password can never lead: it must not look
	// healthy, and /readyz must say why.
	wrong := secretFile(t, "zk-digest-wrong", user+":not-the-password\n")
	r2 := w.start(t, w.configFor(t, "r2", "--zk-digest-file", wrong), Options{})
	eventually(t, 15*time.Second, "r2 not ready, saying why", func() bool {
		code, _, body := call(t, "GET", r2.base+"/readyz", "")
		return code == 503 && strings.Contains(body, "not authenticated")
	})
	if r2.Runner().Status().Leading {
		t.Error("a replica with the wrong digest leads")
	}
}

// zkTree lists root and every znode below it, parents first.
func zkTree(t *testing.T, conn *zk.Conn, root string) []string {
	t.Helper()
	out := []string{root}
	for i := 0; i < len(out); i++ {
		children, _, err := conn.Children(out[i])
		if errors.Is(err, zk.ErrNoNode) {
			continue
		}
		if err != nil {
			t.Fatalf("children of %s: %v", out[i], err)
		}
		for _, c := range children {
			out = append(out, strings.TrimSuffix(out[i], "/")+"/"+c)
		}
	}
	return out
}

// secretFile writes content to a file readable only by its owner.
func secretFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
