package chart

import (
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// statefulSet checks the replicas' controller.
func (c check) statefulSet() {
	t, w := c.t, c.rc.want
	sts := c.m.statefulSet(t)
	if sts.Spec.Replicas == nil || *sts.Spec.Replicas != w.replicas {
		t.Errorf("replicas %v, want %d", sts.Spec.Replicas, w.replicas)
	}
	if sts.Spec.ServiceName != c.headless() {
		t.Errorf("serviceName %q, want the headless Service %q", sts.Spec.ServiceName, c.headless())
	}
	if sts.Spec.PodManagementPolicy != appsv1.ParallelPodManagement {
		t.Errorf("podManagementPolicy %q, want Parallel (replicas need no start order)", sts.Spec.PodManagementPolicy)
	}
	if sts.Spec.UpdateStrategy.Type != appsv1.RollingUpdateStatefulSetStrategyType {
		t.Errorf("updateStrategy %q, want RollingUpdate", sts.Spec.UpdateStrategy.Type)
	}
	if len(sts.Spec.VolumeClaimTemplates) > 0 {
		t.Error("volumeClaimTemplates: the state is in the store, a replica needs no volume")
	}
	c.selects("StatefulSet", sts.Spec.Selector)
	if got := container(t, sts).Image; got != w.image {
		t.Errorf("image %q, want %q", got, w.image)
	}
}

// pod checks the pod template: identity, security, spreading, shutdown.
func (c check) pod() {
	t, w := c.t, c.rc.want
	sts := c.m.statefulSet(t)
	ps := sts.Spec.Template.Spec
	ctr := container(t, sts)

	if ps.ServiceAccountName != w.serviceAccount && w.serviceAccount != "" {
		t.Errorf("serviceAccountName %q, want %q", ps.ServiceAccountName, w.serviceAccount)
	}
	if w.createSA && (len(c.m.serviceAccounts) != 1 || c.m.serviceAccounts[0].Name != ps.ServiceAccountName) {
		t.Errorf("the pods run as %q, which the chart did not create", ps.ServiceAccountName)
	}
	if ps.AutomountServiceAccountToken == nil || *ps.AutomountServiceAccountToken {
		t.Error("automountServiceAccountToken must be false: regent never calls the Kubernetes API")
	}
	if ps.EnableServiceLinks == nil || *ps.EnableServiceLinks {
		t.Error("enableServiceLinks must be false: Service variables would land among the REGENT_* settings")
	}

	// Security.
	psc := ps.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser != 65532 ||
		psc.FSGroup == nil || *psc.FSGroup != 65532 {
		t.Errorf("pod securityContext %+v: want runAsNonRoot, runAsUser and fsGroup 65532", psc)
	}
	if psc == nil || psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Error("pod securityContext: want seccompProfile RuntimeDefault")
	}
	sc := ctr.SecurityContext
	switch {
	case sc == nil:
		t.Fatal("container securityContext missing")
	case sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem:
		t.Error("container: want readOnlyRootFilesystem")
	case sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation:
		t.Error("container: want allowPrivilegeEscalation false")
	case sc.Privileged != nil && *sc.Privileged:
		t.Error("container: privileged")
	case sc.Capabilities == nil || len(sc.Capabilities.Drop) != 1 || sc.Capabilities.Drop[0] != "ALL" || len(sc.Capabilities.Add) > 0:
		t.Errorf("container capabilities %+v: want drop [ALL], add none", sc.Capabilities)
	}
	if !c.mounted("/tmp", func(v corev1.Volume) bool { return v.EmptyDir != nil }) {
		t.Error("/tmp: want an emptyDir (the root filesystem is read-only)")
	}
	for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		if _, ok := ctr.Resources.Requests[r]; !ok {
			t.Errorf("resources: no %s request", r)
		}
	}
	if _, ok := ctr.Resources.Limits[corev1.ResourceMemory]; !ok {
		t.Error("resources: no memory limit")
	}

	c.spreading(ps)
	c.shutdown(ps, ctr)
	if len(ctr.Args) == 0 || ctr.Args[0] != "run" {
		t.Fatalf("args %q: want run first", ctr.Args)
	}
	if len(ctr.Command) > 0 {
		t.Errorf("command %q: the image's entrypoint is the binary", ctr.Command)
	}
	for _, a := range ctr.Args[1:] {
		c.flagArg(a)
	}
	if got := ctr.Args[1:]; len(got) != len(w.extraArgs) {
		t.Errorf("args after run %q, want %q", got, w.extraArgs)
	}
}

