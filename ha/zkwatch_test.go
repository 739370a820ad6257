package ha

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/regent-sched/regent/integration/testserver"
)

// zkFourLetter sends a four-letter word to a ZooKeeper server and returns
// its answer.
func zkFourLetter(t *testing.T, addr, cmd string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("%s: %v", cmd, err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte(cmd)); err != nil {
		t.Fatalf("%s: %v", cmd, err)
	}
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("%s: %v", cmd, err)
	}
	if strings.Contains(string(b), "is not executed because it is not in the whitelist") {
		t.Fatalf("%s: %s", cmd, b)
	}
	return string(b)
}

// zkWatches is the server's "wchc": the paths each session watches (data
// and child watches alike), by session id in hex.
func zkWatches(t *testing.T, addr string) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	var sid string
	for _, line := range strings.Split(zkFourLetter(t, addr, "wchc"), "\n") {
		switch {
		case strings.HasPrefix(line, "0x"):
			sid = strings.TrimPrefix(strings.TrimSpace(line), "0x")
			out[sid] = nil
		case strings.HasPrefix(line, "\t/") && sid != "":
			out[sid] = append(out[sid], strings.TrimSpace(line))
		}
	}
	for sid := range out {
		slices.Sort(out[sid])
	}
	return out
}

var zkConsLine = regexp.MustCompile(`sid=0x([0-9a-f]+),.*lcxid=0x([0-9a-f]+),`)

// zkLastXids is the server's "cons": the xid of the last request each
// session sent (pings, which carry a negative xid, leave it alone), by
// session id in hex. A session whose value has not changed sent nothing.
func zkLastXids(t *testing.T, addr string) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	for _, m := range zkConsLine.FindAllStringSubmatch(zkFourLetter(t, addr, "cons"), -1) {
		x, err := strconv.ParseInt(m[2], 16, 64)
		if err != nil {
			t.Fatal(err)
		}
		out[m[1]] = x
	}
	return out
}

// zkWatchCandidate is one replica of TestZooKeeperNoHerdEffect.
type zkWatchCandidate struct {
	e    *ZKElector
	sid  string // session id, hex
	node string // its candidate znode
	won  <-chan zkResult
}

