package persist

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// crashHelperEnv, when set, makes the test binary a crash helper: it
// commits one batch and reports every transaction on stdout, so that the
// parent test can SIGKILL it at chosen or random points.
const crashHelperEnv = "REGENT_PERSIST_CRASH_HELPER"

// crashServer tells a helper process how to reach the server.
type crashServer struct {
	backend string
	addrs   []string
}

type crashConfig struct {
	Backend    string
	Format1    bool // ZooKeeper: write format 1, as older binaries did
	Addrs      []string
	Prefix     string
	Framework  string
	Fence      Fence
	Batch      string
	PausePhase string // pause (for the parent to kill) after this phase's
	PauseN     int    // PauseN-th transaction
}

// crashBatch returns the batches the crash tests commit, by name.
func crashBatch(name string) Batch {
	switch name {
	case "pre":
		b := bigBatch("p", 200, 400)
		b.FrameworkID = strp("pre-id")
		b.PutEntries = map[string][]byte{"cfg": []byte("cfg"), "blob": value("blob-pre", 700<<10)}
		return b
	case "main":
		// More than one transaction of every phase, in etcd (128 ops, 1.1 MB)
		// and ZooKeeper (128 KiB multis): two entries that etcd keeps inline
		// make its journal span two transactions.
		b := bigBatch("n", 400, 400)
		for i := 0; i < 50; i++ {
			k := fmt.Sprintf("p-%05d", i)
			b.PutTasks[k] = value(k+"updated", 300)
			b.DeleteTasks = append(b.DeleteTasks, fmt.Sprintf("p-%05d", 100+i))
		}
		b.FrameworkID = strp("main-id")
		b.PutEntries = map[string][]byte{
			"blob": value("blob-main", 800<<10), "blob2": value("blob2", 200<<10),
			"inline-a": value("a", 500<<10), "inline-b": value("b", 500<<10),
		}
		b.DeleteEntries = []string{"cfg"}
		return b
	case "follow":
		return Batch{PutTasks: map[string][]byte{"follow": []byte("up")}}
	}
	panic("unknown crash batch " + name)
}

// runCrashHelper is the helper process's main.
func runCrashHelper(cfgJSON string) int {
	var cfg crashConfig
	if err := json.Unmarshal([]byte(cfgJSON), &cfg); err != nil {
		fmt.Fprintln(os.Stderr, "crash helper config:", err)
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var s Store
	switch cfg.Backend {
	case "etcd":
		cli, err := clientv3.New(clientv3.Config{Endpoints: cfg.Addrs, DialTimeout: 10 * time.Second, Logger: zap.NewNop()})
		if err != nil {
			fmt.Fprintln(os.Stderr, "etcd client:", err)
			return 2
		}
		defer cli.Close()
		s, err = NewEtcd(cli, EtcdOptions{Prefix: cfg.Prefix, Framework: cfg.Framework})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
	case "zookeeper":
		conn, _, err := zk.Connect(cfg.Addrs, 10*time.Second, zk.WithLogInfo(false))
		if err != nil {
			fmt.Fprintln(os.Stderr, "zk connect:", err)
			return 2
		}
		defer conn.Close()
		zs, err := NewZooKeeper(conn, ZKOptions{Prefix: cfg.Prefix, Framework: cfg.Framework})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		zs.format1 = cfg.Format1
		s = zs
	}
	if _, err := s.Load(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "load:", err)
		return 2
	}
	s.(testStore).setHook(func(phase string, n int) {
		fmt.Printf("txn %s %d\n", phase, n)
		if phase == cfg.PausePhase && n == cfg.PauseN {
			fmt.Println("paused")
			time.Sleep(time.Hour) // until the parent's SIGKILL
		}
	})
	gen, err := s.Commit(ctx, cfg.Fence, crashBatch(cfg.Batch))
	if err != nil {
		fmt.Fprintln(os.Stderr, "commit:", err)
		return 3
	}
	fmt.Printf("committed %d\n", gen)
	if cfg.PausePhase != "" {
		fmt.Fprintf(os.Stderr, "the commit never reached %q %d\n", cfg.PausePhase, cfg.PauseN)
		return 4
	}
	return 0
}

// crashChild runs a helper and SIGKILLs it when it pauses, or when it has
// printed killAfter lines. It returns the lines read.
func crashChild(t *testing.T, cfg crashConfig, killAfter int) []string {
	t.Helper()
	js, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashHelperEnv+"="+string(js))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start crash helper: %v", err)
	}
	var lines []string
	sc := bufio.NewScanner(out)
	killed := false
	for sc.Scan() {
		line := sc.Text()
		lines = append(lines, line)
		if line == "paused" || (killAfter > 0 && len(lines) >= killAfter) {
			if err := cmd.Process.Kill(); err != nil {
				t.Fatalf("kill crash helper: %v", err)
			}
			killed = true
			break
		}
	}
	for sc.Scan() { // drain what was written before the kill landed
	}
	err = cmd.Wait()
	if !killed && err != nil {
		t.Fatalf("crash helper failed: %v\nstdout: %q\nstderr: %s", err, lines, stderr.String())
	}
	if stderr.Len() > 0 {
		t.Logf("crash helper stderr: %s", stderr.String())
	}
	return lines
}

