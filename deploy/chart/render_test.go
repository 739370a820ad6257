package chart

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// renderCase is one combination of values, rendered and linted with both
// SDKs, and what its manifests must show.
type renderCase struct {
	name  string
	files []string // -f, under charts/regent/ci
	yaml  string   // one more -f file with these values, after files
	set   []string // --set
	rel   release
	want  want
}

// want is what a rendering must contain, in the chart's and the binary's
// terms. Settings are keyed by the binary's flag names and looked up in
// docs/FLAGS.md, so a renamed flag fails the test.
type want struct {
	store          string // "etcd" or "zookeeper"
	tls            bool
	replicas       int32
	port           int32
	servicePort    int32
	antiAffinity   string // soft, hard, none, or user (the user's, userAntiAffinity)
	zoneSpread     bool
	nodeAffinity   bool   // the user's, kept beside the chart's anti-affinity
	advertise      string // dns or podIP
	pdb            string // maxUnavailable; "" for no PodDisruptionBudget
	serviceAccount string // the pods' ServiceAccount; created when createSA
	createSA       bool
	serviceMonitor bool
	networkPolicy  bool
	restrictEgress bool
	preStopSleep   int64
	image          string
	// settings are the variables' values, by flag; "" means unset.
	settings map[string]string
	// secrets are the file flags, by flag: the Secret and key mounted there.
	secrets map[string]secretKey
	// extraArgs are the arguments after "run".
	extraArgs []string
	// userAntiAffinity is the user's affinity.podAntiAffinity, which the
	// pods must carry as given, instead of the chart's.
	userAntiAffinity *corev1.PodAntiAffinity
	// topologySpread is the user's topologySpreadConstraints, which the
	// pods must carry as given, instead of the chart's zone spread; nil
	// when the user set none.
	topologySpread []corev1.TopologySpreadConstraint
	// ingressFrom are the peers the NetworkPolicy admits besides the
	// replicas (networkPolicy.ingressFrom); none means anyone.
	ingressFrom []networkingv1.NetworkPolicyPeer
	// egressTo are the egress rules after DNS and the replicas
	// (networkPolicy.egressTo), when egress is restricted.
	egressTo []networkingv1.NetworkPolicyEgressRule
	// smTLS is the user's serviceMonitor.tlsConfig, which the scrape
	// must use as given; nil: the chart derives it from server.tls.
	smTLS *monitoringv1.TLSConfig
}

type secretKey struct{ secret, key string }

const appVersion = "0.1.0"

