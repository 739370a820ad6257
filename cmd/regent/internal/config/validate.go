package config

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"math"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/regent-sched/regent/cmd/regent/internal/fleet"
	"github.com/regent-sched/regent/core"
)

// Validate checks every setting and returns all problems at once, each
// naming its flag and environment variable. It reads the files the settings
// name (certificates, token and password files) to check them, and never
// prints a secret.
func (c *Config) Validate() error {
	v := &validator{}
	c.validateFramework(v)
	c.validateStore(v)
	c.validateReplica(v)
	c.validateTasks(v)
	return errors.Join(v.errs...)
}

type validator struct{ errs []error }

func (v *validator) bad(flag, format string, args ...any) {
	v.errs = append(v.errs, fmt.Errorf("--%s (%s): %s", flag, EnvName(flag), fmt.Sprintf(format, args...)))
}

func (c *Config) validateFramework(v *validator) {
	if err := checkName(c.Name); err != nil {
		v.bad("name", "%v", err)
	}
	if c.Role == "" {
		v.bad("role", `empty (the default role is "*")`)
	} else if err := fleet.ValidRole(c.Role); err != nil {
		v.bad("role", "%v", err)
	}
	if strings.TrimSpace(c.User) == "" {
		v.bad("user", "empty: Mesos needs the user the tasks run as")
	}
	switch {
	case c.FailoverTimeout <= 0:
		v.bad("failover-timeout", "%v: must be positive; with 0 Mesos kills every task the moment the scheduler disconnects", c.FailoverTimeout)
	case c.FailoverTimeout > 365*24*time.Hour:
		v.bad("failover-timeout", "%v is longer than a year", c.FailoverTimeout)
	}
	if err := core.ValidateMasterSpec(c.Master); err != nil {
		v.bad("master", "%v", err)
	}
}

// checkName accepts what is both a Mesos task-id prefix and one store path
// component.
func checkName(s string) error {
	if s == "" {
		return errors.New("empty")
	}
	if len(s) > 64 {
		return fmt.Errorf("%q is longer than 64 characters", s)
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return fmt.Errorf("%q: only letters, digits, '-', '_' and '.' are allowed", s)
		}
	}
	if s == "." || s == ".." {
		return fmt.Errorf("%q is not a name", s)
	}
	return nil
}

func (c *Config) validateStore(v *validator) {
	if !strings.HasPrefix(c.Prefix, "/") || (len(c.Prefix) > 1 && strings.HasSuffix(c.Prefix, "/")) || strings.Contains(c.Prefix, "//") {
		v.bad("store-prefix", "%q: want an absolute path such as /regent, without a trailing '/'", c.Prefix)
	}
	etcd, zk := len(c.EtcdEndpoints) > 0, len(c.ZKServers) > 0
	switch {
	case etcd && zk:
		v.bad("zk-servers", "both --etcd-endpoints and --zk-servers are set; choose one store")
	case !etcd && !zk:
		v.bad("etcd-endpoints", "no store: set --etcd-endpoints or --zk-servers")
	}
	for _, ep := range c.EtcdEndpoints {
		if err := checkEtcdEndpoint(ep); err != nil {
			v.bad("etcd-endpoints", "%v", err)
		}
	}
	for _, s := range c.ZKServers {
		if err := checkHostPort(s); err != nil {
			v.bad("zk-servers", "%v", err)
		}
	}
	if etcd {
		c.validateEtcdAuth(v)
		if c.ElectionTTL < 2*time.Second || c.ElectionTTL > time.Minute || c.ElectionTTL%time.Second != 0 {
			v.bad("election-ttl", "%v: want whole seconds from 2s to 60s", c.ElectionTTL)
		}
		if c.EtcdDialTimeout <= 0 {
			v.bad("etcd-dial-timeout", "%v: must be positive", c.EtcdDialTimeout)
		}
	}
	if zk {
		if c.ZKSessionTimeout < 2*time.Second || c.ZKSessionTimeout > 2*time.Minute {
			v.bad("zk-session-timeout", "%v: want 2s to 2m", c.ZKSessionTimeout)
		}
		if c.ZKDigestFile != "" {
			if _, _, err := ReadDigest(c.ZKDigestFile); err != nil {
				v.bad("zk-digest-file", "%v", err)
			}
		}
	} else if c.ZKDigestFile != "" {
		v.bad("zk-digest-file", "set without --zk-servers")
	}
}