// spreading checks the anti-affinity and the topology spread: the chart's,
// or the user's instead when given (values.yaml: topologySpreadConstraints
// replace the zone spread; an affinity with podAntiAffinity replaces the
// chart's anti-affinity, the rest of the affinity is kept beside it).
func (c check) spreading(ps corev1.PodSpec) {
	t, w := c.t, c.rc.want
	var anti *corev1.PodAntiAffinity
	if ps.Affinity != nil {
		anti = ps.Affinity.PodAntiAffinity
	}
	if got := ps.Affinity != nil && ps.Affinity.NodeAffinity != nil; got != w.nodeAffinity {
		t.Errorf("node affinity %v, want %v", got, w.nodeAffinity)
	}
	c.topologySpread(ps)
	var terms []corev1.PodAffinityTerm
	switch w.antiAffinity {
	case "user":
		if !equality.Semantic.DeepEqual(anti, w.userAntiAffinity) {
			t.Errorf("podAntiAffinity:\n%s\nwant the user's as given, in place of the chart's:\n%s", toYAML(anti), toYAML(w.userAntiAffinity))
		}
		return
	case "none":
		if anti != nil {
			t.Errorf("podAntiAffinity %+v, want none", anti)
		}
		return
	case "hard":
		if anti == nil || len(anti.RequiredDuringSchedulingIgnoredDuringExecution) == 0 || len(anti.PreferredDuringSchedulingIgnoredDuringExecution) > 0 {
			t.Fatalf("podAntiAffinity %+v, want required", anti)
		}
		terms = anti.RequiredDuringSchedulingIgnoredDuringExecution
	default:
		if anti == nil || len(anti.PreferredDuringSchedulingIgnoredDuringExecution) == 0 || len(anti.RequiredDuringSchedulingIgnoredDuringExecution) > 0 {
			t.Fatalf("podAntiAffinity %+v, want preferred", anti)
		}
		for _, p := range anti.PreferredDuringSchedulingIgnoredDuringExecution {
			terms = append(terms, p.PodAffinityTerm)
		}
	}
	for _, term := range terms {
		if term.TopologyKey != "kubernetes.io/hostname" {
			t.Errorf("anti-affinity topologyKey %q, want kubernetes.io/hostname", term.TopologyKey)
		}
		c.selects("anti-affinity", term.LabelSelector)
	}
}

// topologySpread checks the topology spread constraints: the user's as
// given, else the chart's zone spread when zoneSpread is on.
func (c check) topologySpread(ps corev1.PodSpec) {
	t, w := c.t, c.rc.want
	if w.topologySpread != nil {
		if !equality.Semantic.DeepEqual(ps.TopologySpreadConstraints, w.topologySpread) {
			t.Errorf("topologySpreadConstraints:\n%s\nwant the user's as given, in place of the chart's zone spread:\n%s", toYAML(ps.TopologySpreadConstraints), toYAML(w.topologySpread))
		}
		return
	}
	zone := false
	for _, tsc := range ps.TopologySpreadConstraints {
		if tsc.TopologyKey == "topology.kubernetes.io/zone" {
			zone = true
			c.selects("topology spread", tsc.LabelSelector)
			if tsc.WhenUnsatisfiable != corev1.ScheduleAnyway {
				t.Errorf("zone spread: whenUnsatisfiable %q, want ScheduleAnyway (clusters with one zone must still schedule)", tsc.WhenUnsatisfiable)
			}
		}
	}
	if zone != w.zoneSpread {
		t.Errorf("zone spread %v, want %v", zone, w.zoneSpread)
	}
}

