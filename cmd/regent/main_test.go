package main

import (
	"bufio"

	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/spf13/pflag"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.Cleanup(func(int) {
		if binPath != "" {
			os.RemoveAll(filepath.Dir(binPath))
		}
	}))
}

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// regentBinary builds this command once per test run.
func regentBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "regent-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "regent")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

func TestRunRejectsBadConfiguration(t *testing.T) {
	bin := regentBinary(t)
	cases := []struct {
		args []string
		env  []string
		want []string
	}{
		{[]string{"run"}, nil, []string{"--etcd-endpoints", "no store"}},
		{[]string{"run", "--etcd-endpoints", "http://127.0.0.1:1", "--election-ttl", "1s"}, nil, []string{"--election-ttl", "2s to 60s"}},
		{[]string{"run", "--zk-servers", "127.0.0.1:1"}, []string{"REGENT_TASK_MEM=lots"}, []string{"REGENT_TASK_MEM", "not a number"}},
		{[]string{"run", "--etcd-endpoints", "http://127.0.0.1:1", "--master", "zk://u:hunter2@zk/mesos"}, nil, []string{"--master"}},
		{[]string{"run", "--no-such-flag"}, nil, []string{"unknown flag: --no-such-flag"}},
		{[]string{"run", "extra"}, nil, []string{"unknown command"}},
	}
	for _, tc := range cases {
		cmd := exec.Command(bin, tc.args...)
		cmd.Env = append(os.Environ(), tc.env...)
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != exitError {
			t.Errorf("regent %v: %v, want exit status %d\n%s", tc.args, err, exitError, out)
		}
		for _, w := range tc.want {
			if !strings.Contains(string(out), w) {
				t.Errorf("regent %v: output lacks %q:\n%s", tc.args, w, out)
			}
		}
		if strings.Contains(string(out), "hunter2") {
			t.Errorf("regent %v shows a password:\n%s", tc.args, out)
		}
	}
}

func TestHelpExplainsEveryFlag(t *testing.T) {
	bin := regentBinary(t)
	out, err := exec.Command(bin, "run", "--help").CombinedOutput()
	if err != nil {
		t.Fatalf("run --help: %v\n%s", err, out)
	}
	cmd := newRunCmd()
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		if !strings.Contains(string(out), "--"+f.Name) {
			t.Errorf("run --help does not mention --%s", f.Name)
		}
		if strings.TrimSpace(f.Usage) == "" {
			t.Errorf("--%s has no help text", f.Name)
		}
	})
	for _, sub := range []string{"run", "dev", "status", "drill", "version"} {
		if out, err := exec.Command(bin, sub, "--help").CombinedOutput(); err != nil || !strings.Contains(string(out), "Usage:") {
			t.Errorf("%s --help: %v\n%s", sub, err, out)
		}
	}
	out, err = exec.Command(bin, "version").CombinedOutput()
	if err != nil || !regexp.MustCompile(`^regent \S+ \(go1\.\S+, \w+/\w+\)\n$`).Match(out) {
		t.Errorf("version: %v %q", err, out)
	}
}

// devTopology is a running `regent dev` and what it printed.
type devTopology struct {
	cmd     *exec.Cmd
	mu      sync.Mutex
	lines   []string
	newLine chan struct{}
	done    chan error
}

func startDev(t *testing.T, args ...string) *devTopology {
	t.Helper()
	bin := regentBinary(t)
	cmd := exec.Command(bin, append([]string{"dev", "--port", "0", "--mesos-port", "0", "--agents", "3"}, args...)...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = &testWriter{t: t}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d := &devTopology{cmd: cmd, newLine: make(chan struct{}, 1), done: make(chan error, 1)}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			d.mu.Lock()
			d.lines = append(d.lines, sc.Text())
			d.mu.Unlock()
			select {
			case d.newLine <- struct{}{}:
			default:
			}
		}
		d.done <- cmd.Wait()
	}()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			<-d.done
		}
	})
	return d
}

// waitLine waits for a printed line matching re and returns its submatches.
func (d *devTopology) waitLine(t *testing.T, re *regexp.Regexp, from int, timeout time.Duration) ([]string, int) {
	t.Helper()
	deadline := time.After(timeout)
	for {
		d.mu.Lock()
		for i := from; i < len(d.lines); i++ {
			if m := re.FindStringSubmatch(d.lines[i]); m != nil {
				d.mu.Unlock()
				return m, i
			}
		}
		d.mu.Unlock()
		select {
		case <-d.newLine:
		case <-time.After(100 * time.Millisecond):
		case <-deadline:
			d.mu.Lock()
			defer d.mu.Unlock()
			t.Fatalf("regent dev did not print a line matching %q within %v; it printed:\n%s", re, timeout, strings.Join(d.lines, "\n"))
		}
	}
}