// Each waiting candidate watches only its predecessor (and its own
// znode): the server's list of data watches ("wchc") shows every znode
// watched by its owner and its successor only, so nobody watches the
// leader's but the leader and the next candidate. ZooKeeper's four-letter
// words do not list children watches; those are caught by what the
// candidates do, read from the server's last xid of each session ("cons"):
// nobody sends a request when an unrelated child comes and goes in the
// election directory; when a waiting candidate in the middle goes, only
// its successor acts (and then watches the predecessor of the one that
// went); when the leader goes, only the next candidate acts. Candidates
// watching the leader, or the directory's children, fail these checks.
func TestZooKeeperNoHerdEffect(t *testing.T) {
	z := testserver.StartZooKeeper(t, testserver.WithZooKeeperProperty("4lw.commands.whitelist", "ruok,stat,wchc,cons"))
	admin := z.Conn(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cs := make([]*zkWatchCandidate, 5)
	known := map[string]bool{}
	for i := range cs {
		e, conn := zkElector(t, z, fmt.Sprintf("c%d", i), 10*time.Second)
		c := &zkWatchCandidate{e: e, sid: strconv.FormatInt(conn.SessionID(), 16)}
		if i == 0 {
			won := make(chan zkResult, 1)
			won <- zkResult{term: zkCampaign(t, e, 5*time.Second)}
			c.won = won
		} else {
			c.won = zkCampaignAsync(ctx, e)
		}
		for _, name := range zkWaitChildren(t, admin, i+1) {
			if !known[name] {
				known[name] = true
				c.node = zkLeaderDir + "/" + name
			}
		}
		cs[i] = c
	}
	leader := (<-cs[0].won).term

	// want checks that the sessions of cs watch exactly the given paths,
	// waiting for them to get there.
	want := func(what string, expect map[*zkWatchCandidate][]string) {
		t.Helper()
		var got map[string][]string
		deadline := time.Now().Add(10 * time.Second)
		for {
			got = zkWatches(t, z.Addr())
			ok := true
			for c, paths := range expect {
				paths = slices.Sorted(slices.Values(paths))
				if !slices.Equal(got[c.sid], paths) {
					ok = false
				}
			}
			if ok {
				break
			}
			if time.Now().After(deadline) {
				var b strings.Builder
				for i, c := range cs {
					fmt.Fprintf(&b, "\n  c%d (%s, session %s): watches %v, want %v", i, c.node, c.sid, got[c.sid], expect[c])
				}
				t.Fatalf("%s: watches%s", what, b.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
		// No candidate watches the election directory itself (a
		// children watch: the herd), and no znode is watched by more
		// candidates than its owner and its successor.
		watchers := map[string]int{}
		for c := range expect {
			for _, p := range got[c.sid] {
				watchers[p]++
			}
		}
		for p, n := range watchers {
			if p == zkLeaderDir || p == "/regent/fw" || n > 2 {
				t.Fatalf("%s: %d candidates watch %s (all watches: %v)", what, n, p, got)
			}
		}
	}
	// quiet returns the last xids once the sessions of the candidates
	// which have stopped sending for a moment.
	quiet := func(which ...int) map[string]int64 {
		t.Helper()
		prev := zkLastXids(t, z.Addr())
		for range 100 {
			time.Sleep(150 * time.Millisecond)
			cur := zkLastXids(t, z.Addr())
			same := true
			for _, i := range which {
				if c := cs[i]; cur[c.sid] != prev[c.sid] {
					same = false
				}
			}
			if same {
				return cur
			}
			prev = cur
		}
		t.Fatal("the waiting candidates never stopped sending requests")
		return nil
	}
	// acted reports which of cs sent a request between two readings.
	acted := func(before, after map[string]int64, which ...int) []int {
		var out []int
		for _, i := range which {
			if after[cs[i].sid] != before[cs[i].sid] {
				out = append(out, i)
			}
		}
		return out
	}

	want("five candidates", map[*zkWatchCandidate][]string{
		cs[0]: {cs[0].node},
		cs[1]: {cs[1].node, cs[0].node},
		cs[2]: {cs[2].node, cs[1].node},
		cs[3]: {cs[3].node, cs[2].node},
		cs[4]: {cs[4].node, cs[3].node},
	})
	before := quiet(1, 2, 3, 4)

	// Something that is no candidate comes and goes in the directory: a
	// children watch would fire for it.
	if _, err := admin.Create(zkLeaderDir+"/not-a-candidate", nil, 0, zk.WorldACL(zk.PermAll)); err != nil {
		t.Fatal(err)
	}
	if err := admin.Delete(zkLeaderDir+"/not-a-candidate", -1); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // for a watch that fired to be acted on
	after := quiet(1, 2, 3, 4)
	if got := acted(before, after, 1, 2, 3, 4); len(got) != 0 {
		t.Fatalf("a child that is no candidate came and went: candidates %v sent requests; want none", got)
	}

	// A waiting candidate in the middle goes.
	before = after
	if err := admin.Delete(cs[2].node, -1); err != nil {
		t.Fatal(err)
	}
	want("c2 went", map[*zkWatchCandidate][]string{
		cs[0]: {cs[0].node},
		cs[1]: {cs[1].node, cs[0].node},
		cs[3]: {cs[3].node, cs[1].node},
		cs[4]: {cs[4].node, cs[3].node},
	})
	after = quiet(1, 3, 4)
	// c0 leads (its probes send requests); c2 is the one that went.
	if got := acted(before, after, 1, 3, 4); !slices.Equal(got, []int{3}) {
		t.Fatalf("after c2 went, candidates %v sent requests; want only its successor c3", got)
	}
	select {
	case r := <-cs[2].won:
		if r.term != nil || !errors.Is(r.err, ErrLeadershipLost) {
			t.Fatalf("c2's campaign without a znode returned (%v, %v)", r.term, r.err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("c2 still campaigns without its znode")
	}

	// The leader goes: c1 takes over, and c3 and c4 do nothing.
	before = after
	if err := leader.Resign(context.Background()); err != nil {
		t.Fatal(err)
	}
	t1 := zkWon(t, cs[1].won, 5*time.Second, "c1 after c0 resigned")
	want("c0 resigned", map[*zkWatchCandidate][]string{
		cs[1]: {cs[1].node},
		cs[3]: {cs[3].node, cs[1].node},
		cs[4]: {cs[4].node, cs[3].node},
	})
	after = quiet(3, 4)
	if got := acted(before, after, 3, 4); len(got) != 0 {
		t.Fatalf("after the leader resigned, waiting candidates %v sent requests; want none but the next leader", got)
	}
	zkNotWon(t, cs[3].won, 200*time.Millisecond, "c3 while c1 leads")
	if err := t1.Resign(context.Background()); err != nil {
		t.Fatal(err)
	}
	zkWon(t, cs[3].won, 5*time.Second, "c3 after c1 resigned")
}
