package chart

import (
	"bytes"
	"fmt"
	"os"
	"path"
	"strings"

	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	"helm.sh/helm/v3/pkg/lint"
	"helm.sh/helm/v3/pkg/lint/support"
	"helm.sh/helm/v3/pkg/releaseutil"
	"helm.sh/helm/v3/pkg/strvals"
	"sigs.k8s.io/yaml"
)

// helm3 is helm.sh/helm/v3, through the packages its CLI's lint and
// template commands run (not pkg/action, whose Kubernetes client, registry
// and storage code a client-side render never uses and which would double
// the module's build).
var helm3 = helmSDK{
	name: "helm3",
	// As pkg/cli/values.Options.MergeValues: files merged in order, then --set.
	values: func(files, set []string) (map[string]any, error) {
		base := map[string]any{}
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				return nil, err
			}
			cur := map[string]any{}
			if err := yaml.Unmarshal(b, &cur); err != nil {
				return nil, fmt.Errorf("failed to parse %s: %w", f, err)
			}
			base = mergeMaps(base, cur)
		}
		for _, s := range set {
			if err := strvals.ParseInto(s, base); err != nil {
				return nil, fmt.Errorf("failed parsing --set data: %w", err)
			}
		}
		return base, nil
	},
	// As pkg/action.Lint with Strict: warnings fail too.
	lint: func(dir string, vals map[string]any) []string {
		kv, err := chartutil.ParseKubeVersion(kubeVersion)
		if err != nil {
			return []string{err.Error()}
		}
		var out []string
		for _, m := range lint.AllWithKubeVersionAndSchemaValidation(dir, vals, defaultRelease.namespace, kv, false).Messages {
			if m.Severity >= support.WarningSev {
				out = append(out, m.Err.Error())
			}
		}
		return out
	},
	// As pkg/action.Install with ClientOnly and DryRun (helm template):
	// values coalesced and validated against the schema, the chart's
	// kubeVersion checked, templates rendered, NOTES.txt set apart and the
	// manifests sorted in install order.
	template: func(dir string, vals map[string]any, rel release) (string, string, error) {
		ch, err := loader.Load(dir)
		if err != nil {
			return "", "", fmt.Errorf("load chart: %w", err)
		}
		if err := chartutil.ProcessDependenciesWithMerge(ch, vals); err != nil {
			return "", "", err
		}
		caps := chartutil.DefaultCapabilities.Copy()
		kv, err := chartutil.ParseKubeVersion(kubeVersion)
		if err != nil {
			return "", "", err
		}
		caps.KubeVersion = *kv
		opts := chartutil.ReleaseOptions{Name: rel.name, Namespace: rel.namespace, Revision: 1, IsInstall: true}
		top, err := chartutil.ToRenderValuesWithSchemaValidation(ch, vals, opts, caps, rel.skipSchema)
		if err != nil {
			return "", "", err
		}
		if c := ch.Metadata.KubeVersion; c != "" && !chartutil.IsCompatibleRange(c, caps.KubeVersion.String()) {
			return "", "", fmt.Errorf("chart requires kubeVersion: %s which is incompatible with Kubernetes %s", c, caps.KubeVersion.String())
		}
		files, err := engine.Render(ch, top)
		if err != nil {
			return "", "", err
		}
		notes := files[path.Join(ch.Name(), "templates", "NOTES.txt")]
		for k := range files {
			if strings.HasSuffix(k, "NOTES.txt") {
				delete(files, k)
			}
		}
		_, manifests, err := releaseutil.SortManifests(files, caps.APIVersions, releaseutil.InstallOrder)
		if err != nil {
			return "", "", err
		}
		var b bytes.Buffer
		for _, m := range manifests {
			fmt.Fprintf(&b, "---\n# Source: %s\n%s\n", m.Name, m.Content)
		}
		return b.String(), notes, nil
	},
}
