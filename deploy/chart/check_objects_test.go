package chart

import (
	"fmt"
	"strings"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
)

// check holds one rendering and what it must show.
type check struct {
	t  *testing.T
	bf binaryFlags
	rc renderCase
	m  *manifests
}

// fullname is what the chart's regent.fullname gives for the release.
func (c check) fullname() string {
	n := c.rc.rel.name
	if !strings.Contains(n, "regent") {
		n += "-regent"
	}
	if len(n) > 52 {
		n = n[:52]
	}
	return strings.TrimRight(n, "-")
}

func (c check) headless() string { return c.fullname() + "-headless" }

// podLabels are the labels of the StatefulSet's pods.
func (c check) podLabels() labels.Set {
	return labels.Set(c.m.statefulSet(c.t).Spec.Template.Labels)
}

// selects fails unless sel (a label selector) matches the pods.
func (c check) selects(what string, sel *metav1.LabelSelector) {
	c.t.Helper()
	if sel == nil || (len(sel.MatchLabels) == 0 && len(sel.MatchExpressions) == 0) {
		c.t.Errorf("%s: empty selector (it would select every pod)", what)
		return
	}
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		c.t.Errorf("%s: %v", what, err)
		return
	}
	if !s.Matches(c.podLabels()) {
		c.t.Errorf("%s: selector %v does not match the pods' labels %v", what, s, c.podLabels())
	}
}

// objects checks which objects were rendered and their names.
func (c check) objects() {
	t, w := c.t, c.rc.want
	count := func(kind string, got int, want bool) {
		t.Helper()
		if n := map[bool]int{true: 1}[want]; got != n {
			t.Errorf("%d %s, want %d", got, kind, n)
		}
	}
	count("StatefulSet", len(c.m.statefulSets), true)
	count("ServiceAccount", len(c.m.serviceAccounts), w.createSA)
	count("PodDisruptionBudget", len(c.m.pdbs), w.pdb != "")
	count("ServiceMonitor", len(c.m.serviceMonitors), w.serviceMonitor)
	count("NetworkPolicy", len(c.m.networkPolicies), w.networkPolicy)
	if len(c.m.services) != 2 {
		t.Errorf("%d Services, want 2 (the API and the headless one)", len(c.m.services))
	}
	for _, o := range c.m.all {
		what := fmt.Sprintf("%T %s", o, o.GetName())
		if o.GetNamespace() != c.rc.rel.namespace {
			t.Errorf("%s: namespace %q, want the release's %q", what, o.GetNamespace(), c.rc.rel.namespace)
		}
		for _, e := range validation.IsDNS1123Subdomain(o.GetName()) {
			t.Errorf("%s: name: %s", what, e)
		}
	}
	for _, s := range c.m.services {
		for _, e := range validation.IsDNS1035Label(s.Name) {
			t.Errorf("Service %s: name: %s", s.Name, e)
		}
	}
	sts := c.m.statefulSet(t)
	if sts.Name != c.fullname() {
		t.Errorf("StatefulSet %q, want %q", sts.Name, c.fullname())
	}
	// Pod host names, and the controller-revision-hash label
	// "<name>-<10 characters>", must fit in 63.
	last := fmt.Sprintf("%s-%d", sts.Name, *sts.Spec.Replicas-1)
	for _, e := range validation.IsDNS1123Label(last) {
		t.Errorf("pod name %s: %s", last, e)
	}
	if len(sts.Name) > 52 {
		t.Errorf("StatefulSet name %q is longer than 52: its controller-revision-hash label would not fit", sts.Name)
	}
}

