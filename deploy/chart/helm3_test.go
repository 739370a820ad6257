package chart

import (
	"fmt"

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
	// As pkg/cli/values, which parses -f files itself.
	readValues: func(data []byte) (map[string]any, error) {
		vals := map[string]any{}
		return vals, yaml.Unmarshal(data, &vals)
	},
	mergeValues: mergeMaps,
	parseSet:    strvals.ParseInto,
	runLinters: func(dir string, vals map[string]any, namespace string) ([]string, error) {
		kv, err := chartutil.ParseKubeVersion(kubeVersion)
		if err != nil {
			return nil, err
		}
		return strictFailures(lint.AllWithKubeVersionAndSchemaValidation(dir, vals, namespace, kv, false).Messages, support.WarningSev), nil
	},
	render: func(dir string, vals map[string]any, rel release) (map[string]string, string, error) {
		ch, err := loader.Load(dir)
		if err != nil {
			return nil, "", fmt.Errorf("load chart: %w", err)
		}
		if err := chartutil.ProcessDependenciesWithMerge(ch, vals); err != nil {
			return nil, "", err
		}
		caps := chartutil.DefaultCapabilities.Copy()
		kv, err := chartutil.ParseKubeVersion(kubeVersion)
		if err != nil {
			return nil, "", err
		}
		caps.KubeVersion = *kv
		opts := chartutil.ReleaseOptions{Name: rel.name, Namespace: rel.namespace, Revision: 1, IsInstall: true}
		top, err := chartutil.ToRenderValuesWithSchemaValidation(ch, vals, opts, caps, rel.skipSchema)
		if err != nil {
			return nil, "", err
		}
		if c := ch.Metadata.KubeVersion; c != "" && !chartutil.IsCompatibleRange(c, caps.KubeVersion.String()) {
			return nil, "", fmt.Errorf("chart requires kubeVersion: %s which is incompatible with Kubernetes %s", c, caps.KubeVersion.String())
		}
		files, err := engine.Render(ch, top)
		return files, ch.Name(), err
	},
	sortManifests: func(files map[string]string) (out []manifestFile, err error) {
		// The VersionSet is render's caps.APIVersions, as pkg/action passes.
		_, ms, err := releaseutil.SortManifests(files, chartutil.DefaultCapabilities.APIVersions, releaseutil.InstallOrder)
		for _, m := range ms {
			out = append(out, manifestFile{m.Name, m.Content})
		}
		return out, err
	},
}

// mergeMaps merges b into a, recursing into maps, as `helm -f a -f b`
// does: Helm 3's pkg/cli/values has it unexported (Helm 4 exports it as
// loader.MergeMaps).
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
