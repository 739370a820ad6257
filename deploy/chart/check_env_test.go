package chart

import (
	"fmt"
	"path"
	"regexp"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// varRef is a $(NAME) reference the kubelet expands in env values.
var varRef = regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`)

// env checks the container's environment against the binary's flags: every
// REGENT_* variable is one docs/FLAGS.md lists, each is set once, the
// replica's identity comes from the downward API, and the settings of the
// case have the values it wants.
func (c check) env() {
	t, w := c.t, c.rc.want
	ctr := container(t, c.m.statefulSet(t))
	seen := map[string]bool{}
	for _, e := range ctr.Env {
		if seen[e.Name] {
			t.Errorf("%s is set twice", e.Name)
		}
		for _, ref := range varRef.FindAllStringSubmatch(e.Value, -1) {
			if !seen[ref[1]] {
				t.Errorf("%s refers to $(%s), which is not set before it (the kubelet would leave it unexpanded)", e.Name, ref[1])
			}
		}
		seen[e.Name] = true
		if strings.HasPrefix(e.Name, "REGENT_") {
			if _, ok := c.bf.flagOf[e.Name]; !ok {
				t.Errorf("%s is no variable of regent run (docs/FLAGS.md): a renamed or misspelt flag", e.Name)
			}
		}
	}

	// Identity: the pod name, and an address the others reach it at.
	id := envVar(ctr, c.bf.env(t, "id"))
	if id == nil || id.ValueFrom == nil || id.ValueFrom.FieldRef == nil || id.ValueFrom.FieldRef.FieldPath != "metadata.name" {
		t.Errorf("%s: want the pod name from the downward API, got %+v", c.bf.env(t, "id"), id)
	}
	c.advertise(ctr)

	for flag, want := range w.settings {
		if got := c.setting(ctr, flag); got != want {
			t.Errorf("--%s (%s) = %q, want %q", flag, c.bf.env(t, flag), got, want)
		}
	}
	// The store's settings never mix.
	for _, flag := range map[string][]string{
		"etcd":      {"zk-servers", "zk-session-timeout", "zk-digest-file"},
		"zookeeper": {"etcd-endpoints", "election-ttl", "etcd-username", "etcd-password-file", "etcd-ca-file", "etcd-cert-file", "etcd-key-file"},
	}[w.store] {
		if v := c.setting(ctr, flag); v != "" {
			t.Errorf("--%s = %q with the %s store", flag, v, w.store)
		}
	}
	if w.store == "etcd" && c.setting(ctr, "etcd-endpoints") == "" || w.store == "zookeeper" && c.setting(ctr, "zk-servers") == "" {
		t.Errorf("no %s servers set", w.store)
	}
	if c.setting(ctr, "master") == "" {
		t.Error("--master is not set: the binary's default 127.0.0.1:5050 means nothing in a pod")
	}
}

// advertise checks REGENT_ADVERTISE_URL: with dns, the pod's stable name
// under the headless Service; with podIP, the pod's IP.
func (c check) advertise(ctr *corev1.Container) {
	t, w := c.t, c.rc.want
	scheme := "http"
	if w.tls {
		scheme = "https"
	}
	got := c.setting(ctr, "advertise-url")
	idVar := c.bf.env(t, "id")
	var want string
	if w.advertise == "podIP" {
		ip := envVar(ctr, "POD_IP")
		if ip == nil || ip.ValueFrom == nil || ip.ValueFrom.FieldRef == nil || ip.ValueFrom.FieldRef.FieldPath != "status.podIP" {
			t.Errorf("POD_IP: want status.podIP from the downward API, got %+v", ip)
		}
		want = fmt.Sprintf("%s://$(POD_IP):%d", scheme, w.port)
	} else {
		// <pod>.<serviceName>.<namespace>.svc.<domain> is the DNS name a
		// StatefulSet pod gets from its headless Service.
		sts := c.m.statefulSet(t)
		want = fmt.Sprintf("%s://$(%s).%s.%s.svc.cluster.local:%d", scheme, idVar, sts.Spec.ServiceName, c.rc.rel.namespace, w.port)
		c.m.service(t, sts.Spec.ServiceName)
	}
	if got != want {
		t.Errorf("--advertise-url = %q, want %q", got, want)
	}
	if strings.HasPrefix(got, "https://") != (c.setting(ctr, "tls-cert-file") != "") {
		t.Errorf("--advertise-url %q: the scheme must be https exactly when --tls-cert-file is set", got)
	}
}

// secretFiles checks every *-file flag: its path is mounted from the Secret
// and key the case names, read-only, and no other file flag is set.
func (c check) secretFiles() {
	t, w := c.t, c.rc.want
	ctr := container(t, c.m.statefulSet(t))
	for flag := range c.bf.envOf {
		if !strings.HasSuffix(flag, "-file") || flag == "config" {
			continue
		}
		p := c.setting(ctr, flag)
		want, ok := w.secrets[flag]
		switch {
		case p == "" && !ok:
			continue
		case p == "":
			t.Errorf("--%s is not set, want the file from Secret %s key %s", flag, want.secret, want.key)
			continue
		case !ok:
			t.Errorf("--%s = %q, want it unset", flag, p)
			continue
		}
		secret, key, err := c.secretAt(ctr, p)
		if err != nil {
			t.Errorf("--%s = %q: %v", flag, p, err)
		} else if secret != want.secret || key != want.key {
			t.Errorf("--%s = %q is Secret %s key %s, want Secret %s key %s", flag, p, secret, key, want.secret, want.key)
		}
	}
}

// secretAt finds which Secret and key the file p of the container is.
func (c check) secretAt(ctr *corev1.Container, p string) (secret, key string, err error) {
	vols := c.m.statefulSet(c.t).Spec.Template.Spec.Volumes
	for _, vm := range ctr.VolumeMounts {
		if path.Dir(p) != vm.MountPath {
			continue
		}
		if !vm.ReadOnly {
			return "", "", fmt.Errorf("volume %s is mounted writable", vm.Name)
		}
		for _, v := range vols {
			if v.Name != vm.Name || v.Secret == nil {
				continue
			}
			for _, it := range v.Secret.Items {
				if it.Path == path.Base(p) {
					return v.Secret.SecretName, it.Key, nil
				}
			}
			return "", "", fmt.Errorf("Secret volume %s has no item %s", v.Name, path.Base(p))
		}
	}
	return "", "", fmt.Errorf("no Secret volume is mounted at %s", path.Dir(p))
}

// setting is the value of flag's variable in ctr ("" when unset); a flag
// the binary lacks fails the test.
func (c check) setting(ctr *corev1.Container, flag string) string {
	c.t.Helper()
	e := envVar(ctr, c.bf.env(c.t, flag))
	if e == nil {
		return ""
	}
	return e.Value
}

// duration is a duration flag's value, or fails the test.
func (c check) duration(ctr *corev1.Container, flag string) time.Duration {
	c.t.Helper()
	v := c.setting(ctr, flag)
	d, err := time.ParseDuration(v)
	if err != nil {
		c.t.Fatalf("--%s = %q: %v", flag, v, err)
	}
	return d
}

// flagArg checks that an argument "--name=value" names a flag of regent run.
func (c check) flagArg(a string) {
	name, _, _ := strings.Cut(strings.TrimPrefix(a, "--"), "=")
	if !strings.HasPrefix(a, "--") {
		c.t.Errorf("argument %q is not a --flag", a)
	} else if _, ok := c.bf.envOf[name]; !ok {
		c.t.Errorf("argument %q: regent run has no flag --%s", a, name)
	}
}
