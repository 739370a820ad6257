package chart

import (
	"bytes"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"
)

// Where the chart and the flag reference are, relative to this package.
var (
	chartDir = filepath.Join("..", "..", "charts", "regent")
	flagsDoc = filepath.Join("..", "..", "docs", "FLAGS.md")
)

// kubeVersion is the cluster version the chart is rendered for: the Helm
// SDKs default to v1.20, older than the chart's kubeVersion constraint.
const kubeVersion = "v1.33.0"

// release names the release a test renders, as `helm template NAME -n NAMESPACE`.
type release struct {
	name, namespace string
	// skipSchema is --skip-schema-validation: the templates' own checks
	// must then catch what the schema would have.
	skipSchema bool
}

var defaultRelease = release{name: "regent", namespace: "sched"}

// helmSDK is one major version of the Helm SDK, driven as its CLI drives
// it: values from -f files and --set strings (values), `helm lint
// --strict` (lint), and `helm template`, a client-only dry-run install
// (template).
//
// Its fields are the SDK calls whose packages and types are each
// version's own (helm3_test.go, helm4_test.go); its methods are the flow
// the two CLIs share, written once.
type helmSDK struct {
	name string
	// readValues parses one values file.
	readValues func(data []byte) (map[string]any, error)
	// mergeValues merges b into a, recursing into maps, as `-f a -f b`.
	mergeValues func(a, b map[string]any) map[string]any
	// parseSet applies one --set string to vals.
	parseSet func(s string, vals map[string]any) error
	// runLinters runs every linter on the chart in dir, for namespace at
	// kubeVersion, and returns the messages `--strict` fails on: warnings
	// and errors (see strictFailures).
	runLinters func(dir string, vals map[string]any, namespace string) ([]string, error)
	// render is a client-only install up to the rendered templates: load
	// the chart and its dependencies, coalesce vals for rel and validate
	// them against the schema (unless rel.skipSchema), check the chart's
	// kubeVersion against kubeVersion, and render. It returns the files by
	// path and the chart's name.
	render func(dir string, vals map[string]any, rel release) (files map[string]string, chart string, err error)
	// sortManifests orders rendered files as an install applies them.
	sortManifests func(files map[string]string) ([]manifestFile, error)
}

// manifestFile is one rendered template: its path and its YAML.
type manifestFile struct{ name, content string }

// values merges value files and --set strings as `helm -f ... --set ...`
// (pkg/cli/values.Options.MergeValues): files merged in order, then --set.
func (h helmSDK) values(files, set []string) (map[string]any, error) {
	base := map[string]any{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		cur, err := h.readValues(b)
		if err != nil {
			return nil, fmt.Errorf("failed to parse %s: %w", f, err)
		}
		base = h.mergeValues(base, cur)
	}
	for _, s := range set {
		if err := h.parseSet(s, base); err != nil {
			return nil, fmt.Errorf("failed parsing --set data: %w", err)
		}
	}
	return base, nil
}

// lint returns the problems `helm lint --strict` fails on (warnings and
// errors), empty when it passes; as pkg/action.Lint with Strict.
func (h helmSDK) lint(dir string, vals map[string]any) []string {
	problems, err := h.runLinters(dir, vals, defaultRelease.namespace)
	if err != nil {
		return []string{err.Error()}
	}
	return problems
}

// template renders the chart as `helm template` (pkg/action.Install with
// a client-only dry run): the manifest stream, its templates in install
// order, and NOTES.txt, set apart.
func (h helmSDK) template(dir string, vals map[string]any, rel release) (manifest, notes string, err error) {
	files, chart, err := h.render(dir, vals, rel)
	if err != nil {
		return "", "", err
	}
	notes = files[path.Join(chart, "templates", "NOTES.txt")]
	for k := range files {
		if strings.HasSuffix(k, "NOTES.txt") {
			delete(files, k)
		}
	}
	manifests, err := h.sortManifests(files)
	if err != nil {
		return "", "", err
	}
	var b bytes.Buffer
	for _, m := range manifests {
		fmt.Fprintf(&b, "---\n# Source: %s\n%s\n", m.name, m.content)
	}
	return b.String(), notes, nil
}

// lintMessage has the fields of both SDKs' lint/support.Message, which
// convert to it.
type lintMessage struct {
	Severity int
	Path     string
	Err      error
}

// strictFailures is what `helm lint --strict` fails on among msgs, the
// messages of either SDK's linter: those of severity warningSev (that
// SDK's support.WarningSev) or above.
func strictFailures[M ~struct {
	Severity int
	Path     string
	Err      error
}](msgs []M, warningSev int) []string {
	var out []string
	for _, m := range msgs {
		if m := lintMessage(m); m.Severity >= warningSev {
			out = append(out, m.Err.Error())
		}
	}
	return out
}

// sdks are the Helm versions every test runs against.
var sdks = []helmSDK{helm3, helm4}

// forEachSDK runs f as a subtest per Helm version.
func forEachSDK(t *testing.T, f func(t *testing.T, h helmSDK)) {
	t.Helper()
	for _, h := range sdks {
		t.Run(h.name, func(t *testing.T) {
			t.Parallel()
			f(t, h)
		})
	}
}

// valuesFiles are files of charts/regent/ci.
func valuesFiles(names ...string) []string {
	var paths []string
	for _, n := range names {
		paths = append(paths, filepath.Join(chartDir, "ci", n))
	}
	return paths
}