type testWriter struct{ t *testing.T }

func (w *testWriter) Write(p []byte) (int, error) {
	w.t.Logf("regent dev: %s", strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func alive(pid int) bool { return syscall.Kill(pid, 0) == nil }

// TestDevShowsAFailoverAndCleansUp runs `regent dev`, kills its leader, asks
// `regent status`, stops it with Ctrl-C and checks that nothing is left.
func TestDevShowsAFailoverAndCleansUp(t *testing.T) {
	testDev(t, "etcd")
}

func TestDevWithZooKeeper(t *testing.T) {
	testDev(t, "zk")
}

func testDev(t *testing.T, store string) {
	d := startDev(t, "--store", store, "--election-ttl", "2s")
	replicaRe := regexp.MustCompile(`^(replica-\d): pid (\d+), (http://\S+)/ \(log (\S+)\)$`)
	var pids []int
	var urls, logs []string
	from := 0
	for i := 0; i < 3; i++ {
		m, at := d.waitLine(t, replicaRe, from, 60*time.Second)
		pid, _ := strconv.Atoi(m[2])
		pids, urls, logs, from = append(pids, pid), append(urls, m[3]), append(logs, m[4]), at+1
	}
	// The logs live in the data directory, which regent dev removes on
	// Ctrl-C: print them before that, or at a fatal failure.
	var dumpOnce sync.Once
	dump := func() {
		dumpOnce.Do(func() {
			if !t.Failed() {
				return
			}
			d.mu.Lock()
			t.Logf("--- regent dev printed ---\n%s", strings.Join(d.lines, "\n"))
			d.mu.Unlock()
			for _, l := range logs {
				b, _ := os.ReadFile(l)
				lines := strings.Split(string(b), "\n")
				t.Logf("--- %s (tail) ---\n%s", l, strings.Join(lines[max(0, len(lines)-150):], "\n"))
			}
		})
	}
	defer dump()
	dataDir := filepath.Dir(d.lastMatch(t, replicaRe)[4])
	d.waitLine(t, regexp.MustCompile(`^regent dev is up: status page http://`), 0, 60*time.Second)
	leaderRe := regexp.MustCompile(`^leader: (replica-\d) \(pid (\d+)\)\. To watch a failover: kill -9 (\d+)$`)
	m, at := d.waitLine(t, leaderRe, 0, 10*time.Second)
	first, firstPID := m[1], atoi(m[2])

	// The status page of any replica shows the leader.
	resp, err := http.Get(urls[2] + "/")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(page), `id="leader">`+first+`<`) {
		t.Errorf("status page = %d, does not show leader %s", resp.StatusCode, first)
	}

	// Kill the leader as the printed command says: another takes over.
	if err := syscall.Kill(firstPID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	m, _ = d.waitLine(t, leaderRe, at+1, 30*time.Second)
	if m[1] == first {
		t.Fatalf("leader still %s after it was killed", first)
	}
	var live string
	for i, u := range urls {
		if pids[i] != firstPID {
			live = u
		}
	}
	// `regent status` against a surviving replica, as a table and as JSON.
	bin := regentBinary(t)
	var out []byte
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		out, err = exec.Command(bin, "status", "--addr", live).CombinedOutput()
		// Ready once the survivor campaigns again (the killed leader's
		// candidacy may linger until its session or lease expires).
		if err == nil && strings.Contains(string(out), "subscribed to") && strings.Contains(string(out), "RUNNING 3") &&
			strings.Contains(string(out), "standby") {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	for _, w := range []string{"LEADER", m[1], "FRAMEWORK", "regent-dev", "RUNNING 3", "REPLICA", "standby"} {
		if !strings.Contains(string(out), w) {
			t.Errorf("regent status lacks %q:\n%s", w, out)
		}
	}
	out, err = exec.Command(bin, "status", "--addr", live, "-o", "json").Output()
	var rep statusReport
	if err != nil || json.Unmarshal(out, &rep) != nil || rep.Leader.Leader.ID != m[1] || rep.Info == nil || rep.Info.Tasks != 3 {
		t.Errorf("regent status -o json: %v\n%s", err, out)
	}
	if out, err := exec.Command(bin, "status", "--addr", "http://127.0.0.1:1").CombinedOutput(); err == nil {
		t.Errorf("regent status against nothing succeeded:\n%s", out)
	}

	// `regent drill step-down` moves the leadership twice and reports.
	out, err = exec.Command(bin, "drill", "step-down", "--addr", live, "--runs", "2", "-o", "json").Output()
	var dr drillReport
	if err != nil || json.Unmarshal(out, &dr) != nil || len(dr.Runs) != 2 || len(dr.Violations) != 0 || len(dr.Checks) < 5 ||
		!strings.Contains(dr.Checks[2], "3 running tasks kept their ids and agents") ||
		dr.Runs[0].From == dr.Runs[0].To || dr.Runs[1].From != dr.Runs[0].To {
		t.Errorf("regent drill step-down: %v\n%s", err, out)
	}
	out, err = exec.Command(bin, "drill", "step-down", "--addr", live, "--runs", "1").CombinedOutput()
	for _, w := range []string{"DRILL step-down", "FROM", "hand-over p50", "ok: one FrameworkID", "no violation"} {
		if err != nil || !strings.Contains(string(out), w) {
			t.Errorf("regent drill table lacks %q (%v):\n%s", w, err, out)
		}
	}
	for _, args := range [][]string{{"drill"}, {"drill", "chaos"}, {"drill", "step-down", "--runs", "0"}} {
		if out, err := exec.Command(bin, args...).CombinedOutput(); err == nil {
			t.Errorf("regent %v succeeded:\n%s", args, out)
		}
	}

	// Ctrl-C stops everything and removes the temporary data.
	dump()
	if err := d.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-d.done:
		if err != nil {
			t.Errorf("regent dev exited with %v", err)
		}
	case <-time.After(40 * time.Second):
		t.Fatal("regent dev did not stop within 40s of SIGINT")
	}
	for _, pid := range pids {
		if alive(pid) {
			t.Errorf("replica pid %d still runs after regent dev stopped", pid)
		}
	}
	if _, err := os.Stat(dataDir); !os.IsNotExist(err) {
		t.Errorf("data dir %s still exists: %v", dataDir, err)
	}
	if store == "zk" {
		if out, _ := exec.Command("pgrep", "-f", dataDir).Output(); len(out) > 0 {
			t.Errorf("processes of the dev topology remain: %s", out)
		}
	}
}

func (d *devTopology) lastMatch(t *testing.T, re *regexp.Regexp) []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	for i := len(d.lines) - 1; i >= 0; i-- {
		if m := re.FindStringSubmatch(d.lines[i]); m != nil {
			return m
		}
	}
	t.Fatalf("no line matches %q", re)
	return nil
}

func atoi(s string) int { n, _ := strconv.Atoi(s); return n }

// TestFlagsDocIsCurrent keeps docs/FLAGS.md equal to what the binary
// accepts: a renamed or new flag fails here until `make docs` is run.
func TestFlagsDocIsCurrent(t *testing.T) {
	path := filepath.Join("..", "..", "docs", "FLAGS.md")
	want := flagsMarkdown()
	if os.Getenv("REGENT_UPDATE_DOCS") == "1" {
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run `make docs`)", err)
	}
	if string(got) != want {
		t.Errorf("%s is out of date: run `make docs`", path)
	}
}

