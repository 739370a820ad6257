package chart

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// badValues are values the chart must refuse, each with what the refusal
// must say: the path of the value and what is wrong with it.
var badValues = []struct {
	name  string
	files []string // -f; the etcd example when empty
	set   []string
	yaml  string // one more -f file with these values
	want  []string
}{
	{name: "replicas below one", set: []string{"replicaCount=0"},
		want: []string{"at '/replicaCount': minimum: got 0, want 1"}},
	{name: "no store", files: []string{"none"}, set: []string{"mesos.master=http://m:5050"},
		want: []string{"at '/store': 'oneOf' failed, none matched", "at '/store/etcd/endpoints': minItems: got 0, want 1", "at '/store/zookeeper/servers': minItems: got 0, want 1"}},
	{name: "both stores", set: []string{"store.zookeeper.servers={zk:2181}"},
		want: []string{"at '/store': 'oneOf' failed, subschemas 0, 1 matched"}},
	{name: "election TTL below 2s", set: []string{"store.etcd.electionTTLSeconds=1"},
		want: []string{"at '/store/etcd/electionTTLSeconds': minimum: got 1, want 2"}},
	{name: "election TTL above 60s", set: []string{"store.etcd.electionTTLSeconds=61"},
		want: []string{"at '/store/etcd/electionTTLSeconds': maximum: got 61, want 60"}},
	{name: "election TTL not whole seconds", yaml: "store: {etcd: {electionTTLSeconds: 2.5}}",
		want: []string{"at '/store/etcd/electionTTLSeconds': got number, want integer"}},
	{name: "task without cpus", set: []string{"tasks.cpus=0"},
		want: []string{"at '/tasks/cpus': 'oneOf' failed, none matched"}},
	{name: "ZooKeeper session timeout below 2s", files: []string{"zookeeper-values.yaml"}, set: []string{"store.zookeeper.sessionTimeoutSeconds=1"},
		want: []string{"at '/store/zookeeper/sessionTimeoutSeconds': minimum: got 1, want 2"}},
	{name: "ZooKeeper session timeout above 2m", files: []string{"zookeeper-values.yaml"}, set: []string{"store.zookeeper.sessionTimeoutSeconds=121"},
		want: []string{"at '/store/zookeeper/sessionTimeoutSeconds': maximum: got 121, want 120"}},
	{name: "no Mesos master", files: []string{"none"}, set: []string{"store.etcd.endpoints={http://etcd:2379}"},
		want: []string{"at '/mesos/master': minLength: got 0, want 1"}},
	{name: "Mesos master without a scheme", set: []string{"mesos.master=mesos:5050"},
		want: []string{"at '/mesos/master': 'mesos:5050' does not match pattern"}},
	{name: "etcd TLS over http://", set: []string{"store.etcd.tls.secretName=etcd-tls"},
		want: []string{"at '/store/etcd/endpoints/0': 'http://etcd-0.etcd:2379' does not match pattern '^https://'"}},
	{name: "etcd user without a password", set: []string{"store.etcd.username=regent"},
		want: []string{"at '/store/etcd/password/secretName': minLength: got 0, want 1"}},
	{name: "etcd client certificate without its key", set: []string{"store.etcd.endpoints={https://etcd:2379},store.etcd.tls.secretName=etcd-tls,store.etcd.tls.keyKey="},
		want: []string{"at '/store/etcd/tls/keyKey': minLength: got 0, want 1"}},
	{name: "client CA without HTTPS", set: []string{"server.tls.clientCAKey=ca.crt"},
		want: []string{"at '/server/tls/clientCAKey': maxLength: got 6, want 0"}},
	{name: "a misspelt setting", set: []string{"replicas=3"},
		want: []string{"additional properties 'replicas' not allowed"}},
	{name: "failover timeout in days", set: []string{"framework.failoverTimeout=7d"},
		want: []string{"at '/framework/failoverTimeout': '7d' does not match pattern"}},
	{name: "framework name with a space", set: []string{"framework.name=my framework"},
		want: []string{"at '/framework/name': 'my framework' does not match pattern"}},
	{name: "store prefix not absolute", set: []string{"store.prefix=regent"},
		want: []string{"at '/store/prefix': 'regent' does not match pattern"}},
	{name: "unknown log level", set: []string{"logging.level=verbose"},
		want: []string{"at '/logging/level': value must be one of 'debug', 'info', 'warn', 'error'"}},
	{name: "unknown advertise mode", set: []string{"advertise.mode=hostname"},
		want: []string{"at '/advertise/mode': value must be one of 'dns', 'podIP'"}},
	{name: "a PodDisruptionBudget that allows nothing", set: []string{"podDisruptionBudget.maxUnavailable=0"},
		want: []string{"at '/podDisruptionBudget/maxUnavailable'"}},
	{name: "a privileged port", set: []string{"server.port=80"},
		want: []string{"at '/server/port': minimum: got 80, want 1,024"}},
	{name: "shutdown timeout of zero", set: []string{"server.shutdownTimeoutSeconds=0"},
		want: []string{"at '/server/shutdownTimeoutSeconds': minimum: got 0, want 1"}},
}

