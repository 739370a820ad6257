package testserver

import (
	"context"
	"crypto/rand"
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/regent-sched/regent/integration/tb"
)

// etcdRootUser is etcd's superuser, which must exist before auth is enabled.
const etcdRootUser = "root"

// StartEtcdTLS starts a single-member etcd server like [StartEtcd] that
// serves clients only over https, with a server certificate from p for
// 127.0.0.1 and localhost, and requires every client to present a
// certificate signed by p (etcd's --client-cert-auth). [Etcd.Endpoints]
// returns https URLs; point clients at [PKI.CAFile] and a certificate from
// [PKI.IssueClient], or use [PKI.ClientTLS]. The peer URL stays plain
// http: there is only one member.
func StartEtcdTLS(t tb.TB, p *PKI, opts ...EtcdOption) *Etcd {
	t.Helper()
	cfg := newEtcdConfig(opts)
	cfg.pki = p
	return startEtcd(t, cfg)
}

// EtcdUser is an etcd user for [Etcd.EnableAuth]. Its role, of the same
// name, may read and write every key that starts with Prefix, and nothing
// else.
type EtcdUser struct {
	Name     string
	Password string
	Prefix   string
}

// EnableAuth turns on etcd's user authentication: it adds the root user
// (with the root role and a random password the harness keeps), then a
// user and a role for each of users, then enables auth. Called again, it
// only adds users. Clients from [Etcd.Client] made afterwards log in as
// root; clients made before carry no credentials and are refused from
// then on (on a TLS server, their certificate's common name is taken as
// their user).
func (e *Etcd) EnableAuth(t tb.TB, users ...EtcdUser) {
	t.Helper()
	first := e.rootPass == ""
	cli := e.Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var steps []func() error
	rootPass := e.rootPass
	if first {
		rootPass = rand.Text()
		steps = append(steps,
			func() error { _, err := cli.UserAdd(ctx, etcdRootUser, rootPass); return err },
			func() error { _, err := cli.UserGrantRole(ctx, etcdRootUser, etcdRootUser); return err },
		)
	}
	for _, u := range users {
		steps = append(steps, func() error { return addEtcdUser(ctx, cli, u) })
	}
	if first {
		steps = append(steps, func() error { _, err := cli.AuthEnable(ctx); return err })
	}
	for _, step := range steps {
		if err := step(); err != nil {
			t.Fatalf("testserver: enable etcd auth: %v", err)
		}
	}
	e.rootPass = rootPass
}

// addEtcdUser adds u and its role, granted readwrite on u.Prefix.
func addEtcdUser(ctx context.Context, cli *clientv3.Client, u EtcdUser) error {
	if u.Name == "" || u.Name == etcdRootUser || u.Password == "" || u.Prefix == "" {
		return fmt.Errorf("user %q: want a name other than root, a password and a prefix", u.Name)
	}
	if _, err := cli.RoleAdd(ctx, u.Name); err != nil {
		return fmt.Errorf("add role %s: %w", u.Name, err)
	}
	perm := clientv3.PermissionType(clientv3.PermReadWrite)
	if _, err := cli.RoleGrantPermission(ctx, u.Name, u.Prefix, clientv3.GetPrefixRangeEnd(u.Prefix), perm); err != nil {
		return fmt.Errorf("grant role %s readwrite on %s: %w", u.Name, u.Prefix, err)
	}
	if _, err := cli.UserAdd(ctx, u.Name, u.Password); err != nil {
		return fmt.Errorf("add user %s: %w", u.Name, err)
	}
	if _, err := cli.UserGrantRole(ctx, u.Name, u.Name); err != nil {
		return fmt.Errorf("grant user %s role %s: %w", u.Name, u.Name, err)
	}
	return nil
}
