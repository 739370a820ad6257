package chart

import (
	"strings"
	"testing"
)

// TestDecodeIsStrict feeds decode a Service written right, then with one
// mistake each: a field name in the wrong case (encoding/json, and so
// sigs.k8s.io/yaml.UnmarshalStrict, would take it), a field the type does
// not have, nested ones of both, and a duplicate key. The API server's
// strict field validation refuses all of them; so must decode.
func TestDecodeIsStrict(t *testing.T) {
	const head = "# Source: regent/templates/service.yaml\napiVersion: v1\nkind: Service\nmetadata:\n  name: regent\n"
	good := head + "spec:\n  clusterIP: None\n  ports:\n    - name: http\n      port: 8080\n"
	m, err := decode("---\n" + good)
	if err != nil {
		t.Fatalf("decode refused a valid Service: %v", err)
	}
	if len(m.services) != 1 || m.services[0].Spec.ClusterIP != "None" || m.services[0].Spec.Ports[0].Port != 8080 {
		t.Fatalf("decoded %+v", m.services)
	}
	for _, tc := range []struct {
		name, doc, want string
	}{
		{"miscased field", head + "spec:\n  ClusterIP: None\n", `unknown field "spec.ClusterIP"`},
		{"miscased nested field", head + "spec:\n  ports:\n    - name: http\n      Port: 8080\n", `unknown field "spec.ports[0].Port"`},
		{"miscased top-level field", head + "Spec:\n  clusterIP: None\n", `unknown field "Spec"`},
		{"unknown field", head + "spec:\n  clusterIp: None\n", `unknown field "spec.clusterIp"`},
		{"unknown nested field", head + "spec:\n  ports:\n    - name: http\n      port: 8080\n      nodeport: 30080\n", `unknown field "spec.ports[0].nodeport"`},
		{"duplicate field", head + "spec:\n  clusterIP: None\n  clusterIP: 10.0.0.1\n", `"clusterIP" already set`},
		{"wrong type", head + "spec:\n  ports:\n    - name: http\n      port: http\n", "cannot unmarshal string"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := decode("---\n" + good + "---\n" + tc.doc)
			if err == nil {
				t.Fatalf("decode accepted:\n%s", tc.doc)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("decode's error lacks %q: %v", tc.want, err)
			}
		})
	}
}
