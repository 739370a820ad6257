package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestMakeImageVersion checks how `make image` derives VERSION and tags the
// image, without running make: the Makefile's sed (its $$ unescaped) and
// the Dockerfile's must be the same expression, must give the appVersion
// of the chart (as this package's tests read it), and must read the forms
// Chart.yaml writes it in; the recipe must stamp VERSION into the binary
// and the image; and IMAGE must be the repository the chart deploys.
func TestMakeImageVersion(t *testing.T) {
	sed, err := exec.LookPath("sed")
	if err != nil {
		t.Fatalf("no sed to run the Makefile's expression with: %v", err)
	}
	root := filepath.Join("..", "..")
	read := func(name string) string {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(root, name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	mk, df := read("Makefile"), read("Dockerfile")

	m := regexp.MustCompile(`(?m)^VERSION\s*\?=\s*\$\(shell sed -n '([^']+)' charts/regent/Chart\.yaml\)\s*$`).FindStringSubmatch(mk)
	if m == nil {
		t.Fatal("the Makefile has no `VERSION ?= $(shell sed -n '...' charts/regent/Chart.yaml)`")
	}
	expr := strings.ReplaceAll(m[1], "$$", "$") // make's escape of a $ for the shell
	d := regexp.MustCompile(`sed -n '([^']+)' charts/regent/Chart\.yaml`).FindStringSubmatch(df)
	if d == nil {
		t.Fatal("the Dockerfile reads no VERSION from charts/regent/Chart.yaml")
	}
	if d[1] != expr {
		t.Errorf("VERSION: the Dockerfile's sed %q differs from the Makefile's %q", d[1], expr)
	}

	derive := func(chartYAML string) string {
		t.Helper()
		p := filepath.Join(t.TempDir(), "Chart.yaml")
		if err := os.WriteFile(p, []byte(chartYAML), 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(sed, "-n", expr, p).Output()
		if err != nil {
			t.Fatalf("sed -n %q: %v", expr, err)
		}
		return strings.TrimSuffix(string(out), "\n")
	}
	if got, want := derive(read("charts/regent/Chart.yaml")), chartAppVersion(t); got != want {
		t.Errorf("make image: VERSION=%q, want the chart's appVersion %q", got, want)
	}
	for line, want := range map[string]string{
		`appVersion: "0.2.0"`:            "0.2.0",
		`appVersion: 0.2.0`:              "0.2.0",
		`appVersion:  "1.0.0-rc.1+b.5"`:  "1.0.0-rc.1+b.5",
		`# appVersion: "9.9.9" was once`: "",
	} {
		yaml := "apiVersion: v2\nname: regent\n# The appVersion is what the image is tagged with.\nversion: 0.1.0\n" + line + "\nkubeVersion: \">=1.30.0-0\"\n"
		if got := derive(yaml); got != want {
			t.Errorf("VERSION from %q = %q, want %q", line, got, want)
		}
	}

	// The recipe stamps VERSION into the binary (`regent version`) and
	// the image's label, and tags the image IMAGE.
	for _, w := range []string{"-X main.version=$(VERSION)", "--version $(VERSION)", "--tag $(IMAGE)", "CGO_ENABLED=0"} {
		if !strings.Contains(mk, w) {
			t.Errorf("the Makefile's image recipe lacks %q", w)
		}
	}
	img := regexp.MustCompile(`(?m)^IMAGE\s*\?=\s*(\S+):\$\(VERSION\)\s*$`).FindStringSubmatch(mk)
	repo := regexp.MustCompile(`(?m)^image:\n(?:\s+#.*\n)*\s+repository:\s*(\S+)`).FindStringSubmatch(read("charts/regent/values.yaml"))
	if img == nil || repo == nil || img[1] != repo[1] {
		t.Errorf("make image tags %v, the chart deploys %v: want IMAGE ?= <image.repository>:$(VERSION)", img, repo)
	}
}
