// Package config is the configuration of a regent replica: its flags, the
// REGENT_* environment variables that stand in for them, an optional YAML
// file, and the validation that turns a bad value into an error naming the
// setting, where it came from, and what is wrong — before anything starts.
//
// Precedence, highest first: a flag on the command line, its environment
// variable (REGENT_ and the flag name in upper case with '-' as '_'), its
// key in the file named by --config, the default.
package config

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"go.yaml.in/yaml/v3"
)

// Config is everything a replica is told. Secrets are never values here:
// only the paths of the files that hold them.
type Config struct {
	File string // --config

	// The framework.
	Name            string
	Role            string
	Principal       string
	User            string
	FailoverTimeout time.Duration
	Master          string

	// The store.
	Prefix           string
	EtcdEndpoints    []string
	EtcdUsername     string
	EtcdPasswordFile string
	EtcdCAFile       string
	EtcdCertFile     string
	EtcdKeyFile      string
	EtcdDialTimeout  time.Duration
	ZKServers        []string
	ZKDigestFile     string
	ZKSessionTimeout time.Duration
	ElectionTTL      time.Duration
	LoadTimeout      time.Duration

	// This replica.
	ID              string
	Listen          string
	AdvertiseURL    string
	TLSCertFile     string
	TLSKeyFile      string
	TLSClientCAFile string
	PeerCAFile      string
	AuthTokenFile   string
	ShutdownTimeout time.Duration
	LogLevel        string
	LogFormat       string

	// The example framework's tasks.
	TaskCPUs           float64
	TaskMem            float64
	TaskCommand        string
	RelaunchBackoffMin time.Duration
	RelaunchBackoffMax time.Duration
}

// EnvPrefix starts the name of every environment variable regent reads.
const EnvPrefix = "REGENT_"

