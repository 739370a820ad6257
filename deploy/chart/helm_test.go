package chart

import (
	"path/filepath"
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
// it: values from -f files and --set strings, `helm lint --strict`, and
// `helm template` (a client-only dry-run install).
type helmSDK struct {
	name string
	// values merges value files and --set strings as `helm -f ... --set ...`.
	values func(files, set []string) (map[string]any, error)
	// lint returns the problems `helm lint --strict` fails on (warnings
	// and errors), empty when it passes.
	lint func(dir string, vals map[string]any) []string
	// template renders the chart: the manifest stream and NOTES.txt.
	template func(dir string, vals map[string]any, rel release) (manifest, notes string, err error)
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

// valuesFile is a file of charts/regent/ci.
func valuesFile(name string) string { return filepath.Join(chartDir, "ci", name) }

// mergeMaps merges b into a, recursing into maps, as `helm -f a -f b` does.
func mergeMaps(a, b map[string]any) map[string]any {
	out := make(map[string]any, len(a))
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		if v, ok := v.(map[string]any); ok {
			if av, ok := out[k].(map[string]any); ok {
				out[k] = mergeMaps(av, v)
				continue
			}
		}
		out[k] = v
	}
	return out
}
