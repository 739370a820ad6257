package drill

import (
	"context"
	"errors"
	"fmt"
	"path"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/go-zookeeper/zk"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/regent-sched/regent/persist"
)

// The store side of "no commit from a deposed leader": every manifest
// (format 3) names the fence of the term that wrote it, and the election
// is in the same store, so each commit can be matched with who led when it
// landed.
//
//   - etcd keeps the history: the checker replays every event under the
//     framework's root from revision 1 and, at each manifest write (the
//     commit's revision R), looks at the election keys as of R-1. The
//     writer's key must be there with the fence's create revision, and be
//     the oldest (the leader). This is exact.
//   - ZooKeeper keeps no history, so a watcher follows the manifest while
//     the drill runs: at each version it reads, it lists the election
//     znodes. A znode older than the writer's that still exists after the
//     commit existed at the commit too, so the writer was not the leader
//     then. This never accuses wrongly but may miss a commit the watcher
//     did not see (the next commit replaced it first).
//
// Both then check that terms never go backwards: a generation written by
// an older term than the one before it means two leaders wrote in turn.

// commitSeen is one commit the store's history showed.
type commitSeen struct {
	gen    uint64
	writer persist.Fence
	at     string    // "revision R" (etcd) or "zxid Z" (ZooKeeper)
	when   time.Time // when the watcher saw it (ZooKeeper); zero for etcd
	// wrong says why the writer was not the leader when the commit
	// landed, "" if it was or nothing can be told.
	wrong string
}

// storeFramework is the framework name and prefix every drill replica
// uses.
const storeFramework = "drill"

// checkCommits returns the store-side violations of the commits seen.
func checkCommits(commits []commitSeen) []Violation {
	var out []Violation
	var last *commitSeen
	sort.SliceStable(commits, func(i, j int) bool { return commits[i].gen < commits[j].gen })
	for i := range commits {
		c := &commits[i]
		if c.writer == (persist.Fence{}) {
			continue // written before format 3: nothing to match
		}
		if c.wrong != "" {
			out = append(out, Violation{Rule: "deposed-commit", At: c.when,
				Detail: fmt.Sprintf("generation %d (%s) written by %s (term %d), %s", c.gen, c.at, c.writer.Key, c.writer.Revision, c.wrong)})
		}
		if last != nil && c.writer.Revision < last.writer.Revision {
			out = append(out, Violation{Rule: "deposed-commit", At: c.when,
				Detail: fmt.Sprintf("generation %d (%s) written by term %d (%s) after generation %d by the newer term %d (%s)",
					c.gen, c.at, c.writer.Revision, c.writer.Key, last.gen, last.writer.Revision, last.writer.Key)})
		}
		last = c
	}
	return out
}