// EnvName is the environment variable that stands in for flag.
func EnvName(flag string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// Register defines the replica's flags on fs, with their defaults and help,
// and returns the Config they fill in.
func Register(fs *pflag.FlagSet) *Config {
	c := &Config{}
	host, _ := os.Hostname()
	user := os.Getenv("USER")
	if user == "" {
		user = "root"
	}
	fs.StringVar(&c.File, "config", "", "YAML file of settings keyed by flag name, such as \"etcd-endpoints: [https://etcd-0:2379]\"; flags and REGENT_* variables override it")

	fs.StringVar(&c.Name, "name", "regent", "framework name: registered with Mesos, the prefix of task ids, and the store directory <store-prefix>/<name>")
	fs.StringVar(&c.Role, "role", "*", "Mesos role whose offers the framework uses")
	fs.StringVar(&c.Principal, "principal", "", "Mesos principal the framework registers with (empty: none)")
	fs.StringVar(&c.User, "user", user, "user the tasks run as on the agents")
	fs.DurationVar(&c.FailoverTimeout, "failover-timeout", 7*24*time.Hour, "how long Mesos keeps the framework's tasks while no scheduler is subscribed; must cover the longest outage of every replica")
	fs.StringVar(&c.Master, "master", "http://127.0.0.1:5050", "Mesos masters: comma-separated http(s)://host:port base URLs, or zk://[user:password@]host:port[,...]/path")

	fs.StringVar(&c.Prefix, "store-prefix", "/regent", "root of regent's keys or znodes in the store; the framework lives under <store-prefix>/<name>")
	fs.StringSliceVar(&c.EtcdEndpoints, "etcd-endpoints", nil, "etcd endpoints (http(s)://host:port, comma-separated); exactly one of --etcd-endpoints and --zk-servers")
	fs.StringVar(&c.EtcdUsername, "etcd-username", "", "etcd user (with --etcd-password-file)")
	fs.StringVar(&c.EtcdPasswordFile, "etcd-password-file", "", "file holding the etcd user's password")
	fs.StringVar(&c.EtcdCAFile, "etcd-ca-file", "", "PEM CA bundle that signed the etcd servers' certificates")
	fs.StringVar(&c.EtcdCertFile, "etcd-cert-file", "", "PEM client certificate for etcd (with --etcd-key-file)")
	fs.StringVar(&c.EtcdKeyFile, "etcd-key-file", "", "PEM private key of --etcd-cert-file")
	fs.DurationVar(&c.EtcdDialTimeout, "etcd-dial-timeout", 5*time.Second, "timeout of each connection attempt to etcd")
	fs.StringSliceVar(&c.ZKServers, "zk-servers", nil, "ZooKeeper servers (host:port, comma-separated); exactly one of --etcd-endpoints and --zk-servers")
	fs.StringVar(&c.ZKDigestFile, "zk-digest-file", "", "file holding user:password for ZooKeeper digest authentication; regent's znodes then get a digest ACL for that user")
	fs.DurationVar(&c.ZKSessionTimeout, "zk-session-timeout", 10*time.Second, "ZooKeeper session timeout; a leader cut off from ZooKeeper steps down after half of it, and /readyz fails after half of it without an answer from ZooKeeper")
	fs.DurationVar(&c.LoadTimeout, "load-timeout", 30*time.Second, "how long a newly elected leader may take to load the state from the store; past it, it gives the leadership up and campaigns again")
	fs.DurationVar(&c.ElectionTTL, "election-ttl", 5*time.Second, "etcd lease TTL of a replica's candidacy (whole seconds, 2s..60s): a crashed leader is replaced within about this long, and /readyz fails after this long without an answer from etcd")

	fs.StringVar(&c.ID, "id", host, "this replica's name, shown to the others and on the status page")
	fs.StringVar(&c.Listen, "listen", ":8080", "address of the REST API, status page, /healthz, /readyz and /metrics")
	fs.StringVar(&c.AdvertiseURL, "advertise-url", "", "base URL where the other replicas reach this one (default: from --listen and the host name)")
	fs.StringVar(&c.TLSCertFile, "tls-cert-file", "", "PEM certificate: serve HTTPS (with --tls-key-file)")
	fs.StringVar(&c.TLSKeyFile, "tls-key-file", "", "PEM private key of --tls-cert-file")
	fs.StringVar(&c.TLSClientCAFile, "tls-client-ca-file", "", "PEM CA bundle: a client certificate it signed authenticates writes (mTLS)")
	fs.StringVar(&c.PeerCAFile, "peer-ca-file", "", "PEM CA bundle that signed the other replicas' certificates, for forwarding to the leader over HTTPS (default: the system roots)")
	fs.StringVar(&c.AuthTokenFile, "auth-token-file", "", "file of bearer tokens, one per line: every write needs one of them (or a client certificate from --tls-client-ca-file)")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", 20*time.Second, "on SIGTERM, how long to wait for the hand-over and in-flight requests")
	fs.StringVar(&c.LogLevel, "log-level", "info", "log level: debug, info, warn or error")
	fs.StringVar(&c.LogFormat, "log-format", "json", "log format: json or console")

	fs.Float64Var(&c.TaskCPUs, "task-cpus", 0.1, "cpus of each task")
	fs.Float64Var(&c.TaskMem, "task-mem", 32, "memory of each task, in MiB")
	fs.StringVar(&c.TaskCommand, "task-command", "sleep 86400", "shell command each task runs")
	fs.DurationVar(&c.RelaunchBackoffMin, "relaunch-backoff-min", time.Second, "wait before relaunching a task that ended on an agent; doubles with every consecutive failure there")
	fs.DurationVar(&c.RelaunchBackoffMax, "relaunch-backoff-max", time.Minute, "longest wait before a relaunch")
	return c
}

// Load fills in every flag not given on the command line from its
// environment variable (lookup, normally os.LookupEnv) or from the file
// named by --config, then validates the result. fs must have been parsed.
func (c *Config) Load(fs *pflag.FlagSet, lookup func(string) (string, bool)) error {
	given := map[string]bool{}
	fs.Visit(func(f *pflag.Flag) { given[f.Name] = true })

	var errs []error
	if !given["config"] {
		if v, ok := lookup(EnvName("config")); ok {
			c.File = v
		}
	}
	fromEnv := map[string]bool{}
	fs.VisitAll(func(f *pflag.Flag) {
		if given[f.Name] || f.Name == "config" {
			return
		}
		v, ok := lookup(EnvName(f.Name))
		if !ok {
			return
		}
		fromEnv[f.Name] = true
		if err := fs.Set(f.Name, v); err != nil {
			errs = append(errs, fmt.Errorf("%s=%q: %v", EnvName(f.Name), v, cleanSetError(err)))
		}
	})
	if c.File != "" {
		values, err := readFile(c.File)
		if err != nil {
			errs = append(errs, err)
		}
		names := make([]string, 0, len(values))
		for k := range values {
			names = append(names, k)
		}
		sort.Strings(names)
		for _, name := range names {
			v := values[name]
			f := fs.Lookup(name)
			switch {
			case f == nil || name == "config" || f.Hidden:
				errs = append(errs, fmt.Errorf("config file %s, line %d: unknown setting %q", c.File, v.line, name))
			case given[name] || fromEnv[name]:
				// Overridden.
			default:
				if err := fs.Set(name, v.value); err != nil {
					errs = append(errs, fmt.Errorf("config file %s, line %d: %s: %v", c.File, v.line, name, cleanSetError(err)))
				}
			}
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	return c.Validate()
}

// cleanSetError turns pflag's parse errors into a short reason.
func cleanSetError(err error) error {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "strconv.ParseBool"):
		return errors.New("not true or false")
	case strings.Contains(msg, "strconv.Parse"):
		return errors.New("not a number")
	case strings.Contains(msg, "time: "):
		return errors.New("not a duration such as 500ms, 5s or 2m")
	}
	return err
}

type fileValue struct {
	value string
	line  int
}

// readFile reads a YAML mapping of flag names to scalars or lists of
// scalars. Nothing else is accepted: a typo is an error, not a default.
func readFile(path string) (map[string]fileValue, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config file: %w", err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("config file %s: not YAML: %v", path, err)
	}
	out := map[string]fileValue{}
	if len(doc.Content) == 0 {
		return out, nil // empty file
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("config file %s, line %d: want a mapping of setting names to values", path, root.Line)
	}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			return nil, fmt.Errorf("config file %s, line %d: a setting name must be a string", path, k.Line)
		}
		if _, dup := out[k.Value]; dup {
			return nil, fmt.Errorf("config file %s, line %d: %q given twice", path, k.Line, k.Value)
		}
		switch v.Kind {
		case yaml.ScalarNode:
			out[k.Value] = fileValue{v.Value, k.Line}
		case yaml.SequenceNode:
			items := make([]string, 0, len(v.Content))
			for _, it := range v.Content {
				if it.Kind != yaml.ScalarNode {
					return nil, fmt.Errorf("config file %s, line %d: %s: list items must be plain values", path, it.Line, k.Value)
				}
				if strings.Contains(it.Value, ",") {
					return nil, fmt.Errorf("config file %s, line %d: %s: list item %q contains a comma", path, it.Line, k.Value, it.Value)
				}
				items = append(items, it.Value)
			}
			out[k.Value] = fileValue{strings.Join(items, ","), k.Line}
		default:
			return nil, fmt.Errorf("config file %s, line %d: %s: want a value or a list of values", path, v.Line, k.Value)
		}
	}
	return out, nil
}

// StoreKind is "etcd" or "zookeeper": whichever of the two is configured.
func (c *Config) StoreKind() string {
	if len(c.ZKServers) > 0 {
		return "zookeeper"
	}
	return "etcd"
}

// StoreStaleAfter is how long a replica may go without an answer from its
// store before /readyz fails: the time the election takes to replace a
// leader cut off from the store. On etcd that is the election TTL (the
// leader's lease expires no sooner); on ZooKeeper half the session
// timeout, after which a leader that heard nothing from ZooKeeper ends its
// term. A replica that has been cut off that long could neither keep nor
// win the leadership. With the defaults it is 5s for either store.
func (c *Config) StoreStaleAfter() time.Duration {
	if c.StoreKind() == "zookeeper" {
		return c.ZKSessionTimeout / 2
	}
	return c.ElectionTTL
}

// StoreStaleFlag names the flag StoreStaleAfter derives from, for messages.
func (c *Config) StoreStaleFlag() string {
	if c.StoreKind() == "zookeeper" {
		return "half of --zk-session-timeout"
	}
	return "--election-ttl"
}

// TLS reports whether the HTTP listener serves HTTPS.
func (c *Config) TLS() bool { return c.TLSCertFile != "" }