// testCrash kills a writer mid-commit at chosen and random points; a
// reader must see all or nothing of the commit, and the next leader's
// commit must finish or discard it and leave no garbage.
func testCrash(t *testing.T, h *harness) {
	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, 0))
	t.Logf("random kill points from seed %d", seed)
	type tc struct {
		name      string
		phase     string
		n         int
		killAfter int
		want      int // 0: before, 1: after, -1: either
	}
	var cases []tc
	for _, cp := range h.crashes {
		cases = append(cases, tc{name: cp.name, phase: cp.phase, n: cp.n, want: cp.want})
	}
	// Random kill points within the commit: after one of the lines a whole
	// commit prints (one before and one after each transaction).
	points := crashPoints(t, h)
	for i := 0; i < 2; i++ {
		k := 1 + rng.IntN(points)
		cases = append(cases, tc{name: fmt.Sprintf("random kill after %d of %d lines", k, points), killAfter: k, want: -1})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel() // each case has its own framework; helpers start slowly under -race
			fw := uniqueFW("crash")
			s := h.newStore(t, testPrefix, fw)
			f1 := h.grant(t, testPrefix, fw)
			m0 := newModel()
			mustCommit(t, s, f1, crashBatch("pre"))
			m0.apply(crashBatch("pre"))
			m1 := m0.clone()
			m1.apply(crashBatch("main"))

			lines := crashChild(t, crashConfig{
				Backend: h.crash.backend, Addrs: h.crash.addrs, Prefix: testPrefix, Framework: fw,
				Fence: f1, Batch: "main", PausePhase: c.phase, PauseN: c.n,
			}, c.killAfter)
			t.Logf("helper said: %s", strings.Join(lines, ", "))

			r := h.newStore(t, testPrefix, fw)
			snap := mustLoad(t, r)
			d0, d1 := m0.diff(snap), m1.diff(snap)
			var got *model
			switch {
			case d0 == "" && c.want != 1:
				got = m0
			case d1 == "" && c.want != 0:
				got = m1
			default:
				t.Fatalf("after the crash Load saw neither all nor nothing of the commit (want %d):\nvs before: %s\nvs after: %s", c.want, d0, d1)
			}

			// A new leader commits: it finishes or discards the crashed
			// commit first.
			h.revoke(t, f1)
			f2 := h.grant(t, testPrefix, fw)
			want := got.clone()
			want.apply(crashBatch("follow"))
			mustCommit(t, r, f2, crashBatch("follow"))
			checkModel(t, h.newStore(t, testPrefix, fw), want)
			checkClean(t, h, fw)
		})
	}
	t.Run("crash while finishing a crashed commit", func(t *testing.T) {
		t.Parallel()
		fw := uniqueFW("crash2")
		s := h.newStore(t, testPrefix, fw)
		f1 := h.grant(t, testPrefix, fw)
		m := newModel()
		mustCommit(t, s, f1, crashBatch("pre"))
		m.apply(crashBatch("pre"))
		first, second := h.crash2[0], h.crash2[1]
		crashChild(t, crashConfig{Backend: h.crash.backend, Addrs: h.crash.addrs, Prefix: testPrefix, Framework: fw,
			Fence: f1, Batch: "main", PausePhase: first.phase, PauseN: first.n}, 0)
		if first.want == 1 {
			m.apply(crashBatch("main"))
		}
		h.revoke(t, f1)
		f2 := h.grant(t, testPrefix, fw)
		// The second writer dies while finishing or cleaning up after the
		// first one, before its own commit.
		crashChild(t, crashConfig{Backend: h.crash.backend, Addrs: h.crash.addrs, Prefix: testPrefix, Framework: fw,
			Fence: f2, Batch: "follow", PausePhase: second.phase, PauseN: second.n}, 0)
		r := h.newStore(t, testPrefix, fw)
		checkModel(t, r, m)
		h.revoke(t, f2)
		f3 := h.grant(t, testPrefix, fw)
		mustCommit(t, r, f3, crashBatch("follow"))
		m.apply(crashBatch("follow"))
		checkModel(t, h.newStore(t, testPrefix, fw), m)
		checkClean(t, h, fw)
	})
}

// crashPoints runs the crash tests' commit to its end in a helper, as
// testCrash's cases do but without a kill, and returns how many
// transaction lines it printed: the points a random kill chooses from.
func crashPoints(t *testing.T, h *harness) int {
	t.Helper()
	fw := uniqueFW("crash-count")
	f := h.grant(t, testPrefix, fw)
	mustCommit(t, h.newStore(t, testPrefix, fw), f, crashBatch("pre"))
	lines := crashChild(t, crashConfig{Backend: h.crash.backend, Addrs: h.crash.addrs, Prefix: testPrefix, Framework: fw,
		Fence: f, Batch: "main"}, 0)
	n := 0
	for _, l := range lines {
		if strings.HasPrefix(l, "txn ") {
			n++
		}
	}
	if n == 0 || !strings.HasPrefix(lines[len(lines)-1], "committed ") {
		t.Fatalf("the crash helper's commit printed %q", lines)
	}
	t.Logf("a whole commit prints %d transaction lines", n)
	return n
}

// checkClean verifies that no garbage (journal chunks, orphaned parts, log
// chunks or shards no state needs), journal mark or format 1 znode is
// left in the store.
func checkClean(t *testing.T, h *harness, fw string) {
	t.Helper()
	s := h.newStore(t, testPrefix, fw)
	mustLoad(t, s)
	if left := s.(testStore).leftovers(); len(left) > 0 {
		t.Fatalf("store not clean after a commit: %q", left)
	}
	if es, ok := s.(*EtcdStore); ok {
		v := es.eng.v
		for rel := range h.raw.dump(t, testPrefix, fw) {
			pi := h.raw.lay().parse(rel)
			if pi.class == classPart {
				info, ok := v.recs[pi.rec]
				if !ok || info.gen != pi.gen || pi.n >= info.parts {
					t.Fatalf("part %s is not referenced", rel)
				}
			}
		}
	}
}