var renderCases = []renderCase{
	{
		name:  "etcd",
		files: []string{"etcd-values.yaml"},
		rel:   defaultRelease,
		want: want{
			store: "etcd", replicas: 3, port: 8080, servicePort: 8080, antiAffinity: "soft", zoneSpread: true,
			advertise: "dns", pdb: "1", serviceAccount: "regent", createSA: true, preStopSleep: 5,
			image: "ghcr.io/regent-sched/regent:" + appVersion,
			settings: map[string]string{
				"master":               "http://mesos-master-0.mesos:5050,http://mesos-master-1.mesos:5050,http://mesos-master-2.mesos:5050",
				"etcd-endpoints":       "http://etcd-0.etcd:2379,http://etcd-1.etcd:2379,http://etcd-2.etcd:2379",
				"election-ttl":         "5s",
				"etcd-dial-timeout":    "5s",
				"listen":               ":8080",
				"name":                 "regent",
				"role":                 "*",
				"user":                 "nobody",
				"failover-timeout":     "168h",
				"store-prefix":         "/regent",
				"shutdown-timeout":     "20s",
				"log-level":            "info",
				"log-format":           "json",
				"task-cpus":            "0.1",
				"task-mem":             "32",
				"task-command":         "sleep 86400",
				"relaunch-backoff-min": "1s",
				"relaunch-backoff-max": "1m",
				"principal":            "",
				"zk-servers":           "",
				"zk-session-timeout":   "",
				"etcd-username":        "",
			},
			secrets: map[string]secretKey{},
		},
	},
	{
		name:  "zookeeper",
		files: []string{"zookeeper-values.yaml"},
		rel:   release{name: "analytics", namespace: "mesos"},
		want: want{
			store: "zookeeper", replicas: 3, port: 8080, servicePort: 8080, antiAffinity: "soft", zoneSpread: true,
			advertise: "dns", pdb: "1", serviceAccount: "analytics-regent", createSA: true, preStopSleep: 5,
			image: "ghcr.io/regent-sched/regent:" + appVersion,
			settings: map[string]string{
				"master":             "zk://zk-0.zk:2181,zk-1.zk:2181,zk-2.zk:2181/mesos",
				"zk-servers":         "zk-0.zk:2181,zk-1.zk:2181,zk-2.zk:2181",
				"zk-session-timeout": "6s",
				"name":               "analytics",
				"role":               "analytics",
				"principal":          "analytics",
				"failover-timeout":   "72h",
				"etcd-endpoints":     "",
				"election-ttl":       "",
			},
			secrets: map[string]secretKey{"zk-digest-file": {"regent-zk-digest", "digest"}},
		},
	},
	{
		name:  "secure",
		files: []string{"secure-values.yaml"},
		rel:   defaultRelease,
		want: want{
			store: "etcd", tls: true, replicas: 5, port: 8080, servicePort: 8080, antiAffinity: "hard", zoneSpread: true,
			advertise: "dns", pdb: "2", serviceAccount: "regent", createSA: true, serviceMonitor: true,
			networkPolicy: true, restrictEgress: true, preStopSleep: 5,
			image: "ghcr.io/regent-sched/regent:" + appVersion,
			// As in ci/secure-values.yaml.
			ingressFrom: []networkingv1.NetworkPolicyPeer{{
				NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": "monitoring"}},
			}},
			egressTo: []networkingv1.NetworkPolicyEgressRule{{
				To:    []networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{CIDR: "10.0.0.0/16"}}},
				Ports: []networkingv1.NetworkPolicyPort{{Port: new(intstr.FromInt32(2379))}, {Port: new(intstr.FromInt32(5050))}},
			}},
			settings: map[string]string{
				"etcd-endpoints":   "https://etcd-0.etcd:2379,https://etcd-1.etcd:2379,https://etcd-2.etcd:2379",
				"election-ttl":     "10s",
				"etcd-username":    "regent",
				"shutdown-timeout": "30s",
			},
			secrets: map[string]secretKey{
				"etcd-password-file": {"regent-etcd-password", "password"},
				"etcd-ca-file":       {"regent-etcd-tls", "ca.crt"},
				"etcd-cert-file":     {"regent-etcd-tls", "tls.crt"},
				"etcd-key-file":      {"regent-etcd-tls", "tls.key"},
				"tls-cert-file":      {"regent-tls", "tls.crt"},
				"tls-key-file":       {"regent-tls", "tls.key"},
				"peer-ca-file":       {"regent-tls", "ca.crt"},
				"tls-client-ca-file": {"regent-tls", "ca.crt"},
				"auth-token-file":    {"regent-tokens", "tokens"},
			},
		},
	},
	{
		// Pod IPs advertised over HTTPS with per-pod certificates, no CA
		// file (the image's roots), a token Secret with its own key, and
		// every optional part of the chart switched off.
		name:  "podIP",
		files: []string{"etcd-values.yaml"},
		set: []string{
			"advertise.mode=podIP",
			"server.tls.secretName=web-tls,server.tls.peerCAKey=",
			"server.auth.tokenSecretName=api,server.auth.tokenKey=api-tokens",
			"server.port=9090,service.port=80,service.type=NodePort",
			"server.preStopSleepSeconds=0,server.shutdownTimeoutSeconds=10",
			"store.etcd.electionTTLSeconds=2,store.etcd.tls.secretName=etcd-ca,store.etcd.tls.certKey=,store.etcd.tls.keyKey=",
			"store.etcd.endpoints={https://10.0.0.1:2379,https://10.0.0.2:2379}",
			"podAntiAffinity=none,zoneSpread=false,podDisruptionBudget.enabled=false",
			"serviceAccount.create=false,serviceAccount.name=sched",
			"image.digest=sha256:" + strings.Repeat("ab", 32),
			"logging.level=debug,logging.format=console",
			"extraArgs={--relaunch-backoff-max=5m}",
			"extraEnv[0].name=GODEBUG,extraEnv[0].value=http2debug=1",
			"tasks.cpus=0.5,tasks.mem=1024,tasks.command=sleep 3600",
		},
		rel: release{name: "prod", namespace: "mesos"},
		want: want{
			store: "etcd", tls: true, replicas: 3, port: 9090, servicePort: 80, antiAffinity: "none",
			advertise: "podIP", pdb: "", serviceAccount: "sched", preStopSleep: 0,
			image: "ghcr.io/regent-sched/regent@sha256:" + strings.Repeat("ab", 32),
			settings: map[string]string{
				"etcd-endpoints": "https://10.0.0.1:2379,https://10.0.0.2:2379",
				"election-ttl":   "2s",
				"listen":         ":9090",
				"log-level":      "debug",
				"log-format":     "console",
				"task-cpus":      "0.5",
				"task-mem":       "1024",
				"task-command":   "sleep 3600",
				"peer-ca-file":   "",
				"etcd-cert-file": "",
			},
			secrets: map[string]secretKey{
				"tls-cert-file":   {"web-tls", "tls.crt"},
				"tls-key-file":    {"web-tls", "tls.key"},
				"auth-token-file": {"api", "api-tokens"},
				"etcd-ca-file":    {"etcd-ca", "ca.crt"},
			},
			extraArgs: []string{"--relaunch-backoff-max=5m"},
		},
	},
	{
		// A release name long enough to need truncating everywhere, and
		// a node affinity of the user's beside the chart's anti-affinity.
		name:  "long-names",
		files: []string{"zookeeper-values.yaml"},
		set: []string{
			"affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].key=node.example/mesos",
			"affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].operator=Exists",
		},
		rel: release{name: strings.Repeat("scheduler", 5) + "-prod-eu", namespace: "sched"}, // Helm's longest: 53
		want: want{
			store: "zookeeper", replicas: 3, port: 8080, servicePort: 8080, antiAffinity: "soft", zoneSpread: true,
			advertise: "dns", pdb: "1", createSA: true, preStopSleep: 5, nodeAffinity: true,
			image:    "ghcr.io/regent-sched/regent:" + appVersion,
			settings: map[string]string{},
			secrets:  map[string]secretKey{"zk-digest-file": {"regent-zk-digest", "digest"}},
		},
	},
	{
		// The user's own spreading, which the chart's documentation says
		// replaces its own (the hard anti-affinity and the zone spread
		// asked for here are dropped), a NetworkPolicy admitting more
		// peers with egress left open (egressTo then unused), and a
		// ServiceMonitor with its own TLS settings.
		name:  "user-placement",
		files: []string{"etcd-values.yaml"},
		yaml: `
podAntiAffinity: hard
zoneSpread: true
topologySpreadConstraints:
  - maxSkew: 1
    topologyKey: kubernetes.io/hostname
    whenUnsatisfiable: DoNotSchedule
    labelSelector:
      matchLabels: {app.kubernetes.io/name: regent, app.kubernetes.io/instance: regent}
affinity:
  podAntiAffinity:
    preferredDuringSchedulingIgnoredDuringExecution:
      - weight: 50
        podAffinityTerm:
          topologyKey: topology.kubernetes.io/zone
          labelSelector:
            matchLabels: {app.kubernetes.io/name: regent}
server:
  tls:
    secretName: regent-tls
serviceMonitor:
  enabled: true
  tlsConfig:
    ca:
      configMap: {name: cluster-ca, key: ca.crt}
    serverName: regent.example
networkPolicy:
  enabled: true
  ingressFrom:
    - namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: ingress}}
      podSelector: {matchLabels: {app: ingress-nginx}}
    - ipBlock: {cidr: 192.168.0.0/16, except: [192.168.1.0/24]}
  egressTo:
    - to: [{ipBlock: {cidr: 10.0.0.0/8}}]
`,
		rel: defaultRelease,
		want: want{
			store: "etcd", tls: true, replicas: 3, port: 8080, servicePort: 8080, antiAffinity: "user",
			userAntiAffinity: &corev1.PodAntiAffinity{
				PreferredDuringSchedulingIgnoredDuringExecution: []corev1.WeightedPodAffinityTerm{{
					Weight: 50,
					PodAffinityTerm: corev1.PodAffinityTerm{
						TopologyKey:   "topology.kubernetes.io/zone",
						LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app.kubernetes.io/name": "regent"}},
					},
				}},
			},
			topologySpread: []corev1.TopologySpreadConstraint{{
				MaxSkew: 1, TopologyKey: "kubernetes.io/hostname", WhenUnsatisfiable: corev1.DoNotSchedule,
				LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app.kubernetes.io/name": "regent", "app.kubernetes.io/instance": "regent"}},
			}},
			advertise: "dns", pdb: "1", serviceAccount: "regent", createSA: true, preStopSleep: 5,
			serviceMonitor: true, networkPolicy: true,
			ingressFrom: []networkingv1.NetworkPolicyPeer{
				{
					NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": "ingress"}},
					PodSelector:       &metav1.LabelSelector{MatchLabels: map[string]string{"app": "ingress-nginx"}},
				},
				{IPBlock: &networkingv1.IPBlock{CIDR: "192.168.0.0/16", Except: []string{"192.168.1.0/24"}}},
			},
			smTLS: &monitoringv1.TLSConfig{SafeTLSConfig: monitoringv1.SafeTLSConfig{
				CA: monitoringv1.SecretOrConfigMap{ConfigMap: &corev1.ConfigMapKeySelector{
					LocalObjectReference: corev1.LocalObjectReference{Name: "cluster-ca"}, Key: "ca.crt",
				}},
				ServerName: new("regent.example"),
			}},
			image:    "ghcr.io/regent-sched/regent:" + appVersion,
			settings: map[string]string{},
			secrets: map[string]secretKey{
				"tls-cert-file": {"regent-tls", "tls.crt"},
				"tls-key-file":  {"regent-tls", "tls.key"},
				"peer-ca-file":  {"regent-tls", "ca.crt"},
			},
		},
	},
}

