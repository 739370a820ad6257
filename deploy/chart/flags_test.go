package chart

import (
	"bufio"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
)

// binaryFlags is `regent run`'s flag reference as docs/FLAGS.md gives it
// (generated from the binary and kept current by a test in the main
// module): flag name → environment variable, and back; and the flags of
// every subcommand the file has a section for.
type binaryFlags struct {
	envOf  map[string]string // "etcd-endpoints" → "REGENT_ETCD_ENDPOINTS"
	flagOf map[string]string // the reverse
	// sub has the flags of each subcommand with a section: "status" →
	// {"addr", "ca-file", ...}.
	sub map[string]map[string]bool
}

var (
	// flagRow is a row of `regent run`'s table: flag, variable, ...
	flagRow = regexp.MustCompile("^\\| `--([a-z0-9-]+)` \\| `(REGENT_[A-Z0-9_]+)` \\|")
	// flagCell is the first cell of any subcommand's table row, naming
	// the flag (and maybe its shorthand): "| `--addr` |", "| `-o`, `--output` |".
	flagCell = regexp.MustCompile("^\\|([^|]*)\\|")
	longFlag = regexp.MustCompile("`--([a-z0-9][a-z0-9-]*)")
	// heading is a Markdown heading; subHeading names a subcommand at
	// its start: "# regent run: every flag", "## `regent status`".
	heading    = regexp.MustCompile(`^(#{1,6})\s+(.*)$`)
	subHeading = regexp.MustCompile("^`?regent ([a-z][a-z0-9-]*)(?:[`:\\s]|$)")
)

// readFlags parses docs/FLAGS.md: its sections, one per subcommand, each
// under a heading that starts with "regent <subcommand>" and holding a
// table whose first column is the flag. A heading that names no
// subcommand ends the section unless it is nested in it. The REGENT_*
// variables are those of the `regent run` section only.
func readFlags(path string) (binaryFlags, error) {
	f, err := os.Open(path)
	if err != nil {
		return binaryFlags{}, err
	}
	defer f.Close()
	bf := binaryFlags{envOf: map[string]string{}, flagOf: map[string]string{}, sub: map[string]map[string]bool{}}
	sub, level := "", 0 // the section the line is in, and its heading's level
	fenced := false     // in a ``` block, where "#" starts no heading
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			fenced = !fenced
			continue
		}
		if fenced {
			continue
		}
		if h := heading.FindStringSubmatch(line); h != nil {
			if m := subHeading.FindStringSubmatch(h[2]); m != nil {
				sub, level = m[1], len(h[1])
				if bf.sub[sub] == nil {
					bf.sub[sub] = map[string]bool{}
				}
			} else if len(h[1]) <= level {
				sub, level = "", 0
			}
			continue
		}
		if sub == "" {
			continue
		}
		if c := flagCell.FindStringSubmatch(line); c != nil {
			for _, m := range longFlag.FindAllStringSubmatch(c[1], -1) {
				bf.sub[sub][m[1]] = true
			}
		}
		if sub != "run" {
			continue
		}
		if m := flagRow.FindStringSubmatch(line); m != nil {
			bf.envOf[m[1]] = m[2]
			bf.flagOf[m[2]] = m[1]
		}
	}
	if err := sc.Err(); err != nil {
		return binaryFlags{}, err
	}
	if len(bf.envOf) == 0 {
		return binaryFlags{}, fmt.Errorf("%s: no flag rows found under a \"regent run\" heading (has the file's format changed?)", path)
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
