package main

import (
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
)

// TestDockerignore checks the root .dockerignore with Docker's own
// matcher (BuildKit's): the Dockerfile's `COPY . .` must not send the
// history, build outputs or test artifacts, and must still send every
// file `go build ./cmd/regent` reads and the Chart.yaml VERSION comes from.
func TestDockerignore(t *testing.T) {
	root := filepath.Join("..", "..")
	f, err := os.Open(filepath.Join(root, ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	patterns, err := ignorefile.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	pm, err := patternmatcher.New(patterns)
	if err != nil {
		t.Fatal(err)
	}
	ignored := func(p string) bool {
		t.Helper()
		m, err := pm.MatchesOrParentMatches(filepath.ToSlash(p))
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		return m
	}

	for _, p := range []string{
		".git/HEAD", ".git/objects/pack/x.pack",
		"bin/regent", "bin/regent-image.tar", "bin/image/regent",
		"regent", "mesos-sim", // go build's outputs at the root
		".cache/go-build/00/x", ".artifacts/integration/browser/status.png",
		"regent.test", "cmd/regent/regent.test", "persist/persist.test",
		"cover.out", "ha/cpu.out", "persist/mem.prof",
		"deploy/go.mod", "deploy/image/main.go",
	} {
		if !ignored(p) {
			t.Errorf(".dockerignore sends %s to the builder", p)
		}
	}

	// What the build reads: go.mod, go.sum, Chart.yaml, and the files of
	// every main-module package ./cmd/regent is built from.
	need := []string{"go.mod", "go.sum", "charts/regent/Chart.yaml"}
	cmd := exec.Command("go", "list", "-deps", "-json=Dir,Module,GoFiles,EmbedFiles", "./cmd/regent")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOFLAGS=-mod=readonly")
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("go list: %v\n%s", err, ee.Stderr)
		}
		t.Fatal(err)
	}
	absRoot, err := filepath.Abs(root)
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	pkgs := 0
	for {
		var pkg struct {
			Dir        string
			Module     *struct{ Path, Dir string }
			GoFiles    []string
			EmbedFiles []string
		}
		if err := dec.Decode(&pkg); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		if pkg.Module == nil || pkg.Module.Dir != absRoot {
			continue // the standard library or a dependency from the module cache
		}
		pkgs++
		rel, err := filepath.Rel(absRoot, pkg.Dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range append(pkg.GoFiles, pkg.EmbedFiles...) {
			need = append(need, filepath.Join(rel, f))
		}
	}
	if pkgs == 0 {
		t.Fatalf("go list found no package of the main module in %s", out)
	}
	for _, p := range need {
		if ignored(p) {
			t.Errorf(".dockerignore keeps %s, which the Dockerfile's build needs, out of the context", p)
		}
	}

	// With .git left out, the build must not stamp VCS information.
	b, err := os.ReadFile(filepath.Join(root, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	if ignored(".git") && !strings.Contains(string(b), "-buildvcs=false") {
		t.Error("the Dockerfile's go build needs -buildvcs=false: .dockerignore leaves .git out")
	}
}
