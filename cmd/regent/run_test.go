package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/regent-sched/regent/cmd/regent/internal/api"
	"github.com/regent-sched/regent/integration/childproc"
)

// replicaProc is a `regent run` child process of a test, with everything
// it printed (stdout and stderr) kept.
type replicaProc struct {
	id, base string
	proc     *childproc.Process
}

// outputBytes is how much of a replica's output a test keeps: all of it,
// for the tests that look for what it must never print.
const outputBytes = 64 << 20

// output is everything the replica printed so far.
func (p *replicaProc) output() string { return p.proc.Tail() }

// startRun starts `regent run --id id` on a free loopback port, advertised
// as https:// when tls, with quick relaunches and args (which may override
// the defaults given here). The process is killed at the end of the test
// if it still runs; its output is logged when the test failed.
func startRun(t *testing.T, id string, tls bool, args ...string) *replicaProc {
	t.Helper()
	bin := regentBinary(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	scheme := "http"
	if tls {
		scheme = "https"
	}
	p := &replicaProc{id: id, base: scheme + "://" + addr}
	argv := append([]string{bin, "run", "--id", id, "--name", "regent-test", "--listen", addr, "--advertise-url", p.base,
		"--log-format", "console", "--failover-timeout", "1h", "--shutdown-timeout", "10s",
		"--relaunch-backoff-min", "100ms", "--relaunch-backoff-max", "1s"}, args...)
	p.proc, err = childproc.Start(childproc.Config{Argv: argv, Env: childproc.Environ("REGENT_"), TailBytes: outputBytes})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.proc.Kill()
		if t.Failed() {
			t.Logf("--- regent run %s printed ---\n%s", id, p.output())
		}
	})
	return p
}

// signal sends sig to the replica.
func (p *replicaProc) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := p.proc.Signal(sig); err != nil {
		t.Fatalf("signal %s: %v", p.id, err)
	}
}

// wait waits for the replica to exit and returns nil if it exited with
// status 0, else how it ended.
func (p *replicaProc) wait(t *testing.T, limit time.Duration) error {
	t.Helper()
	select {
	case <-p.proc.Done():
		if st := p.proc.ExitStatus(); st != "exit status 0" {
			return errors.New(st)
		}
		return nil
	case <-time.After(limit):
		t.Fatalf("regent run %s did not exit within %v", p.id, limit)
		return nil
	}
}

// testClient is an HTTP client for the test's requests, with the TLS
// settings tc (nil: the defaults), its idle connections closed at the end.
func testClient(t *testing.T, tc *tls.Config) *http.Client {
	tr := &http.Transport{TLSClientConfig: tc}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// get sends GET base+path and returns the status and body (code 0 and
// the error's text when the request failed).
func get(hc *http.Client, url string) (int, string) {
	resp, err := hc.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// waitFor polls cond every 50 ms until it holds or limit passes.
func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", limit, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// leaderOf asks a replica's /v1/leader.
func leaderOf(hc *http.Client, base string) (api.Leader, error) {
	c := api.Client{Base: base, HTTP: hc}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return c.Leader(ctx)
}

// waitLeading waits until replica p leads with its state loaded and its
// scheduler subscribed to Mesos with tasks running on every one of n
// agents, and until every replica in others sees it lead.
func waitLeading(t *testing.T, hc *http.Client, p *replicaProc, n int, others ...*replicaProc) {
	t.Helper()
	waitFor(t, 60*time.Second, p.id+" leading and subscribed, running "+strconv.Itoa(n)+" tasks", func() bool {
		c := api.Client{Base: p.base, HTTP: hc}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		info, err := c.Info(ctx)
		return err == nil && info.Leader.ID == p.id && info.Subscribed && info.TasksByState["TASK_RUNNING"] == n &&
			!info.Reconciliation.Active
	})
	for _, o := range others {
		waitFor(t, 30*time.Second, o.id+" seeing "+p.id+" lead", func() bool {
			l, err := leaderOf(hc, o.base)
			return err == nil && l.Leader.ID == p.id && !l.Self.Leading
		})
	}
}

// writeFile writes content to a new file of the test, readable by its
// owner only, and returns its path.
func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// runRegent runs the binary with args and returns its combined output
// and exit status (-1 when it did not exit normally).
func runRegent(t *testing.T, limit time.Duration, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, regentBinary(t), args...)
	cmd.Env = childproc.Environ("REGENT_")
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return string(out), 0
	case errors.As(err, &ee) && ee.Exited():
		return string(out), ee.ExitCode()
	default:
		t.Fatalf("regent %s: %v\n%s", strings.Join(args, " "), err, out)
		return "", -1
	}
}

// decodeJSON decodes the JSON document at the start of out (what a
// command printed to stdout before any error on stderr).
func decodeJSON[T any](t *testing.T, out string) T {
	t.Helper()
	var v T
	if err := json.NewDecoder(strings.NewReader(out)).Decode(&v); err != nil {
		t.Fatalf("decode %T from %q: %v", v, out, err)
	}
	return v
}

// TestZooKeeperMissingSaysHowToInstall: `regent dev --store zk` (and a
// local drill on ZooKeeper) on a machine without ZooKeeper's Java fails at
// once with the command that installs it, having started nothing. Java
// is hidden through the JAVA variable, which the ZooKeeper launcher
// honours, so the installed ZooKeeper stays untouched.
func TestZooKeeperMissingSaysHowToInstall(t *testing.T) {
	tmp := t.TempDir()
	for _, args := range [][]string{
		{"dev", "--store", "zk", "--port", "0", "--mesos-port", "0"},
		{"drill", "soak", "--local", "--store", "zk", "--duration", "1s"},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		cmd := exec.CommandContext(ctx, regentBinary(t), args...)
		cmd.Env = append(childproc.Environ("REGENT_", "JAVA=", "TMPDIR="), "JAVA="+filepath.Join(tmp, "no-java"), "TMPDIR="+tmp)
		out, err := cmd.CombinedOutput()
		cancel()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != exitError {
			t.Errorf("regent %v without java: %v, want exit status %d:\n%s", args, err, exitError, out)
		}
		for _, w := range []string{"regent: ", "java not found", "ZooKeeper or Java is not installed",
			"sudo scripts/install-zookeeper.sh", "apt-get install -y --no-install-recommends zookeeper"} {
			if !strings.Contains(string(out), w) {
				t.Errorf("regent %v without java: output lacks %q:\n%s", args, w, out)
			}
		}
		if strings.Contains(string(out), "mesos-sim:") || strings.Contains(string(out), "replica-1") {
			t.Errorf("regent %v without java started something:\n%s", args, out)
		}
	}
	if left, _ := os.ReadDir(tmp); len(left) > 0 {
		t.Errorf("left behind in TMPDIR: %v", left)
	}
}