// TestRender lints every case with `helm lint --strict` and renders it
// with `helm template`, with Helm 3 and Helm 4, and checks the manifests.
func TestRender(t *testing.T) {
	bf := flags(t)
	for _, rc := range renderCases {
		t.Run(rc.name, func(t *testing.T) {
			t.Parallel()
			forEachSDK(t, func(t *testing.T, h helmSDK) {
				vals := caseValues(t, h, rc.files, rc.yaml, rc.set)
				if errs := h.lint(chartDir, vals); len(errs) > 0 {
					t.Fatalf("helm lint --strict:\n%s", strings.Join(errs, "\n"))
				}
				manifest, notes, err := h.template(chartDir, vals, rc.rel)
				if err != nil {
					t.Fatalf("helm template: %v", err)
				}
				m, err := decode(manifest)
				if err != nil {
					t.Fatal(err)
				}
				c := check{t: t, bf: bf, rc: rc, m: m}
				c.objects()
				c.labels()
				c.statefulSet()
				c.pod()
				c.probes()
				c.env()
				c.secretFiles()
				c.services()
				c.disruptionBudget()
				c.serviceMonitor()
				c.networkPolicy()
				c.notes(notes)
			})
		})
	}
}

// caseValues merges the case's files, its YAML and --set strings as the
// CLI would (`-f ci/<file>... -f <yaml> --set ...`).
func caseValues(t *testing.T, h helmSDK, files []string, yaml string, set []string) map[string]any {
	t.Helper()
	paths := valuesFiles(files...)
	if yaml != "" {
		p := filepath.Join(t.TempDir(), "values.yaml")
		if err := os.WriteFile(p, []byte(yaml), 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	vals, err := h.values(paths, set)
	if err != nil {
		t.Fatalf("values: %v", err)
	}
	return vals
}