// labels checks the standard labels on every object and on the pods.
func (c check) labels() {
	t := c.t
	tag := appVersion
	if strings.Contains(c.rc.want.image, ":") && !strings.Contains(c.rc.want.image, "@") {
		tag = c.rc.want.image[strings.LastIndex(c.rc.want.image, ":")+1:]
	}
	want := map[string]string{
		"app.kubernetes.io/name":       "regent",
		"app.kubernetes.io/instance":   c.rc.rel.name,
		"app.kubernetes.io/version":    tag,
		"app.kubernetes.io/part-of":    "regent",
		"app.kubernetes.io/managed-by": "Helm",
		"helm.sh/chart":                "regent-" + appVersion,
	}
	sts := c.m.statefulSet(t)
	objs := append([]metav1.Object{&sts.Spec.Template.ObjectMeta}, c.m.all...)
	for _, o := range objs {
		what := fmt.Sprintf("%T %s", o, o.GetName())
		l := o.GetLabels()
		for k, v := range want {
			if l[k] != v {
				t.Errorf("%s: label %s=%q, want %q", what, k, l[k], v)
			}
		}
		if l["app.kubernetes.io/component"] == "" {
			t.Errorf("%s: no app.kubernetes.io/component label", what)
		}
		for k, v := range l {
			for _, e := range validation.IsQualifiedName(k) {
				t.Errorf("%s: label key %q: %s", what, k, e)
			}
			for _, e := range validation.IsValidLabelValue(v) {
				t.Errorf("%s: label %s=%q: %s", what, k, v, e)
			}
		}
	}
}

// services checks the API Service and the headless one behind the
// StatefulSet's DNS names.
func (c check) services() {
	t, w := c.t, c.rc.want
	api := c.m.service(t, c.fullname())
	hl := c.m.service(t, c.headless())
	ctr := container(t, c.m.statefulSet(t))
	for _, s := range []*corev1.Service{api, hl} {
		c.selects("Service "+s.Name, &metav1.LabelSelector{MatchLabels: s.Spec.Selector})
		if len(s.Spec.Ports) != 1 {
			t.Fatalf("Service %s: %d ports, want 1", s.Name, len(s.Spec.Ports))
		}
		p := s.Spec.Ports[0]
		if p.Name != "http" || p.TargetPort != intstr.FromString("http") || p.Protocol != corev1.ProtocolTCP {
			t.Errorf("Service %s: port %+v, want http → the container's http port", s.Name, p)
		}
	}
	if len(ctr.Ports) != 1 || ctr.Ports[0].Name != "http" || ctr.Ports[0].ContainerPort != w.port {
		t.Errorf("container ports %+v, want http %d", ctr.Ports, w.port)
	}
	if api.Spec.Ports[0].Port != w.servicePort {
		t.Errorf("Service %s: port %d, want %d", api.Name, api.Spec.Ports[0].Port, w.servicePort)
	}
	if hl.Spec.Ports[0].Port != w.port {
		t.Errorf("headless Service: port %d, want the container's %d", hl.Spec.Ports[0].Port, w.port)
	}
	if hl.Spec.ClusterIP != corev1.ClusterIPNone {
		t.Errorf("headless Service: clusterIP %q, want None", hl.Spec.ClusterIP)
	}
	if !hl.Spec.PublishNotReadyAddresses {
		t.Error("headless Service: publishNotReadyAddresses must be set, so that a replica is reachable by name before it is ready")
	}
	if api.Labels["app.kubernetes.io/component"] == hl.Labels["app.kubernetes.io/component"] {
		t.Error("the two Services share their component label: a ServiceMonitor could not tell them apart")
	}
}

// disruptionBudget checks the PodDisruptionBudget.
func (c check) disruptionBudget() {
	if c.rc.want.pdb == "" {
		return
	}
	pdb := c.m.pdbs[0]
	c.selects("PodDisruptionBudget", pdb.Spec.Selector)
	if pdb.Spec.MaxUnavailable == nil || pdb.Spec.MaxUnavailable.String() != c.rc.want.pdb {
		c.t.Errorf("PodDisruptionBudget maxUnavailable %v, want %s", pdb.Spec.MaxUnavailable, c.rc.want.pdb)
	}
	if pdb.Spec.MinAvailable != nil {
		c.t.Error("PodDisruptionBudget sets minAvailable too")
	}
	if got := pdb.Spec.MaxUnavailable.IntValue(); pdb.Spec.MaxUnavailable.Type == intstr.Int && got >= int(c.rc.want.replicas) {
		c.t.Errorf("PodDisruptionBudget allows all %d replicas down at once", got)
	}
}

