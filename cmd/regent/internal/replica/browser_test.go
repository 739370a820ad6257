package replica

import (
	"context"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/regent-sched/regent/cmd/regent/internal/api"
	"github.com/regent-sched/regent/integration/browser"
)

// TestStatusPageInABrowser opens a standby's status page in headless
// Chromium and checks what a person would read there; the screenshot is
// kept in $REGENT_TEST_ARTIFACTS (else the test's temporary directory).
func TestStatusPageInABrowser(t *testing.T) {
	w := newWorld(t, 3)
	r1 := w.start(t, w.configFor(t, "leader-one"), Options{})
	eventually(t, 30*time.Second, "3 running tasks", allRunning(w.sim, 3))
	r2 := w.start(t, w.configFor(t, "standby-two"), Options{})
	eventually(t, 10*time.Second, "the standby sees the leader", func() bool {
		return r2.Runner().Status().Leader.ID == "leader-one"
	})
	eventually(t, 10*time.Second, "the leader's state shows 3 running tasks", func() bool {
		_, _, body := call(t, "GET", r1.base+"/v1/info", "")
		return decode[api.Info](t, body).TasksByState["TASK_RUNNING"] == 3
	})
	_, _, body := call(t, "GET", r1.base+"/v1/info", "")
	fwid := decode[api.Info](t, body).Framework.ID

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	dom, err := browser.DumpDOM(ctx, r2.base+"/")
	if err != nil {
		t.Fatal(err)
	}
	text := browser.VisibleText(dom)
	for _, want := range []string{
		"regent · regent-test",
		"This page is served by replica standby-two (standby, ready)",
		"Framework data from leader-one",
		"Leader\nleader-one",
		fwid,
		"subscribed",
		"TASK_RUNNING: 3",
		"leader-one\tleader\t" + r1.base,
		"standby-two\tstandby\t" + r2.base,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("the page does not show %q; it shows:\n%s", want, text)
		}
	}
	for _, a := range w.sim.AgentIDs() {
		if !strings.Contains(text, a) {
			t.Errorf("the page does not show agent %s", a)
		}
	}

	dir := os.Getenv("REGENT_TEST_ARTIFACTS")
	if dir == "" {
		dir = t.TempDir()
	}
	dir = filepath.Join(dir, "cmd/regent/status-page")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	shot := filepath.Join(dir, "standby.png")
	if err := browser.Screenshot(ctx, r2.base+"/", shot, 1280, 900); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(shot)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if b := img.Bounds(); b.Dx() != 1280 || b.Dy() != 900 {
		t.Errorf("screenshot is %v", b)
	}
	t.Logf("screenshot: %s", shot)
}
