package chart

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path"
	"strings"

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
	// As pkg/cli/values.Options.MergeValues: files merged in order, then --set.
	values: func(files, set []string) (map[string]any, error) {
		base := map[string]any{}
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				return nil, err
			}
			cur, err := loader.LoadValues(bytes.NewReader(b))
			if err != nil {
				return nil, fmt.Errorf("failed to parse %s: %w", f, err)
			}
			base = loader.MergeMaps(base, cur)
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
		kv, err := common.ParseKubeVersion(kubeVersion)
		if err != nil {
			return []string{err.Error()}
		}
		var out []string
		for _, m := range lint.RunAll(dir, vals, defaultRelease.namespace, lint.WithKubeVersion(kv)).Messages {
			if m.Severity >= support.WarningSev {
				out = append(out, m.Err.Error())
			}
		}
		return out
	},
	// As pkg/action.Install with DryRunClient (helm template); see helm3.
	template: func(dir string, vals map[string]any, rel release) (string, string, error) {
		ch, err := loader.Load(dir)
		if err != nil {
			return "", "", fmt.Errorf("load chart: %w", err)
		}
		if err := chartutil.ProcessDependencies(ch, vals); err != nil {
			return "", "", err
		}
		caps := common.DefaultCapabilities.Copy()
		kv, err := common.ParseKubeVersion(kubeVersion)
		if err != nil {
			return "", "", err
		}
		caps.KubeVersion = *kv
		opts := common.ReleaseOptions{Name: rel.name, Namespace: rel.namespace, Revision: 1, IsInstall: true}
		top, err := util.ToRenderValuesWithSchemaValidation(ch, vals, opts, caps, rel.skipSchema)
		if err != nil {
			return "", "", err
		}
		if c := ch.Metadata.KubeVersion; c != "" && !chartutil.IsCompatibleRange(c, caps.KubeVersion.String()) {
			return "", "", fmt.Errorf("chart requires kubeVersion: %s which is incompatible with Kubernetes %s", c, caps.KubeVersion.Version)
		}
		var e engine.Engine
		files, err := e.RenderWithContext(context.Background(), ch, top)
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
