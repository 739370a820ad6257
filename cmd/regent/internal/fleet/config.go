package fleet

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/regent-sched/regent/core"
)

// Config configures the framework. Zero values take the defaults named.
type Config struct {
	// Name is the framework's name and the prefix of its task ids,
	// fmt.Sprintf("%s-%06d", Name, seq). Required.
	Name string
	// CPUs and Mem are each task's resources (defaults 0.1 and 32 MB).
	CPUs, Mem float64
	// Command is the task's shell command (default "sleep 86400").
	Command string
	// Role is the role whose offered resources the tasks use ("" means
	// "*"). Only unreserved resources are used: the tasks ask for
	// unreserved cpus and mem.
	Role string
	// BackoffMin and BackoffMax bound the delay before a task is relaunched
	// on an agent where one ended (defaults 1 s and 60 s): BackoffMin after
	// the first consecutive failure, doubling with every further one.
	BackoffMin, BackoffMax time.Duration
	// ResetAfter: a task that was RUNNING at least this long before it
	// ended resets its agent's failure count (default 60 s).
	ResetAfter time.Duration
	// DeclineRefuse is the refuse_seconds of declined offers of agents that
	// need nothing (default 5 min).
	DeclineRefuse time.Duration
}

// Defaults of Config.
const (
	defaultCPUs          = 0.1
	defaultMem           = 32
	defaultCommand       = "sleep 86400"
	defaultRole          = "*"
	defaultBackoffMin    = time.Second
	defaultBackoffMax    = 60 * time.Second
	defaultResetAfter    = 60 * time.Second
	defaultDeclineRefuse = 5 * time.Minute
)

// maxNameLen keeps every task id within the 255 bytes a Mesos sandbox
// directory name may have: Name, '-', and up to 20 digits of a uint64.
const maxNameLen = 255 - 1 - 20

// Framework is the one-task-per-agent framework. It holds only its
// configuration; all state is in State. Build it with New.
type Framework struct {
	cfg  Config
	want core.Resources // one task's cpus and mem
}

// New validates cfg, fills in its defaults and returns the framework.
// The error names every bad field and its value.
func New(cfg Config) (*Framework, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	want, err := core.ResourcesOf([]mesos.Resource{core.Scalar("cpus", cfg.CPUs), core.Scalar("mem", cfg.Mem)})
	if err != nil {
		return nil, fmt.Errorf("fleet: config: task resources: %w", err)
	}
	return &Framework{cfg: cfg, want: want}, nil
}

// Config returns the framework's configuration, defaults filled in.
func (f *Framework) Config() Config { return f.cfg }

func (c Config) withDefaults() Config {
	if c.CPUs == 0 {
		c.CPUs = defaultCPUs
	}
	if c.Mem == 0 {
		c.Mem = defaultMem
	}
	if c.Command == "" {
		c.Command = defaultCommand
	}
	if c.Role == "" {
		c.Role = defaultRole
	}
	if c.BackoffMin == 0 {
		c.BackoffMin = defaultBackoffMin
	}
	if c.BackoffMax == 0 {
		c.BackoffMax = defaultBackoffMax
	}
	if c.ResetAfter == 0 {
		c.ResetAfter = defaultResetAfter
	}
	if c.DeclineRefuse == 0 {
		c.DeclineRefuse = defaultDeclineRefuse
	}
	return c
}

// validate reports every bad field of a Config with defaults filled in.
func (c Config) validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("fleet: config: %s: "+format, append([]any{field}, args...)...))
	}
	if err := checkName(c.Name); err != nil {
		bad("Name", "%v", err)
	}
	// Mesos keeps scalars with three decimals: less than 0.0005 is nothing.
	const maxScalar = 1e12
	for _, s := range []struct {
		field string
		v     float64
	}{{"CPUs", c.CPUs}, {"Mem", c.Mem}} {
		if math.IsNaN(s.v) || s.v < 0.0005 || s.v > maxScalar {
			bad(s.field, "%v: want a positive number of at least 0.001 and at most 1e12", s.v)
		}
	}
	if strings.TrimSpace(c.Command) == "" {
		bad("Command", "%q: want a shell command", c.Command)
	}
	if err := checkRole(c.Role); err != nil {
		bad("Role", "%v", err)
	}
	for _, d := range []struct {
		field string
		v     time.Duration
	}{{"BackoffMin", c.BackoffMin}, {"BackoffMax", c.BackoffMax}, {"ResetAfter", c.ResetAfter}, {"DeclineRefuse", c.DeclineRefuse}} {
		if d.v < 0 {
			bad(d.field, "%v is negative", d.v)
		}
	}
	if c.BackoffMin > c.BackoffMax {
		bad("BackoffMin", "%v is above BackoffMax %v", c.BackoffMin, c.BackoffMax)
	}
	return errors.Join(errs...)
}

// checkName accepts a prefix of valid Mesos task ids: Mesos refuses ids
// that are empty or hold a control character, '/' or '\' (they name
// sandbox directories).
func checkName(s string) error {
	switch {
	case s == "":
		return errors.New(`"": required (it prefixes every task id)`)
	case len(s) > maxNameLen:
		return fmt.Errorf("%d bytes: at most %d fit in a Mesos task id with the sequence number", len(s), maxNameLen)
	case !utf8.ValidString(s):
		return fmt.Errorf("%q: not valid UTF-8", s)
	}
	for _, r := range s {
		if r == '/' || r == '\\' || unicode.IsControl(r) {
			return fmt.Errorf("%q: contains %q, which Mesos refuses in task ids", s, r)
		}
	}
	return nil
}

// ValidRole reports whether s is a role Mesos accepts (see checkRole).
func ValidRole(s string) error { return checkRole(s) }

// checkRole follows Mesos' role rules: "*", or '/'-separated segments that
// are not empty, "." or "..", do not start with '-', and hold no
// whitespace, control character, '\' or '*'.
func checkRole(s string) error {
	if s == "*" {
		return nil
	}
	for _, seg := range strings.Split(s, "/") {
		switch {
		case seg == "" || seg == "." || seg == "..":
			return fmt.Errorf("%q: bad segment %q", s, seg)
		case strings.HasPrefix(seg, "-"):
			return fmt.Errorf("%q: a segment may not start with '-'", s)
		case strings.ContainsAny(seg, `\*`):
			return fmt.Errorf(`%q: '\' and '*' are not allowed`, s)
		}
		for _, r := range seg {
			if unicode.IsSpace(r) || unicode.IsControl(r) {
				return fmt.Errorf("%q: whitespace and control characters are not allowed", s)
			}
		}
	}
	return nil
}
