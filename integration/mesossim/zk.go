package mesossim

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/go-zookeeper/zk"
	"go.uber.org/zap"
)

// zkPublisher keeps the masters' MasterInfo in ZooKeeper the way Mesos'
// contender does: one ephemeral sequential `json.info_` child per master
// under the group path, the leader's with the lowest sequence number.
// It works in its own goroutine so that ZooKeeper I/O never happens under
// the cluster lock; the latest wanted layout wins.
type zkPublisher struct {
	conn *zk.Conn
	path string
	log  *zap.Logger

	mu     sync.Mutex
	want   [][]byte // node data in sequence order (leader first); nil: no leader
	wake   chan struct{}
	cancel context.CancelFunc
	done   chan struct{}
}

type zkNopLogger struct{}

func (zkNopLogger) Printf(string, ...any) {}

func newZKPublisher(ctx context.Context, servers []string, path string, log *zap.Logger) (*zkPublisher, error) {
	conn, events, err := zk.Connect(servers, 10*time.Second, zk.WithLogger(zkNopLogger{}))
	if err != nil {
		return nil, fmt.Errorf("connect %v: %w", servers, err)
	}
	if err := waitSession(ctx, events, 15*time.Second); err != nil {
		conn.Close()
		return nil, fmt.Errorf("connect %v: %w", servers, err)
	}
	if err := ensurePath(conn, path); err != nil {
		conn.Close()
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	p := &zkPublisher{conn: conn, path: path, log: log, wake: make(chan struct{}, 1), cancel: cancel, done: make(chan struct{})}
	go p.run(ctx, events)
	return p, nil
}

func waitSession(ctx context.Context, events <-chan zk.Event, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		select {
		case ev := <-events:
			if ev.State == zk.StateHasSession {
				return nil
			}
		case <-t.C:
			return errors.New("no session within " + d.String())
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func ensurePath(conn *zk.Conn, path string) error {
	cur := ""
	for _, part := range strings.Split(strings.Trim(path, "/"), "/") {
		cur += "/" + part
		if _, err := conn.Create(cur, nil, 0, zk.WorldACL(zk.PermAll)); err != nil && !errors.Is(err, zk.ErrNodeExists) {
			return fmt.Errorf("create %s: %w", cur, err)
		}
	}
	return nil
}

// publishLeaderLocked hands the publisher the current layout.
func (c *Cluster) publishLeaderLocked() {
	if c.zk == nil {
		return
	}
	var want [][]byte
	if c.leader >= 0 {
		for k := 0; k < len(c.masters); k++ {
			m := c.masters[(c.leader+k)%len(c.masters)]
			id := c.masterID
			if k > 0 {
				id = fmt.Sprintf("%s-standby-%d", c.masterID, m.index)
			}
			info := m.info(id, c.cfg.Version)
			b, err := info.MarshalJSON()
			if err != nil {
				c.log.Error("encode MasterInfo", zap.Error(err))
				return
			}
			want = append(want, b)
		}
	}
	c.zk.set(want)
}

func (p *zkPublisher) set(want [][]byte) {
	p.mu.Lock()
	p.want = want
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

func (p *zkPublisher) run(ctx context.Context, events <-chan zk.Event) {
	defer close(p.done)
	var mine []string // our znodes, in creation order
	retry := time.NewTimer(time.Hour)
	defer retry.Stop()
	dirty := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-p.wake:
			dirty = true
		case ev := <-events:
			if ev.State == zk.StateHasSession || ev.State == zk.StateExpired {
				dirty = true // ephemeral nodes may be gone with an old session
			}
		case <-retry.C:
		}
		if !dirty {
			continue
		}
		p.mu.Lock()
		want := p.want
		p.mu.Unlock()
		var err error
		mine, err = p.apply(mine, want)
		if err != nil {
			p.log.Warn("publish masters to zookeeper", zap.Error(err))
			retry.Reset(200 * time.Millisecond)
			continue
		}
		dirty = false
	}
}

// apply replaces our nodes with the wanted ones, leader first so that it
// gets the lowest sequence number.
func (p *zkPublisher) apply(mine []string, want [][]byte) ([]string, error) {
	for len(mine) > 0 {
		if err := p.conn.Delete(mine[0], -1); err != nil && !errors.Is(err, zk.ErrNoNode) {
			return mine, fmt.Errorf("delete %s: %w", mine[0], err)
		}
		mine = mine[1:]
	}
	for _, data := range want {
		name, err := p.conn.Create(p.path+"/json.info_", data, zk.FlagEphemeral|zk.FlagSequence, zk.WorldACL(zk.PermAll))
		if err != nil {
			return mine, fmt.Errorf("create %s/json.info_: %w", p.path, err)
		}
		mine = append(mine, name)
	}
	return mine, nil
}

func (p *zkPublisher) close() {
	p.cancel()
	<-p.done
	p.conn.Close()
}