// `regent drill NAME --local` starts its own topology (replicas of this
// binary), runs the drill and the checker, and tears everything down.
func TestDrillLocal(t *testing.T) {
	bin := regentBinary(t)
	// Each run gets a TMPDIR of its own (other test packages make
	// regent-drill-* directories in /tmp meanwhile), to check it is left
	// empty.
	tmp := t.TempDir()
	drill := func(args ...string) *exec.Cmd {
		cmd := exec.Command(bin, args...)
		cmd.Env = append(os.Environ(), "TMPDIR="+tmp)
		return cmd
	}
	for _, tc := range []struct {
		args []string
		min  int
	}{
		{[]string{"drill", "kill-leader", "--local", "--runs", "1", "-o", "json"}, 1},
		{[]string{"drill", "soak", "--local", "--store", "zk", "--duration", "2s", "--seed", "7", "-o", "json"}, 1},
	} {
		out, err := drill(tc.args...).Output()
		var rep localReport
		if err != nil || json.Unmarshal(out, &rep) != nil {
			t.Fatalf("regent %v: %v\n%s", tc.args, err, out)
		}
		if len(rep.Steps) < tc.min || len(rep.Violations) != 0 || len(rep.Failures) != 0 || len(rep.Rules) < 6 {
			t.Errorf("regent %v: report %+v", tc.args, rep)
		}
		if rep.Drill == "kill-leader" && (rep.Steps[0].From == rep.Steps[0].To || rep.Steps[0].Subscribed <= 0) {
			t.Errorf("kill-leader did not move the leadership: %+v", rep.Steps[0])
		}
		if rep.Drill == "soak" && rep.Seed != 7 {
			t.Errorf("soak seed %d, want 7", rep.Seed)
		}
	}
	out, err := drill("drill", "kill-leader", "--local", "--runs", "1").CombinedOutput()
	for _, w := range []string{"DRILL kill-leader on a local topology (etcd)", "SUBSCRIBED", "checked: acked-before-commit", "no violation"} {
		if err != nil || !strings.Contains(string(out), w) {
			t.Errorf("regent drill --local table lacks %q (%v):\n%s", w, err, out)
		}
	}
	for _, args := range [][]string{
		{"drill", "kill-leader"},                          // needs --local
		{"drill", "nope", "--local"},                      // no such drill
		{"drill", "soak", "--local", "--store", "consul"}, // no such store
		{"drill", "soak", "--local", "--replicas", "0"},
		{"drill", "kill-leader", "--local", "--election-ttl", "1500ms"},
	} {
		if out, err := drill(args...).CombinedOutput(); err == nil || !strings.Contains(string(out), "regent: ") {
			t.Errorf("regent %v: %v\n%s", args, err, out)
		}
	}
	if left, _ := os.ReadDir(tmp); len(left) > 0 {
		t.Errorf("regent drill --local left %v behind in its TMPDIR", left)
	}
}

