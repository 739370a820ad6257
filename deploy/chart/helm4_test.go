package chart

import (
	"bytes"
	"context"
	"fmt"

	"helm.sh/helm/v4/pkg/chart/common"
	"helm.sh/helm/v4/pkg/chart/common/util"
	"helm.sh/helm/v4/pkg/chart/v2/lint"
	"helm.sh/helm/v4/pkg/chart/v2/lint/support"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	chartutil "helm.sh/helm/v4/pkg/chart/v2/util"
	"helm.sh/helm/v4/pkg/engine"
	releaseutil "helm.sh/helm/v4/pkg/release/v1/util"
	"helm.sh/helm/v4/pkg/strvals"
)

// helm4 is helm.sh/helm/v4, through the packages its CLI's lint and
// template commands run (see helm3 for why not pkg/action).
var helm4 = helmSDK{
	name: "helm4",
	readValues: func(data []byte) (map[string]any, error) {
		return loader.LoadValues(bytes.NewReader(data))
	},
	mergeValues: loader.MergeMaps,
	parseSet:    strvals.ParseInto,
	runLinters: func(dir string, vals map[string]any, namespace string) ([]string, error) {
		kv, err := common.ParseKubeVersion(kubeVersion)
		if err != nil {
			return nil, err
		}
		return strictFailures(lint.RunAll(dir, vals, namespace, lint.WithKubeVersion(kv)).Messages, support.WarningSev), nil
	},
	// As pkg/action.Install with DryRunClient; see helm3.
	render: func(dir string, vals map[string]any, rel release) (map[string]string, string, error) {
		ch, err := loader.Load(dir)
		if err != nil {
			return nil, "", fmt.Errorf("load chart: %w", err)
		}
		if err := chartutil.ProcessDependencies(ch, vals); err != nil {
			return nil, "", err
		}
		caps := common.DefaultCapabilities.Copy()
		kv, err := common.ParseKubeVersion(kubeVersion)
		if err != nil {
			return nil, "", err
		}
		caps.KubeVersion = *kv
		opts := common.ReleaseOptions{Name: rel.name, Namespace: rel.namespace, Revision: 1, IsInstall: true}
		top, err := util.ToRenderValuesWithSchemaValidation(ch, vals, opts, caps, rel.skipSchema)
		if err != nil {
			return nil, "", err
		}
		if c := ch.Metadata.KubeVersion; c != "" && !chartutil.IsCompatibleRange(c, caps.KubeVersion.String()) {
			return nil, "", fmt.Errorf("chart requires kubeVersion: %s which is incompatible with Kubernetes %s", c, caps.KubeVersion.Version)
		}
		var e engine.Engine
		files, err := e.RenderWithContext(context.Background(), ch, top)
		return files, ch.Name(), err
	},
	sortManifests: func(files map[string]string) (out []manifestFile, err error) {
		// The VersionSet is render's caps.APIVersions, as pkg/action passes.
		_, ms, err := releaseutil.SortManifests(files, common.DefaultCapabilities.APIVersions, releaseutil.InstallOrder)
		for _, m := range ms {
			out = append(out, manifestFile{m.Name, m.Content})
		}
		return out, err
	},
}
