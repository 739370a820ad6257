package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

// load parses args, env and returns the config or the error of Load.
func load(t *testing.T, args []string, env map[string]string) (*Config, error) {
	t.Helper()
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	c := Register(fs)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	return c, c.Load(fs, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
}

func write(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDefaultsWithAStoreAreValid(t *testing.T) {
	c, err := load(t, []string{"--etcd-endpoints", "http://127.0.0.1:2379"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.StoreKind() != "etcd" || c.Name != "regent" || c.FailoverTimeout != 7*24*time.Hour || c.ElectionTTL != 5*time.Second {
		t.Errorf("unexpected defaults: %+v", c)
	}
}

func TestPrecedenceFlagOverEnvOverFile(t *testing.T) {
	file := write(t, "regent.yaml", "name: from-file\nrole: file-role\nzk-servers: [127.0.0.1:2181, 127.0.0.1:2182]\ntask-cpus: 0.5\n")
	c, err := load(t, []string{"--config", file, "--name", "from-flag"},
		map[string]string{"REGENT_NAME": "from-env", "REGENT_ROLE": "env-role"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Name != "from-flag" || c.Role != "env-role" || c.TaskCPUs != 0.5 {
		t.Errorf("name %q role %q cpus %v: want from-flag, env-role, 0.5", c.Name, c.Role, c.TaskCPUs)
	}
	if c.StoreKind() != "zookeeper" || len(c.ZKServers) != 2 || c.ZKServers[1] != "127.0.0.1:2182" {
		t.Errorf("zk servers from the file: %v", c.ZKServers)
	}
	// The file may also be named by the environment.
	c, err = load(t, nil, map[string]string{"REGENT_CONFIG": file})
	if err != nil || c.Name != "from-file" {
		t.Errorf("REGENT_CONFIG: name %q, err %v", c.Name, err)
	}
}

func TestBadValuesNameTheSetting(t *testing.T) {
	token := write(t, "tokens", "short\n")
	digest := write(t, "digest", "nocolon\n")
	notPEM := write(t, "ca.pem", "not a certificate\n")
	etcd := []string{"--etcd-endpoints", "http://127.0.0.1:2379"}
	cases := []struct {
		name string
		args []string
		env  map[string]string
		file string
		want []string
	}{
		{"no store", nil, nil, "", []string{"--etcd-endpoints", "no store"}},
		{"both stores", []string{"--etcd-endpoints", "http://a:1", "--zk-servers", "b:2"}, nil, "", []string{"--zk-servers", "choose one"}},
		{"bad endpoint", []string{"--etcd-endpoints", "ftp://a:1"}, nil, "", []string{"--etcd-endpoints", "ftp://a:1"}},
		{"endpoint without port", []string{"--etcd-endpoints", "etcd-0"}, nil, "", []string{"want host:port"}},
		{"zk server", []string{"--zk-servers", "zk:99999"}, nil, "", []string{"--zk-servers", "1..65535"}},
		{"ttl too short", append([]string{"--election-ttl", "1s"}, etcd...), nil, "", []string{"--election-ttl", "REGENT_ELECTION_TTL", "2s to 60s"}},
		{"ttl fraction", append([]string{"--election-ttl", "2500ms"}, etcd...), nil, "", []string{"whole seconds"}},
		{"load timeout zero", append([]string{"--load-timeout", "0s"}, etcd...), nil, "", []string{"--load-timeout", "REGENT_LOAD_TIMEOUT", "must be positive"}},
		{"session timeout", []string{"--zk-servers", "z:1", "--zk-session-timeout", "500ms"}, nil, "", []string{"--zk-session-timeout"}},
		{"env duration", etcd, map[string]string{"REGENT_FAILOVER_TIMEOUT": "soon"}, "", []string{"REGENT_FAILOVER_TIMEOUT", "soon"}},
		{"zero failover", append([]string{"--failover-timeout", "0s"}, etcd...), nil, "", []string{"--failover-timeout", "kills every task"}},
		{"master", append([]string{"--master", "mesos:5050"}, etcd...), nil, "", []string{"--master", "no scheme"}},
		{"master password hidden", append([]string{"--master", "zk://u:hunter2@zk/mesos"}, etcd...), nil, "", []string{"--master"}},
		{"name", append([]string{"--name", "my/fw"}, etcd...), nil, "", []string{"--name", "only letters"}},
		{"role", append([]string{"--role", "-ops"}, etcd...), nil, "", []string{"--role", "'-'"}},
		{"cpus", append([]string{"--task-cpus", "0"}, etcd...), nil, "", []string{"--task-cpus"}},
		{"cpus not a number", etcd, map[string]string{"REGENT_TASK_CPUS": "many"}, "", []string{"REGENT_TASK_CPUS", "not a number"}},
		{"backoff order", append([]string{"--relaunch-backoff-min", "1m", "--relaunch-backoff-max", "1s"}, etcd...), nil, "", []string{"--relaunch-backoff-max"}},
		{"listen", append([]string{"--listen", "nowhere"}, etcd...), nil, "", []string{"--listen"}},
		{"advertise", append([]string{"--advertise-url", "http://a:1/path"}, etcd...), nil, "", []string{"--advertise-url"}},
		{"advertise scheme", append([]string{"--advertise-url", "https://a:1"}, etcd...), nil, "", []string{"--advertise-url", "https://"}},
		{"half a key pair", append([]string{"--tls-cert-file", "x"}, etcd...), nil, "", []string{"--tls-key-file"}},
		{"client ca without tls", append([]string{"--tls-client-ca-file", notPEM}, etcd...), nil, "", []string{"--tls-client-ca-file", "HTTPS", "no PEM"}},
		{"short token", append([]string{"--auth-token-file", token}, etcd...), nil, "", []string{"--auth-token-file", "line 1", "16"}},
		{"missing token file", append([]string{"--auth-token-file", "/nonexistent/tokens"}, etcd...), nil, "", []string{"--auth-token-file", "no such file"}},
		{"digest", []string{"--zk-servers", "z:1", "--zk-digest-file", digest}, nil, "", []string{"--zk-digest-file", "user:password"}},
		{"etcd user without password", append([]string{"--etcd-username", "root"}, etcd...), nil, "", []string{"--etcd-password-file"}},
		{"tls files with http endpoint", []string{"--etcd-endpoints", "http://a:1", "--etcd-ca-file", notPEM}, nil, "", []string{"use https://", "--etcd-ca-file"}},
		{"log level", append([]string{"--log-level", "loud"}, etcd...), nil, "", []string{"--log-level"}},
		{"file unknown key", etcd, nil, "nmae: typo\n", []string{"line 1", `unknown setting "nmae"`}},
		{"file bad value", etcd, nil, "\nelection-ttl: forever\n", []string{"line 2", "election-ttl"}},
		{"file not a mapping", etcd, nil, "- a\n- b\n", []string{"want a mapping"}},
		{"file nested", etcd, nil, "name: {a: b}\n", []string{"name", "want a value or a list"}},
		{"file duplicate", etcd, nil, "name: a\nname: b\n", []string{"given twice"}},
		{"file not yaml", etcd, nil, "name: [\n", []string{"not YAML"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			args := tc.args
			if tc.file != "" {
				args = append(args, "--config", write(t, "c.yaml", tc.file))
			}
			_, err := load(t, args, tc.env)
			if err == nil {
				t.Fatalf("no error, want one containing %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error shows a password: %v", err)
			}
		})
	}
}

func TestEveryProblemIsReportedAtOnce(t *testing.T) {
	_, err := load(t, []string{"--task-cpus", "-1", "--log-format", "xml"}, nil)
	if err == nil {
		t.Fatal("no error")
	}
	for _, w := range []string{"--task-cpus", "--log-format", "no store"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not mention %q", err, w)
		}
	}
}

func TestSecretsFiles(t *testing.T) {
	tokens, err := ReadTokens(write(t, "t", "# comment\n\n0123456789abcdef\n  fedcba9876543210  \n"))
	if err != nil || len(tokens) != 2 || tokens[1] != "fedcba9876543210" {
		t.Errorf("ReadTokens = %q, %v", tokens, err)
	}
	if _, err := ReadTokens(write(t, "t", "# only a comment\n")); err == nil {
		t.Error("a token file with no token: no error")
	}
	u, p, err := ReadDigest(write(t, "d", "sched:pa:ss\n"))
	if err != nil || u != "sched" || p != "pa:ss" {
		t.Errorf("ReadDigest = %q %q %v", u, p, err)
	}
	if _, err := ReadSecret(write(t, "s", "a\nb\n")); err == nil || strings.Contains(err.Error(), "a\nb") {
		t.Errorf("two-line secret: %v", err)
	}
}

func TestEnvName(t *testing.T) {
	if got := EnvName("etcd-ca-file"); got != "REGENT_ETCD_CA_FILE" {
		t.Errorf("EnvName = %q", got)
	}
}
