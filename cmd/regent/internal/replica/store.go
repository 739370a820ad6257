package replica

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"time"

	"github.com/go-zookeeper/zk"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/regent-sched/regent/cmd/regent/internal/config"
	"github.com/regent-sched/regent/core"
	"github.com/regent-sched/regent/ha"
	"github.com/regent-sched/regent/persist"
)

// backend is the coordination store a replica uses: one client shared by
// the elector and persist's store, and a cheap probe for readiness.
type backend struct {
	elector ha.Elector
	store   persist.Store
	// probe reports whether the store answered just now.
	probe func(ctx context.Context) error
	close func()
}

// openBackend connects to the store the configuration names. It does not
// wait for the store to answer: a replica starts, serves /healthz and
// reports not ready (saying why) until it can reach the store. The one
// exception is etcd with --etcd-username: the etcd client logs in when it
// is created, so a replica that cannot reach etcd within
// --etcd-dial-timeout at start, or whose password is wrong, exits with
// the error (and its supervisor restarts it).
func openBackend(cfg *config.Config, cand ha.Candidate, log *zap.Logger) (*backend, error) {
	if cfg.StoreKind() == "zookeeper" {
		return openZooKeeper(cfg, cand, log)
	}
	return openEtcd(cfg, cand, log)
}

func openEtcd(cfg *config.Config, cand ha.Candidate, log *zap.Logger) (*backend, error) {
	cc := clientv3.Config{
		Endpoints:            cfg.EtcdEndpoints,
		DialTimeout:          cfg.EtcdDialTimeout,
		DialKeepAliveTime:    5 * time.Second,
		DialKeepAliveTimeout: 5 * time.Second,
		Logger:               log.Named("etcd-client").WithOptions(zap.IncreaseLevel(zap.WarnLevel)),
	}
	if cfg.EtcdUsername != "" {
		pw, err := config.ReadSecret(cfg.EtcdPasswordFile)
		if err != nil {
			return nil, fmt.Errorf("--etcd-password-file: %w", err)
		}
		cc.Username, cc.Password = cfg.EtcdUsername, pw
	}
	if cfg.EtcdCAFile != "" || cfg.EtcdCertFile != "" {
		tc := &tls.Config{MinVersion: tls.VersionTLS12}
		if cfg.EtcdCAFile != "" {
			pool, err := config.ReadCAPool(cfg.EtcdCAFile)
			if err != nil {
				return nil, fmt.Errorf("--etcd-ca-file: %w", err)
			}
			tc.RootCAs = pool
		}
		if cfg.EtcdCertFile != "" {
			cert, err := tls.LoadX509KeyPair(cfg.EtcdCertFile, cfg.EtcdKeyFile)
			if err != nil {
				return nil, fmt.Errorf("--etcd-cert-file: %w", err)
			}
			tc.Certificates = []tls.Certificate{cert}
		}
		cc.TLS = tc
	}
	cli, err := clientv3.New(cc)
	if err != nil {
		return nil, fmt.Errorf("etcd client: %w", err)
	}
	el, err := ha.NewEtcd(cli, ha.EtcdOptions{
		Prefix: cfg.Prefix, Framework: cfg.Name, Candidate: cand, TTL: cfg.ElectionTTL, Logger: log.Named("election"),
	})
	if err != nil {
		cli.Close()
		return nil, err
	}
	st, err := persist.NewEtcd(cli, persist.EtcdOptions{Prefix: cfg.Prefix, Framework: cfg.Name, Logger: log.Named("store")})
	if err != nil {
		el.Close()
		cli.Close()
		return nil, err
	}
	probeKey := persist.LeaderDir(cfg.Prefix, cfg.Name)
	return &backend{
		elector: el,
		store:   st,
		probe: func(ctx context.Context) error {
			// A linearizable read: it needs a quorum, as the leader does.
			_, err := cli.Get(ctx, probeKey, clientv3.WithPrefix(), clientv3.WithCountOnly())
			return err
		},
		close: func() {
			el.Close()
			st.Close()
			cli.Close()
		},
	}, nil
}

func openZooKeeper(cfg *config.Config, cand ha.Candidate, log *zap.Logger) (*backend, error) {
	zlog := core.NewZKLogger(log.Named("zk-client"))
	limit := cfg.ZKSessionTimeout / time.Duration(len(cfg.ZKServers))
	conn, events, err := zk.Connect(cfg.ZKServers, cfg.ZKSessionTimeout,
		zk.WithLogger(zlog), zk.WithDialer(core.ZKHandshakeDialer(limit)))
	if err != nil {
		return nil, fmt.Errorf("zookeeper client: %w", err)
	}
	var acl []zk.ACL
	if cfg.ZKDigestFile != "" {
		user, pw, err := config.ReadDigest(cfg.ZKDigestFile)
		if err != nil {
			conn.Close()
			return nil, fmt.Errorf("--zk-digest-file: %w", err)
		}
		if err := conn.AddAuth("digest", []byte(user+":"+pw)); err != nil {
			conn.Close()
			return nil, fmt.Errorf("zookeeper digest auth: %w", err)
		}
		acl = zk.DigestACL(zk.PermAll, user, pw)
	}
	el, err := ha.NewZooKeeper(conn, events, ha.ZKOptions{
		Prefix: cfg.Prefix, Framework: cfg.Name, Candidate: cand, SessionTimeout: cfg.ZKSessionTimeout,
		ACL: acl, Logger: log.Named("election"),
	})
	if err != nil {
		conn.Close()
		return nil, err
	}
	st, err := persist.NewZooKeeper(conn, persist.ZKOptions{Prefix: cfg.Prefix, Framework: cfg.Name, ACL: acl, Logger: log.Named("store")})
	if err != nil {
		el.Close()
		conn.Close()
		return nil, err
	}
	root := cfg.Prefix + "/" + cfg.Name
	return &backend{
		elector: el,
		store:   st,
		probe: func(context.Context) error {
			if s := conn.State(); s != zk.StateHasSession {
				return fmt.Errorf("no ZooKeeper session (%v)", s)
			}
			// A read, which needs the ACL's permission: a wrong digest
			// password must not look healthy.
			_, _, err := conn.Get(root)
			if err != nil && !errors.Is(err, zk.ErrNoNode) {
				return fmt.Errorf("read %s: %w", root, err)
			}
			return nil
		},
		close: func() {
			el.Close()
			st.Close()
			conn.Close()
			zlog.Stop()
		},
	}, nil
}