// TestSchemaRejects renders every bad value with both SDKs: `helm template`
// must fail with the schema's message, and `helm lint --strict` too.
func TestSchemaRejects(t *testing.T) {
	for _, bv := range badValues {
		t.Run(bv.name, func(t *testing.T) {
			t.Parallel()
			forEachSDK(t, func(t *testing.T, h helmSDK) {
				files := bv.files
				switch {
				case len(files) == 0:
					files = []string{"etcd-values.yaml"}
				case files[0] == "none":
					files = nil
				}
				paths := valuesFiles(files...)
				if bv.yaml != "" {
					p := filepath.Join(t.TempDir(), "values.yaml")
					if err := os.WriteFile(p, []byte(bv.yaml), 0o644); err != nil {
						t.Fatal(err)
					}
					paths = append(paths, p)
				}
				vals, err := h.values(paths, bv.set)
				if err != nil {
					t.Fatal(err)
				}
				_, _, err = h.template(chartDir, vals, defaultRelease)
				if err == nil {
					t.Fatal("helm template accepted the values")
				}
				msg := err.Error()
				if !strings.Contains(msg, "values don't meet the specifications of the schema") {
					t.Errorf("helm template failed, but not on the schema: %v", err)
				}
				for _, w := range bv.want {
					if !strings.Contains(msg, w) {
						t.Errorf("helm template's error lacks %q:\n%s", w, msg)
					}
				}
				lint := strings.Join(h.lint(chartDir, vals), "\n")
				if !strings.Contains(lint, bv.want[0]) {
					t.Errorf("helm lint --strict does not report %q:\n%s", bv.want[0], lint)
				}
			})
		})
	}
}

// TestTemplateChecksWithoutSchema renders with --skip-schema-validation:
// the templates refuse a missing or doubled store themselves, and a
// variable in extraEnv that the chart sets.
func TestTemplateChecksWithoutSchema(t *testing.T) {
	for _, tc := range []struct {
		name string
		set  []string
		want string
	}{
		{"no store", []string{"store.etcd.endpoints=null"}, "neither store.etcd.endpoints nor store.zookeeper.servers is set"},
		{"both stores", []string{"store.zookeeper.servers={zk:2181}"}, "both store.etcd.endpoints and store.zookeeper.servers are set"},
		{"extraEnv overriding the chart", []string{"extraEnv[0].name=REGENT_ID,extraEnv[0].value=x"}, "extraEnv: REGENT_ID is set by the chart"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			forEachSDK(t, func(t *testing.T, h helmSDK) {
				vals := caseValues(t, h, []string{"etcd-values.yaml"}, "", tc.set)
				rel := defaultRelease
				rel.skipSchema = true
				_, _, err := h.template(chartDir, vals, rel)
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Errorf("helm template --skip-schema-validation: %v, want an error saying %q", err, tc.want)
				}
			})
		})
	}
}

// TestDefaultsDemandStoreAndMaster lints and renders the chart's own
// values: they name no store and no Mesos master, so both must be refused
// with messages pointing at them, rather than rendering replicas that
// would fail at start.
func TestDefaultsDemandStoreAndMaster(t *testing.T) {
	forEachSDK(t, func(t *testing.T, h helmSDK) {
		lint := strings.Join(h.lint(chartDir, nil), "\n")
		for _, w := range []string{"at '/mesos/master'", "at '/store': 'oneOf' failed, none matched"} {
			if !strings.Contains(lint, w) {
				t.Errorf("helm lint --strict on the defaults does not say %q:\n%s", w, lint)
			}
		}
		if _, _, err := h.template(chartDir, nil, defaultRelease); err == nil {
			t.Error("helm template rendered the defaults without a store")
		}
	})
}
