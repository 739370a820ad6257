package browser

import (
	"context"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// callTimeout bounds one browser call that is expected to succeed; a call
// takes about a second.
const callTimeout = 30 * time.Second

// statusPage is a small server-rendered page in the manner of regent's
// status page, with a stylesheet and one script.
const statusPage = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>regent status</title>
<link rel="stylesheet" href="/style.css">
</head>
<body>
<h1>Regent status</h1>
<table>
<thead><tr><th>Framework</th><th>Role</th><th>Tasks</th></tr></thead>
<tbody>
<tr><td>regent-1</td><td>leader</td><td>42</td></tr>
<tr><td>regent-2</td><td>standby</td><td>0</td></tr>
</tbody>
</table>
<p id="js"></p>
<script>document.getElementById("js").textContent = "drawn by script";</script>
</body>
</html>
`

// styleSheet paints the page in colours a screenshot test can look for.
const styleSheet = `body { background: #1e3a5f; color: #ffffff; font: 16px sans-serif; margin: 24px; }
h1 { color: #ffd166; font-size: 40px; }
table { border-collapse: collapse; }
th, td { border: 1px solid #ffffff; padding: 4px 12px; }
`

var (
	pageBackground = color.RGBA{0x1e, 0x3a, 0x5f, 0xff}
	headingColour  = color.RGBA{0xff, 0xd1, 0x66, 0xff}
)

// site is a test server on 127.0.0.1 serving statusPage.
type site struct {
	url      string
	cssHits  atomic.Int32
	requests atomic.Int32
}

func newSite(t *testing.T) *site {
	t.Helper()
	s := &site{}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		s.requests.Add(1)
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, statusPage)
	})
	mux.HandleFunc("GET /style.css", func(w http.ResponseWriter, r *http.Request) {
		s.cssHits.Add(1)
		w.Header().Set("Content-Type", "text/css")
		fmt.Fprint(w, styleSheet)
	})
	srv := httptest.NewServer(mux) // listens on 127.0.0.1
	t.Cleanup(srv.Close)
	s.url = srv.URL + "/"
	return s
}

// requireChromium fails the test, with the command that installs it, when
// Chromium is missing. It never skips.
func requireChromium(t *testing.T) {
	t.Helper()
	if _, err := Find(); err != nil {
		t.Fatalf("these tests need headless Chromium: %v", err)
	}
}

// isolateTemp points TMPDIR at a directory of this test, so that the
// temporary directories of its browser calls (and only those) are under
// it, and returns that directory. Its path is kept short (t.TempDir's
// would not be) so that Chromium's socket in it fits the kernel's limit
// and the calls use it rather than a directory under /tmp.
func isolateTemp(t *testing.T) string {
	t.Helper()
	root, err := os.MkdirTemp("", "browser-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(root) })
	t.Setenv("TMPDIR", root)
	return root
}

// artifactDir is where screenshots are kept: $REGENT_TEST_ARTIFACTS if
// set, so that a person or CI can look at them afterwards, else a
// temporary directory of the test.
func artifactDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("REGENT_TEST_ARTIFACTS")
	if dir == "" {
		return t.TempDir()
	}
	dir = filepath.Join(dir, "integration", "browser")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("artifact dir: %v", err)
	}
	return dir
}

// checkNoLeftovers fails the test if a browser call left anything behind:
// a child process of the test (running or unreaped), a process whose
// command line names a directory under root, or a directory of the call
// under root. Chromium's orphans that are dead but not yet reaped by PID 1
// have no command line and are not the test's children: they do not count.
func checkNoLeftovers(t *testing.T, root string) {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatalf("read /proc: %v", err)
	}
	self := os.Getpid()
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue // gone meanwhile
		}
		cmdline, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		args := strings.ReplaceAll(strings.TrimRight(string(cmdline), "\x00"), "\x00", " ")
		i := strings.LastIndexByte(string(stat), ')')
		f := strings.Fields(string(stat)[i+1:])
		if len(f) < 2 {
			continue
		}
		state, ppid := f[0], f[1]
		if ppid == strconv.Itoa(self) {
			t.Errorf("child process %d (state %s) of the test left behind: %.200s", pid, state, args)
		} else if strings.Contains(args, root) {
			t.Errorf("process %d (state %s) of a browser call left behind: %.200s", pid, state, args)
		}
	}
	left, err := filepath.Glob(filepath.Join(root, tempPrefix+"*"))
	if err != nil {
		t.Fatal(err)
	}
	if len(left) > 0 {
		t.Errorf("temporary directories left behind: %v", left)
	}
}

// closedURL returns a loopback URL on which nothing listens.
func closedURL(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr + "/"
}

func TestDumpDOM(t *testing.T) {
	requireChromium(t)
	root := isolateTemp(t)
	s := newSite(t)

	ctx, cancel := context.WithTimeout(t.Context(), callTimeout)
	defer cancel()
	start := time.Now()
	dom, err := DumpDOM(ctx, s.url)
	t.Logf("DumpDOM took %v", time.Since(start).Round(time.Millisecond))
	checkNoLeftovers(t, root)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"<h1>Regent status</h1>", "<td>regent-1</td>", "<td>leader</td>", "<td>42</td>", "drawn by script"} {
		if !strings.Contains(dom, want) {
			t.Errorf("DOM lacks %q:\n%s", want, dom)
		}
	}
	text := VisibleText(dom)
	want := "Regent status\nFramework\tRole\tTasks\nregent-1\tleader\t42\nregent-2\tstandby\t0\ndrawn by script"
	if text != want {
		t.Errorf("VisibleText of the DOM:\n got %q\nwant %q", text, want)
	}
	if n := s.cssHits.Load(); n == 0 {
		t.Errorf("the browser did not fetch the stylesheet")
	}
}

func TestLoadFailure(t *testing.T) {
	requireChromium(t)
	root := isolateTemp(t)
	url := closedURL(t)

	ctx, cancel := context.WithTimeout(t.Context(), callTimeout)
	defer cancel()
	start := time.Now()
	dom, err := DumpDOM(ctx, url)
	t.Logf("DumpDOM of a closed port took %v", time.Since(start).Round(time.Millisecond))
	checkNoLeftovers(t, root)
	t.Logf("DumpDOM's error: %v", err)
	if !errors.Is(err, ErrLoadFailed) || !strings.Contains(err.Error(), "ERR_CONNECTION_REFUSED") {
		t.Errorf("DumpDOM(%s) = %q, %v; want an error wrapping ErrLoadFailed naming ERR_CONNECTION_REFUSED", url, dom, err)
	}

	png := filepath.Join(t.TempDir(), "refused.png")
	start = time.Now()
	err = Screenshot(ctx, url, png, 320, 200)
	t.Logf("Screenshot of a closed port took %v", time.Since(start).Round(time.Millisecond))
	checkNoLeftovers(t, root)
	if !errors.Is(err, ErrLoadFailed) {
		t.Errorf("Screenshot(%s) = %v, want an error wrapping ErrLoadFailed", url, err)
	}
	if _, statErr := os.Stat(png); !os.IsNotExist(statErr) {
		t.Errorf("Screenshot of a page that did not load wrote %s (stat: %v)", png, statErr)
	}
}

func TestScreenshot(t *testing.T) {
	requireChromium(t)
	root := isolateTemp(t)
	s := newSite(t)
	dir := artifactDir(t)

	for _, size := range []struct{ w, h int }{{800, 600}, {1024, 300}} {
		t.Run(fmt.Sprintf("%dx%d", size.w, size.h), func(t *testing.T) {
			path := filepath.Join(dir, fmt.Sprintf("status-%dx%d.png", size.w, size.h))
			ctx, cancel := context.WithTimeout(t.Context(), callTimeout)
			defer cancel()
			start := time.Now()
			err := Screenshot(ctx, s.url, path, size.w, size.h)
			t.Logf("Screenshot took %v; saved %s", time.Since(start).Round(time.Millisecond), path)
			checkNoLeftovers(t, root)
			if err != nil {
				t.Fatal(err)
			}
			img := decodePNG(t, path)
			if b := img.Bounds(); b.Dx() != size.w || b.Dy() != size.h {
				t.Errorf("screenshot is %dx%d, want %dx%d", b.Dx(), b.Dy(), size.w, size.h)
			}
			colours := countColours(img)
			if colours < 2 {
				t.Errorf("screenshot is a single colour")
			}
			// The stylesheet applied: the corner shows the page background.
			if c := img.At(1, 1); !near(c, pageBackground) {
				t.Errorf("corner pixel is %v, want the page background %v", c, pageBackground)
			}
			// The heading was drawn: text needs a font, and this is its colour.
			if n := countNear(img, headingColour); n < 100 {
				t.Errorf("%d pixels in the heading colour %v, want at least 100 (is a font installed?)", n, headingColour)
			}
			t.Logf("%d colours, %d heading pixels", colours, countNear(img, headingColour))
		})
	}
}

func TestTimeoutKillsBrowser(t *testing.T) {
	requireChromium(t)
	root := isolateTemp(t)
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select { // never answers while the browser waits
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) }) // runs before srv.Close

	const timeout = 3 * time.Second
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	start := time.Now()
	_, err := DumpDOM(ctx, srv.URL+"/")
	elapsed := time.Since(start)
	t.Logf("DumpDOM of a page that never answers returned after %v", elapsed.Round(time.Millisecond))
	checkNoLeftovers(t, root)
	t.Logf("DumpDOM's error: %v", err)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("DumpDOM of a page that never answers = %v, want an error wrapping context.DeadlineExceeded", err)
	}
	if elapsed > timeout+reapTimeout {
		t.Errorf("DumpDOM returned %v after a %v deadline", elapsed, timeout)
	}
}

func TestRefusedBeforeStart(t *testing.T) {
	isolateTemp(t)
	png := filepath.Join(t.TempDir(), "x.png")
	calls := []struct {
		name string
		call func(context.Context) error
		want string
	}{
		{"not loopback", func(ctx context.Context) error {
			_, err := DumpDOM(ctx, "http://example.invalid/")
			return err
		}, "not loopback"},
		{"zero width", func(ctx context.Context) error {
			return Screenshot(ctx, "http://127.0.0.1:1/", png, 0, 100)
		}, "size 0x100"},
		{"too tall", func(ctx context.Context) error {
			return Screenshot(ctx, "http://127.0.0.1:1/", png, 100, maxSide+1)
		}, "want 1 to"},
		{"no path", func(ctx context.Context) error {
			return Screenshot(ctx, "http://127.0.0.1:1/", "", 100, 100)
		}, "no path"},
	}
	for _, c := range calls {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), callTimeout)
			defer cancel()
			start := time.Now()
			err := c.call(ctx)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %v, want one containing %q", err, c.want)
			}
			if d := time.Since(start); d > time.Second { // a Chromium run takes longer
				t.Errorf("refusing took %v: did it start the browser?", d)
			}
		})
	}
}

func decodePNG(t *testing.T, path string) image.Image {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("decode %s: %v", path, err)
	}
	return img
}

func countColours(img image.Image) int {
	seen := map[color.RGBA]bool{}
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			seen[color.RGBAModel.Convert(img.At(x, y)).(color.RGBA)] = true
		}
	}
	return len(seen)
}

func countNear(img image.Image, want color.RGBA) int {
	n := 0
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			if near(img.At(x, y), want) {
				n++
			}
		}
	}
	return n
}

// near reports whether c is want give or take a little rounding.
func near(c color.Color, want color.RGBA) bool {
	got := color.RGBAModel.Convert(c).(color.RGBA)
	d := func(a, b uint8) int {
		if a > b {
			return int(a - b)
		}
		return int(b - a)
	}
	return d(got.R, want.R) <= 3 && d(got.G, want.G) <= 3 && d(got.B, want.B) <= 3
}