// etcdCommits replays the history of the framework's root from revision 1
// up to the latest manifest write.
func etcdCommits(ctx context.Context, cli *clientv3.Client) ([]commitSeen, error) {
	manKey := persist.ManifestPath("", storeFramework)
	dir := persist.LeaderDir("", storeFramework) + "/"
	root := path.Dir(manKey) + "/"
	cur, err := cli.Get(ctx, manKey)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", manKey, err)
	}
	if len(cur.Kvs) == 0 {
		return nil, nil // nothing committed
	}
	until := cur.Kvs[0].ModRevision
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	live := map[string]int64{} // election key -> create revision
	var out []commitSeen
	for resp := range cli.Watch(wctx, root, clientv3.WithPrefix(), clientv3.WithRev(1)) {
		if err := resp.Err(); err != nil {
			return nil, fmt.Errorf("replay %s: %w", root, err)
		}
		// Events come in revision order; those of one transaction share
		// a revision, and a commit's transaction touches no election key,
		// so live is the election as of R-1 at a manifest event of R.
		for _, ev := range resp.Events {
			key := string(ev.Kv.Key)
			switch {
			case strings.HasPrefix(key, dir) && ev.Type == clientv3.EventTypePut:
				live[key] = ev.Kv.CreateRevision
			case strings.HasPrefix(key, dir):
				delete(live, key)
			case key == manKey && ev.Type == clientv3.EventTypePut:
				info, err := persist.InspectManifest(ev.Kv.Value)
				if err != nil {
					return nil, fmt.Errorf("%s at revision %d: %w", manKey, ev.Kv.ModRevision, err)
				}
				c := commitSeen{gen: info.Generation, writer: info.Writer, at: fmt.Sprintf("revision %d", ev.Kv.ModRevision)}
				c.wrong = etcdJudge(info.Writer, dir, live)
				out = append(out, c)
			}
			if ev.Kv.ModRevision >= until {
				return out, nil
			}
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return nil, errors.New("the watch ended before the latest commit")
}

// etcdJudge tells why writer was not the leader given the election keys
// of the revision before its commit, or "".
func etcdJudge(writer persist.Fence, dir string, live map[string]int64) string {
	if writer == (persist.Fence{}) {
		return ""
	}
	if !strings.HasPrefix(writer.Key, dir) {
		return fmt.Sprintf("a fence outside the election (%s)", dir)
	}
	if rev, ok := live[writer.Key]; !ok || rev != writer.Revision {
		return "after its election key was gone"
	}
	for k, rev := range live {
		if rev < writer.Revision {
			return fmt.Sprintf("while the older candidate %s (term %d) led", k, rev)
		}
	}
	return ""
}

// zkWatch follows the manifest in ZooKeeper while the drill runs.
type zkWatch struct {
	conn *zk.Conn
	last int64 // the mzxid of the manifest version read last (run's own)

	mu      sync.Mutex
	commits []commitSeen
	errs    int // manifests that did not decode
	lastErr error
}

func newZKWatch(conn *zk.Conn) *zkWatch {
	return &zkWatch{conn: conn}
}

// run records every manifest version it sees until ctx ends.
func (w *zkWatch) run(ctx context.Context) {
	manPath := persist.ManifestPath("", storeFramework)
	for ctx.Err() == nil {
		data, st, ev, err := w.conn.GetW(manPath)
		if errors.Is(err, zk.ErrNoNode) {
			_, _, ev, err = w.conn.ExistsW(manPath)
		}
		if err != nil {
			select { // the server is away; the connection retries
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
			continue
		}
		if st != nil && data != nil {
			w.observe(data, st)
		}
		select {
		case <-ev:
		case <-ctx.Done():
		case <-time.After(2 * time.Second): // a watch lost with a session
		}
	}
}

// observe records one manifest version and judges its writer against the
// election znodes that exist now, after the commit.
func (w *zkWatch) observe(data []byte, st *zk.Stat) {
	if st.Mzxid <= w.last {
		return // read again after a timeout: already recorded
	}
	w.last = st.Mzxid
	info, err := persist.InspectManifest(data)
	if err != nil {
		w.mu.Lock()
		w.errs++
		w.lastErr = fmt.Errorf("manifest at zxid %d: %w", st.Mzxid, err)
		w.mu.Unlock()
		return
	}
	c := commitSeen{gen: info.Generation, writer: info.Writer, at: fmt.Sprintf("zxid %d", st.Mzxid), when: time.Now()}
	c.wrong = w.judge(info.Writer)
	w.mu.Lock()
	w.commits = append(w.commits, c)
	w.mu.Unlock()
}

// judge tells why writer was not the leader when its commit landed, from
// the election znodes that exist now, or "".
func (w *zkWatch) judge(writer persist.Fence) string {
	dir := persist.LeaderDir("", storeFramework)
	if writer == (persist.Fence{}) {
		return ""
	}
	if !strings.HasPrefix(writer.Key, dir+"/") {
		return fmt.Sprintf("a fence outside the election (%s)", dir)
	}
	names, _, err := w.conn.Children(dir)
	if err != nil {
		return "" // no judgement
	}
	for _, n := range names {
		ok, st, err := w.conn.Exists(dir + "/" + n)
		if err == nil && ok && st.Czxid < writer.Revision {
			return fmt.Sprintf("while the older candidate %s/%s (czxid %d) still existed", dir, n, st.Czxid)
		}
	}
	return ""
}

// snapshot returns what the watcher recorded, and an error if some
// manifest could not be read.
func (w *zkWatch) snapshot() ([]commitSeen, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	var err error
	if w.errs > 0 {
		err = fmt.Errorf("%d manifest versions did not decode; the last: %w", w.errs, w.lastErr)
	}
	return append([]commitSeen(nil), w.commits...), err
}

// storeCommits returns the commits the store's history shows. etcd's is
// read now, retrying for a while if the store is still coming back.
func (tp *Topology) storeCommits(ctx context.Context) ([]commitSeen, error) {
	if tp.zkw != nil {
		return tp.zkw.snapshot()
	}
	if tp.etcdCli == nil {
		return nil, errors.New("no store history for this topology")
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		commits, err := etcdCommits(rctx, tp.etcdCli)
		cancel()
		if err == nil || ctx.Err() != nil || time.Now().After(deadline) {
			return commits, err
		}
		time.Sleep(500 * time.Millisecond)
	}
}
