package main

import (
	"bufio"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestFlagErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{[]string{"--masters", "0"}, "--masters"},
		{[]string{"--masters", "2", "--listen", "127.0.0.1:0"}, "not 0 when --masters > 1"},
		{[]string{"--listen", "nohost"}, "--listen"},
		{[]string{"--agents", "-1"}, "--agents"},
		{[]string{"--agent-ports", "9-1"}, "ports"},
		{[]string{"--agent-cpus", "-2"}, "cpus"},
		{[]string{"--agent-attributes", "rack"}, "name:value"},
		{[]string{"--failure-rate", "2"}, "failure rate"},
		{[]string{"--heartbeat-interval", "-1s"}, "heartbeat interval"},
		{[]string{"--zk", "http://x/mesos"}, "zk://"},
		{[]string{"--zk", "zk://127.0.0.1:2181"}, "no path"},
		{[]string{"--zk", "zk://127.0.0.1/mesos"}, "server"},
		{[]string{"--status-retry-min", "2m", "--status-retry-max", "1m"}, "status retry"},
		{[]string{"extra"}, "unexpected arguments"},
		{[]string{"--no-such-flag"}, "no-such-flag"},
	} {
		_, err := parseFlags(tc.args, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%v: error %v, want one naming %q", tc.args, err, tc.msg)
		}
	}
	o, err := parseFlags([]string{"--listen", "127.0.0.1:7000", "--masters", "3", "--agent-attributes", "rack:r1;zone:a",
		"--zk", "zk://127.0.0.1:2181,127.0.0.1:2182/mesos/"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(o.cfg.Listen, ",") != "127.0.0.1:7000,127.0.0.1:7001,127.0.0.1:7002" ||
		o.agent.Attributes["zone"] != "a" || len(o.cfg.ZooKeeper) != 2 || o.cfg.ZKPath != "/mesos" {
		t.Fatalf("parsed %+v", o)
	}
}

// TestBinaryServesAndStopsOnSIGTERM builds the real binary, waits for its
// serving line, uses it, and stops it with SIGTERM.
func TestBinaryServesAndStopsOnSIGTERM(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "mesos-sim")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "--listen", "127.0.0.1:0", "--agents", "2")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	lines := make(chan string, 4)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	var line string
	select {
	case line = <-lines:
	case <-time.After(30 * time.Second):
		t.Fatal("no serving line within 30s")
	}
	fields := strings.Fields(line)
	if len(fields) < 3 || fields[0] != "mesos-sim" || fields[1] != "serving" {
		t.Fatalf("first line %q", line)
	}
	resp, err := http.Get(fields[2] + "/sim/state")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if strings.Count(string(body), `"hostname":"agent-`) != 2 {
		t.Fatalf("state: %s", body)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("still running 10s after SIGTERM")
	}
}