// serviceMonitor checks that Prometheus scrapes /metrics through the API
// Service, over HTTPS with TLS.
func (c check) serviceMonitor() {
	if !c.rc.want.serviceMonitor {
		return
	}
	t := c.t
	sm := c.m.serviceMonitors[0]
	api := c.m.service(t, c.fullname())
	hl := c.m.service(t, c.headless())
	sel, err := metav1.LabelSelectorAsSelector(&sm.Spec.Selector)
	if err != nil {
		t.Fatal(err)
	}
	if !sel.Matches(labels.Set(api.Labels)) || sel.Matches(labels.Set(hl.Labels)) {
		t.Errorf("ServiceMonitor selector %v must select the API Service only", sel)
	}
	if len(sm.Spec.Endpoints) != 1 {
		t.Fatalf("ServiceMonitor: %d endpoints, want 1", len(sm.Spec.Endpoints))
	}
	ep := sm.Spec.Endpoints[0]
	if ep.Port != "http" || ep.Path != "/metrics" {
		t.Errorf("ServiceMonitor endpoint port %q path %q, want http /metrics", ep.Port, ep.Path)
	}
	scheme := "http"
	if c.rc.want.tls {
		scheme = "https"
		c.scrapeTLS(ep.TLSConfig)
	} else if ep.TLSConfig != nil {
		t.Errorf("ServiceMonitor tlsConfig %+v over plain HTTP", ep.TLSConfig)
	}
	if ep.Scheme == nil || strings.ToLower(string(*ep.Scheme)) != scheme {
		t.Errorf("ServiceMonitor scheme %v, want %s", ep.Scheme, scheme)
	}
}

// scrapeTLS checks the TLS settings of the HTTPS scrape: the user's
// serviceMonitor.tlsConfig as given; else the Service's DNS name as server
// name (Prometheus scrapes pod IPs) and the CA the replicas trust each
// other with (server.tls.peerCAKey, as --peer-ca-file), or none.
func (c check) scrapeTLS(got *monitoringv1.TLSConfig) {
	t, w := c.t, c.rc.want
	if w.smTLS != nil {
		if !equality.Semantic.DeepEqual(got, w.smTLS) {
			t.Errorf("ServiceMonitor tlsConfig:\n%s\nwant the user's serviceMonitor.tlsConfig as given:\n%s", toYAML(got), toYAML(w.smTLS))
		}
		return
	}
	if got == nil {
		t.Fatal("ServiceMonitor: no tlsConfig for the HTTPS scrape")
	}
	if got.ServerName == nil || *got.ServerName != c.fullname()+"."+c.rc.rel.namespace+".svc" {
		t.Errorf("ServiceMonitor tlsConfig %+v: want the Service's DNS name as server name", got)
	}
	if got.CA.ConfigMap != nil {
		t.Errorf("ServiceMonitor CA from ConfigMap %+v, want the replicas' Secret", got.CA.ConfigMap)
	}
	peer, ok := w.secrets["peer-ca-file"]
	ca := got.CA.Secret
	switch {
	case !ok && ca != nil:
		t.Errorf("ServiceMonitor CA Secret %s key %s, want none (no peer CA: the replicas trust the system roots)", ca.Name, ca.Key)
	case ok && (ca == nil || ca.Name != peer.secret || ca.Key != peer.key):
		t.Errorf("ServiceMonitor CA %+v, want Secret %s key %s (the peer CA)", ca, peer.secret, peer.key)
	}
	if got.InsecureSkipVerify != nil && *got.InsecureSkipVerify {
		t.Error("ServiceMonitor: insecureSkipVerify")
	}
}