// shutdown checks that a graceful hand-over fits in the grace period: the
// preStop sleep, then --shutdown-timeout for the hand-over and again for
// the in-flight requests.
func (c check) shutdown(ps corev1.PodSpec, ctr *corev1.Container) {
	t, w := c.t, c.rc.want
	var sleep int64
	if ctr.Lifecycle != nil && ctr.Lifecycle.PreStop != nil {
		h := ctr.Lifecycle.PreStop
		if h.Sleep == nil || h.Exec != nil || h.HTTPGet != nil {
			t.Fatalf("preStop %+v: want the sleep action (the image has no shell)", h)
		}
		sleep = h.Sleep.Seconds
	}
	if sleep != w.preStopSleep {
		t.Errorf("preStop sleep %ds, want %ds", sleep, w.preStopSleep)
	}
	st := c.setting(ctr, "shutdown-timeout")
	d, err := time.ParseDuration(st)
	if err != nil {
		t.Fatalf("shutdown-timeout %q: %v", st, err)
	}
	need := sleep + 2*int64(d/time.Second)
	grace := ps.TerminationGracePeriodSeconds
	if grace == nil || *grace < need || *grace > need+30 {
		t.Errorf("terminationGracePeriodSeconds %v: want %d (preStop %ds + 2 × shutdown-timeout %s) plus a little", grace, need, sleep, st)
	}
}

// probes checks liveness and readiness: /healthz and /readyz on the http
// port, readiness timed from the election, liveness lax.
func (c check) probes() {
	t, w := c.t, c.rc.want
	ctr := container(t, c.m.statefulSet(t))
	scheme := corev1.URISchemeHTTP
	if w.tls {
		scheme = corev1.URISchemeHTTPS
	}
	for _, p := range []struct {
		name  string
		probe *corev1.Probe
		path  string
	}{{"liveness", ctr.LivenessProbe, "/healthz"}, {"readiness", ctr.ReadinessProbe, "/readyz"}} {
		if p.probe == nil || p.probe.HTTPGet == nil {
			t.Fatalf("%s probe: want an HTTP GET", p.name)
		}
		g := p.probe.HTTPGet
		if g.Path != p.path || g.Port != intstr.FromString("http") || g.Scheme != scheme {
			t.Errorf("%s probe %s %s %s, want %s on http over %s", p.name, g.Scheme, g.Port.String(), g.Path, p.path, scheme)
		}
		if p.probe.TimeoutSeconds > p.probe.PeriodSeconds {
			t.Errorf("%s probe: timeout %ds longer than its period %ds", p.name, p.probe.TimeoutSeconds, p.probe.PeriodSeconds)
		}
	}
	// How long the election takes to replace a leader cut off from the
	// store: the etcd lease TTL, or half the ZooKeeper session timeout.
	var budget time.Duration
	if w.store == "etcd" {
		budget = c.duration(ctr, "election-ttl")
	} else {
		budget = c.duration(ctr, "zk-session-timeout") / 2
	}
	r := ctr.ReadinessProbe
	window := time.Duration(r.PeriodSeconds*r.FailureThreshold) * time.Second
	if window > budget || r.FailureThreshold < 2 {
		t.Errorf("readiness: %d × %ds = %v to notice; want at least 2 checks within the election's %v", r.FailureThreshold, r.PeriodSeconds, window, budget)
	}
	l := ctr.LivenessProbe
	// /healthz depends on nothing but the process serving HTTP: liveness
	// only needs to catch a hung process, never a CPU-starved moment.
	if lw := time.Duration(l.PeriodSeconds*l.FailureThreshold) * time.Second; lw < 30*time.Second {
		t.Errorf("liveness restarts after %v of failures: want at least 30s", lw)
	}
}

// mounted reports whether a volume accepted by ok is mounted at path.
func (c check) mounted(path string, ok func(corev1.Volume) bool) bool {
	sts := c.m.statefulSet(c.t)
	ctr := container(c.t, sts)
	for _, vm := range ctr.VolumeMounts {
		if vm.MountPath != path {
			continue
		}
		for _, v := range sts.Spec.Template.Spec.Volumes {
			if v.Name == vm.Name && ok(v) {
				return true
			}
		}
	}
	return false
}
