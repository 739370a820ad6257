package mesossim

import (
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/regent-sched/regent/integration/testserver"
)

// detectLeader reads the group under path the way a Mesos master detector
// does: json.info_ children only, lowest sequence wins, MasterInfo JSON.
func detectLeader(conn *zk.Conn, path string) (mesos.MasterInfo, int, error) {
	children, _, err := conn.Children(path)
	if err != nil {
		return mesos.MasterInfo{}, 0, err
	}
	var infos []string
	for _, ch := range children {
		if seq, ok := strings.CutPrefix(ch, "json.info_"); ok && len(seq) == 10 {
			if _, err := strconv.Atoi(seq); err == nil {
				infos = append(infos, ch)
			}
		}
	}
	if len(infos) == 0 {
		return mesos.MasterInfo{}, 0, fmt.Errorf("no json.info_ nodes under %s (children %v)", path, children)
	}
	sort.Strings(infos) // zero-padded: lexical order is numeric order
	data, _, err := conn.Get(path + "/" + infos[0])
	if err != nil {
		return mesos.MasterInfo{}, 0, err
	}
	var mi mesos.MasterInfo
	if err := mi.UnmarshalJSON(data); err != nil {
		return mesos.MasterInfo{}, 0, fmt.Errorf("decode %s: %w", infos[0], err)
	}
	return mi, len(infos), nil
}

func masterURL(mi mesos.MasterInfo) string {
	return "http://" + net.JoinHostPort(mi.GetAddress().GetIP(), strconv.Itoa(int(mi.GetAddress().GetPort())))
}

func TestZooKeeperPublication(t *testing.T) {
	z := testserver.StartZooKeeper(t)
	c := newSim(t, 1, func(cfg *Config) {
		cfg.Masters = 2
		cfg.ZooKeeper = z.Servers()
		cfg.ZKPath = "/regent-test/mesos"
	})
	conn := z.Conn(t)
	// An unrelated child (Mesos keeps log_replicas there) must not confuse detection.
	if _, err := conn.Create("/regent-test/mesos/log_replicas", nil, 0, zk.WorldACL(zk.PermAll)); err != nil {
		t.Fatal(err)
	}
	var mi mesos.MasterInfo
	eventually(t, func() bool {
		info, n, err := detectLeader(conn, "/regent-test/mesos")
		mi = info
		return err == nil && n == 2 && info.ID == c.MasterID()
	}, "both masters published, the leader lowest")
	if masterURL(mi) != c.LeaderURL() || mi.GetVersion() != "1.10.0" || mi.GetPort() != uint32(mi.GetAddress().GetPort()) {
		t.Fatalf("published %v, leader %s", mi, c.LeaderURL())
	}
	// A scheduler finds the leader through ZooKeeper and subscribes there.
	m := newMGO(t, masterURL(mi), false)
	info := frameworkInfo("zk-detected")
	info.ID = m.subscribe(info).FrameworkID

	old := c.MasterID()
	c.FailoverMaster(0)
	m.streamEnd(wait)
	eventually(t, func() bool {
		info, n, err := detectLeader(conn, "/regent-test/mesos")
		mi = info
		return err == nil && n == 2 && info.ID != old && info.ID == c.MasterID()
	}, "new leader published after failover")
	if masterURL(mi) != c.LeaderURL() || masterURL(mi) == c.URLs()[0] {
		t.Fatalf("after failover published %s, leader %s", masterURL(mi), c.LeaderURL())
	}
	m2 := newMGO(t, masterURL(mi), true)
	if got := m2.subscribe(info).FrameworkID.Value; got != info.ID.Value {
		t.Fatalf("re-subscribed as %s, want %s", got, info.ID.Value)
	}

	// No leader: no node; a leader again: published again.
	c.FailoverMaster(time.Hour)
	eventually(t, func() bool {
		_, _, err := detectLeader(conn, "/regent-test/mesos")
		return err != nil && strings.Contains(err.Error(), "no json.info_")
	}, "nodes removed while no master leads")
	c.Close()
	children, _, err := conn.Children("/regent-test/mesos")
	if err != nil || len(children) != 1 {
		t.Fatalf("after Close: children %v, %v; want only log_replicas", children, err)
	}
}