// networkPolicy checks the NetworkPolicy: ingress to the HTTP port from
// the replicas and ingressFrom (from anyone when that is empty); with
// egress restricted, egress to DNS, the replicas and egressTo; otherwise
// no egress policy at all.
func (c check) networkPolicy() {
	if !c.rc.want.networkPolicy {
		return
	}
	t, w := c.t, c.rc.want
	np := c.m.networkPolicies[0]
	c.selects("NetworkPolicy", &np.Spec.PodSelector)
	wantTypes := []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}
	if w.restrictEgress {
		wantTypes = append(wantTypes, networkingv1.PolicyTypeEgress)
	}
	if !equality.Semantic.DeepEqual(np.Spec.PolicyTypes, wantTypes) {
		t.Errorf("NetworkPolicy policyTypes %v, want %v", np.Spec.PolicyTypes, wantTypes)
	}
	if len(np.Spec.Ingress) != 1 || len(np.Spec.Ingress[0].Ports) != 1 || np.Spec.Ingress[0].Ports[0].Port.String() != "http" {
		t.Fatalf("NetworkPolicy ingress %+v: want one rule for the http port", np.Spec.Ingress)
	}
	from := np.Spec.Ingress[0].From
	if len(w.ingressFrom) == 0 {
		if len(from) != 0 {
			t.Errorf("NetworkPolicy ingress from %s\nwant anyone (networkPolicy.ingressFrom is empty)", toYAML(from))
		}
	} else {
		// The replicas first (standbys forward to the leader), then the
		// user's peers as given.
		if len(from) == 0 || !c.replicasPeer(from[0]) {
			t.Errorf("NetworkPolicy ingress from %s\nwant the replicas first: standbys forward to the leader", toYAML(from))
		} else if !equality.Semantic.DeepEqual(from[1:], w.ingressFrom) {
			t.Errorf("NetworkPolicy ingress from, after the replicas:\n%s\nwant networkPolicy.ingressFrom as given:\n%s", toYAML(from[1:]), toYAML(w.ingressFrom))
		}
	}
	if !w.restrictEgress {
		if len(np.Spec.Egress) > 0 {
			t.Errorf("NetworkPolicy egress %s\nwant none: egress is not restricted (egressTo applies only with restrictEgress)", toYAML(np.Spec.Egress))
		}
		return
	}
	if len(np.Spec.Egress) < 2 {
		t.Fatalf("NetworkPolicy egress %s\nwant DNS, the replicas, then networkPolicy.egressTo", toYAML(np.Spec.Egress))
	}
	dns := np.Spec.Egress[0]
	if len(dns.To) != 0 || len(dns.Ports) == 0 {
		t.Errorf("NetworkPolicy egress rule 0 %+v: want DNS to anywhere", dns)
	}
	for _, p := range dns.Ports {
		if p.Port == nil || p.Port.IntValue() != 53 {
			t.Errorf("NetworkPolicy egress rule 0: port %v, want DNS (53) only", p.Port)
		}
	}
	peers := np.Spec.Egress[1]
	if len(peers.To) != 1 || !c.replicasPeer(peers.To[0]) || len(peers.Ports) != 1 || peers.Ports[0].Port.String() != "http" {
		t.Errorf("NetworkPolicy egress rule 1 %s\nwant the replicas' http port (standbys forward to the leader)", toYAML(peers))
	}
	if got := np.Spec.Egress[2:]; !equality.Semantic.DeepEqual(got, w.egressTo) && len(got)+len(w.egressTo) > 0 {
		t.Errorf("NetworkPolicy egress after DNS and the replicas:\n%s\nwant networkPolicy.egressTo as given:\n%s", toYAML(got), toYAML(w.egressTo))
	}
}

// replicasPeer reports whether p is the replicas themselves: a pod
// selector matching their labels, in the release's namespace.
func (c check) replicasPeer(p networkingv1.NetworkPolicyPeer) bool {
	if p.PodSelector == nil || p.NamespaceSelector != nil || p.IPBlock != nil {
		return false
	}
	s, err := metav1.LabelSelectorAsSelector(p.PodSelector)
	return err == nil && !s.Empty() && s.Matches(c.podLabels())
}

// notes checks that NOTES.txt tells how to find the leader and the status
// page.
func (c check) notes(notes string) {
	for _, s := range []string{
		"rollout status statefulset/" + c.fullname(),
		"exec " + c.fullname() + "-0 -- regent status",
		"/v1/leader",
		"regent_is_leader",
		"port-forward svc/" + c.fullname(),
		"status page",
	} {
		if !strings.Contains(notes, s) {
			c.t.Errorf("NOTES.txt does not mention %q:\n%s", s, notes)
		}
	}
}
