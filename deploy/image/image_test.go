package main

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"go.uber.org/goleak"
)

const testTag = "ghcr.io/regent-sched/regent:test"

// chartAppVersion is the chart's appVersion: `make image` stamps it into
// the binary, so the test does too.
func chartAppVersion(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "charts", "regent", "Chart.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^appVersion:\s*"?([^"\s]+)"?\s*$`).FindSubmatch(b)
	if m == nil {
		t.Fatal("Chart.yaml has no appVersion")
	}
	return string(m[1])
}

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// regentBinary builds the real regent binary as `make image` does: static,
// stripped, the version stamped in. Built once per test binary.
func regentBinary(t *testing.T) string {
	t.Helper()
	version := chartAppVersion(t)
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "regent-image-test")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "regent")
		cmd := exec.Command("go", "build", "-ldflags", "-s -w -X main.version="+version, "-o", binPath, "./cmd/regent")
		cmd.Dir = filepath.Join("..", "..")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			binErr = errors.New("go build ./cmd/regent: " + err.Error() + "\n" + string(out))
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// TestImage builds the image from the real binary into both outputs and
// checks what a container runtime would see.
func TestImage(t *testing.T) {
	bin := regentBinary(t)
	version := chartAppVersion(t)
	dir := t.TempDir()
	lay, tb := filepath.Join(dir, "layout"), filepath.Join(dir, "image.tar")
	err := run([]string{"--binary", bin, "--version", version, "--tag", testTag, "--layout", lay, "--tar", tb})
	if err != nil {
		t.Fatal(err)
	}
	img := layoutImage(t, lay)

	// The manifest: OCI, two layers.
	mf, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	if mf.MediaType != types.OCIManifestSchema1 || mf.Config.MediaType != types.OCIConfigJSON {
		t.Errorf("manifest %s with config %s, want OCI", mf.MediaType, mf.Config.MediaType)
	}
	if len(mf.Layers) != 2 {
		t.Fatalf("%d layers, want 2 (base, binary)", len(mf.Layers))
	}
	for _, l := range mf.Layers {
		if l.MediaType != types.OCILayer {
			t.Errorf("layer media type %s, want %s", l.MediaType, types.OCILayer)
		}
	}

	// The config: non-root, the binary as entrypoint, `run` by default.
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	c := cf.Config
	if c.User != "65532:65532" {
		t.Errorf("user %q, want 65532:65532", c.User)
	}
	if strings.Join(c.Entrypoint, " ") != "/usr/local/bin/regent" || strings.Join(c.Cmd, " ") != "run" {
		t.Errorf("entrypoint %q cmd %q, want /usr/local/bin/regent run", c.Entrypoint, c.Cmd)
	}
	if cf.OS != "linux" || cf.Architecture != goarchOf(t, bin) {
		t.Errorf("platform %s/%s", cf.OS, cf.Architecture)
	}
	if c.Labels["org.opencontainers.image.version"] != version {
		t.Errorf("version label %q, want %q", c.Labels["org.opencontainers.image.version"], version)
	}
	if _, ok := c.ExposedPorts["8080/tcp"]; !ok {
		t.Errorf("exposed ports %v, want 8080/tcp", c.ExposedPorts)
	}

	// The layers: the users and certificates, then the binary.
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	base := layerFiles(t, layers[0])
	if !strings.Contains(string(base["etc/passwd"].data), "nonroot:x:65532:65532:") {
		t.Errorf("/etc/passwd has no user 65532:\n%s", base["etc/passwd"].data)
	}
	if !strings.Contains(string(base["etc/group"].data), "nonroot:x:65532:") {
		t.Errorf("/etc/group has no group 65532:\n%s", base["etc/group"].data)
	}
	host, err := os.ReadFile("/etc/ssl/certs/ca-certificates.crt")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(base["etc/ssl/certs/ca-certificates.crt"].data, host) {
		t.Error("the image's CA certificates differ from the build machine's")
	}
	if tmp, ok := base["tmp/"]; !ok || tmp.hdr.Mode&0o1777 != 0o1777 {
		t.Error("no world-writable sticky /tmp")
	}
	top := layerFiles(t, layers[1])
	rb, ok := top["usr/local/bin/regent"]
	if !ok {
		t.Fatalf("the binary layer has no usr/local/bin/regent: %v", keys(top))
	}
	if rb.hdr.Typeflag != tar.TypeReg || rb.hdr.Mode&0o111 != 0o111 || rb.hdr.Mode&0o022 != 0 || rb.hdr.Uid != 0 {
		t.Errorf("usr/local/bin/regent: type %c mode %o uid %d, want a root-owned executable no one else can write", rb.hdr.Typeflag, rb.hdr.Mode, rb.hdr.Uid)
	}

	// The binary runs once extracted: `regent version` names the version.
	extracted := filepath.Join(t.TempDir(), "regent")
	if err := os.WriteFile(extracted, rb.data, os.FileMode(rb.hdr.Mode)&os.ModePerm); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(extracted, "version").CombinedOutput()
	if err != nil {
		t.Fatalf("regent version: %v\n%s", err, out)
	}
	if !strings.HasPrefix(string(out), "regent "+version+" ") {
		t.Errorf("regent version printed %q, want it to start with %q", out, "regent "+version)
	}

	// The tarball holds the same image under the tag, for docker load.
	ref, err := name.NewTag(testTag)
	if err != nil {
		t.Fatal(err)
	}
	fromTar, err := tarball.ImageFromPath(tb, &ref)
	if err != nil {
		t.Fatalf("tarball: %v", err)
	}
	// (A docker tarball keeps the config and the layers, not the manifest.)
	if c1, c2 := configName(t, img), configName(t, fromTar); c1 != c2 {
		t.Errorf("tarball image config %s differs from the layout's %s", c2, c1)
	}
	m, err := tarball.LoadManifest(func() (io.ReadCloser, error) { return os.Open(tb) })
	if err != nil {
		t.Fatal(err)
	}
	if len(m) != 1 || len(m[0].RepoTags) != 1 || m[0].RepoTags[0] != testTag {
		t.Errorf("tarball manifest.json %+v, want one image tagged %s", m, testTag)
	}
}

// TestImageIsReproducible builds twice: same binary, same digest.
func TestImageIsReproducible(t *testing.T) {
	bin := regentBinary(t)
	var digests []v1.Hash
	for range 2 {
		img, err := build(spec{Binary: bin, CACerts: "/etc/ssl/certs/ca-certificates.crt", Version: "v"})
		if err != nil {
			t.Fatal(err)
		}
		digests = append(digests, digest(t, img))
	}
	if digests[0] != digests[1] {
		t.Errorf("two builds of the same binary: %s and %s", digests[0], digests[1])
	}
}

// TestImageRejects checks the errors a wrong input gets.
func TestImageRejects(t *testing.T) {
	script := filepath.Join(t.TempDir(), "regent.sh")
	if err := os.WriteFile(script, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no binary", []string{"--tar", "x.tar"}, "--binary is required"},
		{"no output", []string{"--binary", "/bin/sh"}, "nothing to write"},
		{"dynamic binary", []string{"--binary", "/bin/sh", "--tar", filepath.Join(t.TempDir(), "x.tar")}, "dynamically linked"},
		{"not an executable", []string{"--binary", script, "--tar", filepath.Join(t.TempDir(), "x.tar")}, "not a linux executable"},
		{"bad tag", []string{"--binary", "/bin/sh", "--tar", "x.tar", "--tag", "Not A Tag"}, "--tag"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := run(tc.args)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("run(%q) = %v, want an error containing %q", tc.args, err, tc.want)
			}
		})
	}
}

// layoutImage is the one image of the OCI layout at dir, after checking
// its index names the tag.
func layoutImage(t *testing.T, dir string) v1.Image {
	t.Helper()
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		t.Fatalf("layout: %v", err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(im.Manifests) != 1 {
		t.Fatalf("layout index has %d manifests, want 1", len(im.Manifests))
	}
	d := im.Manifests[0]
	if d.Annotations["org.opencontainers.image.ref.name"] != "test" || d.Annotations["io.containerd.image.name"] != testTag {
		t.Errorf("layout annotations %v, want the tag and the full reference", d.Annotations)
	}
	img, err := idx.Image(d.Digest)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

type tarFile struct {
	hdr  *tar.Header
	data []byte
}

// layerFiles reads a layer's files by path.
func layerFiles(t *testing.T, l v1.Layer) map[string]tarFile {
	t.Helper()
	rc, err := l.Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	files := map[string]tarFile{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return files
		}
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		files[h.Name] = tarFile{h, data}
	}
}

func keys(m map[string]tarFile) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func digest(t *testing.T, img v1.Image) v1.Hash {
	t.Helper()
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func configName(t *testing.T, img v1.Image) v1.Hash {
	t.Helper()
	h, err := img.ConfigName()
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func goarchOf(t *testing.T, bin string) string {
	t.Helper()
	arch, err := staticArch(bin)
	if err != nil {
		t.Fatal(err)
	}
	return arch
}

// TestMain removes the binary built for the tests and ends with a
// goroutine-leak check.
func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" {
		os.RemoveAll(filepath.Dir(binPath))
	}
	if err := goleak.Find(); code == 0 && err != nil {
		fmt.Fprintln(os.Stderr, "goleak:", err)
		code = 1
	}
	os.Exit(code)
}
