package chart

import (
	"bufio"
	"fmt"
	"os"
	"regexp"
	"testing"
)

// binaryFlags is `regent run`'s flag reference as docs/FLAGS.md gives it
// (generated from the binary and kept current by a test in the main
// module): flag name → environment variable, and back.
type binaryFlags struct {
	envOf  map[string]string // "etcd-endpoints" → "REGENT_ETCD_ENDPOINTS"
	flagOf map[string]string // the reverse
}

var flagRow = regexp.MustCompile("^\\| `--([a-z0-9-]+)` \\| `(REGENT_[A-Z0-9_]+)` \\|")

// readFlags parses the table rows of docs/FLAGS.md.
func readFlags(path string) (binaryFlags, error) {
	f, err := os.Open(path)
	if err != nil {
		return binaryFlags{}, err
	}
	defer f.Close()
	bf := binaryFlags{envOf: map[string]string{}, flagOf: map[string]string{}}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		m := flagRow.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		bf.envOf[m[1]] = m[2]
		bf.flagOf[m[2]] = m[1]
	}
	if err := sc.Err(); err != nil {
		return binaryFlags{}, err
	}
	if len(bf.envOf) == 0 {
		return binaryFlags{}, fmt.Errorf("%s: no flag rows found (has the table's format changed?)", path)
	}
	return bf, nil
}

// flags reads docs/FLAGS.md or fails the test.
func flags(t *testing.T) binaryFlags {
	t.Helper()
	bf, err := readFlags(flagsDoc)
	if err != nil {
		t.Fatal(err)
	}
	return bf
}

// env is the variable of flag; a flag the binary does not have fails t.
func (bf binaryFlags) env(t *testing.T, flag string) string {
	t.Helper()
	e, ok := bf.envOf[flag]
	if !ok {
		t.Fatalf("regent run has no flag --%s (docs/FLAGS.md); the chart test names a flag that was renamed or removed", flag)
	}
	return e
}

func TestFlagsDocLists(t *testing.T) {
	bf := flags(t)
	// The flags the chart depends on; a rename in the binary fails here
	// first, then in the rendering tests that look them up.
	for _, flag := range chartFlags {
		bf.env(t, flag)
	}
	for flag, env := range bf.envOf {
		if bf.flagOf[env] != flag {
			t.Errorf("--%s and %s are not one-to-one in docs/FLAGS.md", flag, env)
		}
	}
}

// chartFlags are the flags of `regent run` the chart sets, through their
// REGENT_* variables.
var chartFlags = []string{
	"id", "listen", "advertise-url", "master", "name", "role", "principal", "user",
	"failover-timeout", "store-prefix", "etcd-endpoints", "election-ttl", "etcd-dial-timeout",
	"etcd-username", "etcd-password-file", "etcd-ca-file", "etcd-cert-file", "etcd-key-file",
	"zk-servers", "zk-session-timeout", "zk-digest-file", "tls-cert-file", "tls-key-file",
	"peer-ca-file", "tls-client-ca-file", "auth-token-file", "shutdown-timeout", "log-level",
	"log-format", "task-cpus", "task-mem", "task-command", "relaunch-backoff-min",
	"relaunch-backoff-max",
}
