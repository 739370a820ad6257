package tb

import (
	"os"
	"strings"
	"testing"
)

var _ TB = (testing.TB)(nil) // a test is a TB

func TestRunnerFatalEndsTheFunctionAndCleansUp(t *testing.T) {
	var log strings.Builder
	r := &Runner{Log: &log}
	var order []int
	var dir string
	reached := false
	err := r.Run(func() {
		dir = r.TempDir()
		r.Cleanup(func() { order = append(order, 1) })
		r.Cleanup(func() { order = append(order, 2) })
		r.Logf("step %d", 1)
		r.Errorf("soft %s", "failure")
		r.Fatalf("hard %s", "failure")
		reached = true
	})
	if reached {
		t.Error("the function went on after Fatalf")
	}
	if err == nil || !strings.Contains(err.Error(), "2 failures") || !strings.Contains(err.Error(), "soft failure") {
		t.Errorf("Run: %v", err)
	}
	if !r.Failed() || len(r.Errors()) != 2 {
		t.Errorf("failed %v, errors %v", r.Failed(), r.Errors())
	}
	if len(order) != 2 || order[0] != 2 || order[1] != 1 {
		t.Errorf("cleanups ran in order %v, want [2 1]", order)
	}
	if _, serr := os.Stat(dir); !os.IsNotExist(serr) {
		t.Errorf("temp dir %s still there: %v", dir, serr)
	}
	if !strings.Contains(log.String(), "step 1\n") || !strings.Contains(log.String(), "FAIL: hard failure") {
		t.Errorf("log:\n%s", log.String())
	}
}

func TestRunnerPassesAndRepanics(t *testing.T) {
	r := &Runner{}
	if err := r.Run(func() { r.Logf("quiet") }); err != nil || r.Failed() {
		t.Errorf("a passing run: %v", err)
	}
	defer func() {
		if p := recover(); p != "boom" {
			t.Errorf("recovered %v, want the function's own panic", p)
		}
	}()
	r.Run(func() { panic("boom") })
}