func (c *Config) validateEtcdAuth(v *validator) {
	if (c.EtcdUsername == "") != (c.EtcdPasswordFile == "") {
		v.bad("etcd-password-file", "--etcd-username and --etcd-password-file go together")
	}
	if c.EtcdPasswordFile != "" {
		if _, err := ReadSecret(c.EtcdPasswordFile); err != nil {
			v.bad("etcd-password-file", "%v", err)
		}
	}
	if (c.EtcdCertFile == "") != (c.EtcdKeyFile == "") {
		v.bad("etcd-key-file", "--etcd-cert-file and --etcd-key-file go together")
	} else if c.EtcdCertFile != "" {
		if _, err := tls.LoadX509KeyPair(c.EtcdCertFile, c.EtcdKeyFile); err != nil {
			v.bad("etcd-cert-file", "%v", err)
		}
	}
	if c.EtcdCAFile != "" {
		if _, err := ReadCAPool(c.EtcdCAFile); err != nil {
			v.bad("etcd-ca-file", "%v", err)
		}
	}
	tlsFiles := c.EtcdCAFile != "" || c.EtcdCertFile != ""
	for _, ep := range c.EtcdEndpoints {
		if tlsFiles && strings.HasPrefix(ep, "http://") {
			v.bad("etcd-endpoints", "%q is http:// but etcd TLS files are set: use https://", ep)
		}
	}
}

func checkEtcdEndpoint(ep string) error {
	if !strings.Contains(ep, "://") {
		if err := checkHostPort(ep); err != nil {
			return err
		}
		return nil
	}
	u, err := url.Parse(ep)
	if err != nil {
		return fmt.Errorf("%q: %v", ep, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("%q: want http:// or https://", ep)
	}
	if u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
		return fmt.Errorf("%q: want scheme://host:port only (credentials go in --etcd-username/--etcd-password-file)", ep)
	}
	return checkHostPort(u.Host)
}

func checkHostPort(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("%q: want host:port", s)
	}
	if host == "" {
		return fmt.Errorf("%q: no host", s)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return fmt.Errorf("%q: port must be 1..65535", s)
	}
	return nil
}

func (c *Config) validateReplica(v *validator) {
	if c.ID == "" || len(c.ID) > 128 || strings.ContainsFunc(c.ID, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		v.bad("id", "%q: want 1 to 128 characters without whitespace", c.ID)
	}
	host, port, err := net.SplitHostPort(c.Listen)
	if p, perr := strconv.Atoi(port); err != nil || perr != nil || p < 0 || p > 65535 {
		v.bad("listen", "%q: want [host]:port", c.Listen)
	} else if host != "" && net.ParseIP(host) == nil && host != "localhost" {
		v.bad("listen", "%q: the host must be an IP address or localhost", c.Listen)
	}
	if c.AdvertiseURL != "" {
		if err := checkBaseURL(c.AdvertiseURL); err != nil {
			v.bad("advertise-url", "%v", err)
		} else if c.TLS() != strings.HasPrefix(c.AdvertiseURL, "https://") {
			v.bad("advertise-url", "%q: the scheme must be https:// exactly when --tls-cert-file is set", c.AdvertiseURL)
		}
	}
	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
		v.bad("tls-key-file", "--tls-cert-file and --tls-key-file go together")
	} else if c.TLSCertFile != "" {
		if _, err := tls.LoadX509KeyPair(c.TLSCertFile, c.TLSKeyFile); err != nil {
			v.bad("tls-cert-file", "%v", err)
		}
	}
	if c.TLSClientCAFile != "" {
		if !c.TLS() {
			v.bad("tls-client-ca-file", "client certificates need HTTPS: set --tls-cert-file and --tls-key-file")
		}
		if _, err := ReadCAPool(c.TLSClientCAFile); err != nil {
			v.bad("tls-client-ca-file", "%v", err)
		}
	}
	if c.PeerCAFile != "" {
		if _, err := ReadCAPool(c.PeerCAFile); err != nil {
			v.bad("peer-ca-file", "%v", err)
		}
	}
	if c.AuthTokenFile != "" {
		if _, err := ReadTokens(c.AuthTokenFile); err != nil {
			v.bad("auth-token-file", "%v", err)
		}
	}
	if c.LoadTimeout <= 0 {
		v.bad("load-timeout", "%v: must be positive", c.LoadTimeout)
	}
	if c.ShutdownTimeout <= 0 {
		v.bad("shutdown-timeout", "%v: must be positive", c.ShutdownTimeout)
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		v.bad("log-level", "%q: want debug, info, warn or error", c.LogLevel)
	}
	switch c.LogFormat {
	case "json", "console":
	default:
		v.bad("log-format", "%q: want json or console", c.LogFormat)
	}
}

func checkBaseURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("%q: %v", s, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("%q: want http:// or https://", s)
	}
	if u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("%q: want scheme://host:port only", s)
	}
	return checkHostPort(u.Host)
}

func (c *Config) validateTasks(v *validator) {
	if !(c.TaskCPUs > 0) || c.TaskCPUs > 1e6 || math.IsInf(c.TaskCPUs, 0) {
		v.bad("task-cpus", "%v: want a positive number of cpus", c.TaskCPUs)
	}
	if !(c.TaskMem > 0) || c.TaskMem > 1e9 || math.IsInf(c.TaskMem, 0) {
		v.bad("task-mem", "%v: want a positive number of MiB", c.TaskMem)
	}
	if strings.TrimSpace(c.TaskCommand) == "" {
		v.bad("task-command", "empty")
	}
	if c.RelaunchBackoffMin <= 0 {
		v.bad("relaunch-backoff-min", "%v: must be positive", c.RelaunchBackoffMin)
	}
	if c.RelaunchBackoffMax < c.RelaunchBackoffMin {
		v.bad("relaunch-backoff-max", "%v is shorter than --relaunch-backoff-min %v", c.RelaunchBackoffMax, c.RelaunchBackoffMin)
	}
}

// ReadSecret reads a one-line secret (a password) from path, without its
// trailing newline. Errors never contain the secret.
func ReadSecret(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	s := strings.TrimRight(string(b), "\r\n")
	if s == "" {
		return "", fmt.Errorf("%s is empty", path)
	}
	if strings.ContainsAny(s, "\r\n") {
		return "", fmt.Errorf("%s: want one line", path)
	}
	return s, nil
}

// ReadDigest reads "user:password" for ZooKeeper digest authentication.
func ReadDigest(path string) (user, password string, err error) {
	s, err := ReadSecret(path)
	if err != nil {
		return "", "", err
	}
	user, password, ok := strings.Cut(s, ":")
	if !ok || user == "" || password == "" {
		return "", "", fmt.Errorf("%s: want user:password", path)
	}
	return user, password, nil
}

// MinTokenLength is the shortest bearer token accepted.
const MinTokenLength = 16

// ReadTokens reads bearer tokens, one per line; blank lines and lines
// starting with '#' are skipped.
func ReadTokens(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var tokens []string
	for i, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if len(line) < MinTokenLength || strings.ContainsFunc(line, func(r rune) bool { return r <= ' ' || r > '~' }) {
			return nil, fmt.Errorf("%s, line %d: a token must be at least %d printable ASCII characters without spaces", path, i+1, MinTokenLength)
		}
		tokens = append(tokens, line)
	}
	if len(tokens) == 0 {
		return nil, fmt.Errorf("%s holds no token", path)
	}
	return tokens, nil
}

// ReadCAPool reads a PEM bundle of CA certificates.
func ReadCAPool(path string) (*x509.CertPool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("%s holds no PEM certificate", path)
	}
	return pool, nil
}