// TestFlagsDocCoversEverySubcommand: docs/FLAGS.md has a section for every
// subcommand, each listing all of its flags with their help, and keeps
// `regent run`'s table (flag, environment variable, default, meaning)
// first, which the chart's tests parse.
func TestFlagsDocCoversEverySubcommand(t *testing.T) {
	doc := flagsMarkdown()
	if !strings.HasPrefix(doc, "# regent run: every flag\n") {
		t.Errorf("docs/FLAGS.md does not start with the regent run section")
	}
	runRow := regexp.MustCompile("(?m)^\\| `--[a-z0-9-]+` \\| `REGENT_[A-Z0-9_]+` \\| ")
	var n int
	newRunCmd().Flags().VisitAll(func(*pflag.Flag) { n++ })
	if got := len(runRow.FindAllString(doc, -1)); got != n {
		t.Errorf("%d rows of regent run's table, want one per flag: %d", got, n)
	}
	heading := regexp.MustCompile("(?m)^# regent ([a-z-]+): every flag$")
	sections := map[string]string{}
	ms := heading.FindAllStringSubmatchIndex(doc, -1)
	for i, m := range ms {
		end := len(doc)
		if i+1 < len(ms) {
			end = ms[i+1][0]
		}
		sections[doc[m[2]:m[3]]] = doc[m[1]:end]
	}
	subs := newRoot().Commands()
	if len(sections) != len(subs) {
		t.Errorf("sections %v, want one per subcommand (%d)", slices.Sorted(maps.Keys(sections)), len(subs))
	}
	for _, cmd := range subs {
		sec, ok := sections[cmd.Name()]
		if !ok {
			t.Errorf("no section for regent %s", cmd.Name())
			continue
		}
		cmd.Flags().VisitAll(func(f *pflag.Flag) {
			if !strings.Contains(sec, "| `--"+f.Name+"` |") && !strings.Contains(sec, "`, `--"+f.Name+"` |") {
				t.Errorf("the regent %s section lacks --%s", cmd.Name(), f.Name)
			}
			if !strings.Contains(sec, strings.ReplaceAll(f.Usage, "|", "\\|")) {
				t.Errorf("the regent %s section lacks the help of --%s", cmd.Name(), f.Name)
			}
		})
	}
	for _, w := range []string{"| `-o`, `--output` | `table` |", "| `--cert-file` |", "| `--token-file` |", "| `--local` |  |"} {
		if !strings.Contains(sections["drill"], w) {
			t.Errorf("the regent drill section lacks %q", w)
		}
	}
	if !strings.Contains(sections["version"], "no flags") {
		t.Errorf("the regent version section does not say it has no flags:\n%s", sections["version"])
	}
}
