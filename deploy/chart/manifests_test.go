package chart

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// manifests are the objects one rendering produced, decoded strictly into
// their API types: an unknown, misspelt or miscased field, a duplicate key
// or a wrong type is an error, as it would be for `kubectl apply
// --validate=strict`.
type manifests struct {
	statefulSets    []*appsv1.StatefulSet
	services        []*corev1.Service
	serviceAccounts []*corev1.ServiceAccount
	pdbs            []*policyv1.PodDisruptionBudget
	networkPolicies []*networkingv1.NetworkPolicy
	serviceMonitors []*monitoringv1.ServiceMonitor
	all             []metav1.Object
	kinds           []string // "apps/v1 StatefulSet", in rendering order
}

// decode splits a rendered manifest stream and decodes each document into
// the type of its apiVersion and kind; anything else is an error.
func decode(stream string) (*manifests, error) {
	m := &manifests{}
	r := utilyaml.NewYAMLReader(bufio.NewReader(strings.NewReader(stream)))
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		if len(bytes.TrimSpace(stripComments(doc))) == 0 {
			continue
		}
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal(doc, &tm); err != nil {
			return nil, fmt.Errorf("not a Kubernetes object: %w\n%s", err, doc)
		}
		obj, err := m.add(tm)
		if err != nil {
			return nil, fmt.Errorf("%w\n%s", err, doc)
		}
		if err := strictUnmarshal(doc, obj); err != nil {
			return nil, fmt.Errorf("%s %s: strict decoding: %w\n%s", tm.APIVersion, tm.Kind, err, doc)
		}
		m.all = append(m.all, obj.(metav1.Object))
		m.kinds = append(m.kinds, tm.APIVersion+" "+tm.Kind)
	}
	return m, nil
}

// strictUnmarshal decodes one YAML document into obj as the API server's
// strict field validation does: a duplicate key is an error (in the YAML,
// and in the JSON it becomes), and so is a field obj's type lacks, where
// field names match exactly: sigs.k8s.io/yaml.UnmarshalStrict, through
// encoding/json, would take "ClusterIP" for clusterIP.
func strictUnmarshal(doc []byte, obj any) error {
	j, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		return err
	}
	strict, err := json.UnmarshalStrict(j, obj, json.DisallowDuplicateFields, json.DisallowUnknownFields)
	if err != nil {
		return err
	}
	return errors.Join(strict...)
}

// add makes room for an object of tm's type and returns a pointer to it.
func (m *manifests) add(tm metav1.TypeMeta) (any, error) {
	switch tm.APIVersion + " " + tm.Kind {
	case "apps/v1 StatefulSet":
		return appendNew(&m.statefulSets), nil
	case "v1 Service":
		return appendNew(&m.services), nil
	case "v1 ServiceAccount":
		return appendNew(&m.serviceAccounts), nil
	case "policy/v1 PodDisruptionBudget":
		return appendNew(&m.pdbs), nil
	case "networking.k8s.io/v1 NetworkPolicy":
		return appendNew(&m.networkPolicies), nil
	case "monitoring.coreos.com/v1 ServiceMonitor":
		return appendNew(&m.serviceMonitors), nil
	}
	return nil, fmt.Errorf("unexpected object %s %s", tm.APIVersion, tm.Kind)
}

// appendNew appends a new, empty object to *list and returns it.
func appendNew[T any](list *[]*T) *T {
	o := new(T)
	*list = append(*list, o)
	return o
}

// stripComments drops whole-line comments (Helm's "# Source:" lines).
func stripComments(doc []byte) []byte {
	var out [][]byte
	for _, line := range bytes.Split(doc, []byte("\n")) {
		if !bytes.HasPrefix(bytes.TrimSpace(line), []byte("#")) {
			out = append(out, line)
		}
	}
	return bytes.Join(out, []byte("\n"))
}

// statefulSet is the one StatefulSet, or fails t.
func (m *manifests) statefulSet(t *testing.T) *appsv1.StatefulSet {
	t.Helper()
	if len(m.statefulSets) != 1 {
		t.Fatalf("want 1 StatefulSet, got %d (%v)", len(m.statefulSets), m.kinds)
	}
	return m.statefulSets[0]
}

// service is the Service named name, or fails t.
func (m *manifests) service(t *testing.T, name string) *corev1.Service {
	t.Helper()
	for _, s := range m.services {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("no Service %q among %d", name, len(m.services))
	return nil
}

// container is the regent container of sts, or fails t.
func container(t *testing.T, sts *appsv1.StatefulSet) *corev1.Container {
	t.Helper()
	for i := range sts.Spec.Template.Spec.Containers {
		if c := &sts.Spec.Template.Spec.Containers[i]; c.Name == "regent" {
			return c
		}
	}
	t.Fatal("no container named regent")
	return nil
}

// envVar is the variable name of c, or nil.
func envVar(c *corev1.Container, name string) *corev1.EnvVar {
	for i := range c.Env {
		if c.Env[i].Name == name {
			return &c.Env[i]
		}
	}
	return nil
}

// toYAML shows v in test failures.
func toYAML(v any) string {
	b, err := yaml.Marshal(v)
	if err != nil {
		return fmt.Sprintf("%+v", v)
	}
	return string(b)
}
