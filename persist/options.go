package persist

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"go.uber.org/zap"
)

// Defaults shared by the backends.
const (
	// DefaultPrefix is the root under which every framework keeps its
	// store, at <prefix>/<framework>/.
	DefaultPrefix = "/regent"
	// DefaultMaxRecordBytes is the largest task record or entry a store
	// accepts; larger ones fail with ErrTooLarge. Records larger than one
	// transaction are split into parts (see doc.go).
	DefaultMaxRecordBytes = 64 << 20
	// maxKeyBytes bounds a task id or entry key.
	maxKeyBytes = 1024
	// minTxnBytes bounds the bytes of one transaction from below, so that
	// a part, a key and a manifest always fit.
	minTxnBytes = 32 << 10
)

// LeaderDir returns where ha keeps the election keys of framework under
// prefix (DefaultPrefix if empty): <prefix>/<framework>/leader. etcd
// election keys go below LeaderDir+"/", ZooKeeper's ephemeral sequential
// znodes are its children. persist ignores everything there.
func LeaderDir(prefix, framework string) string {
	return frameworkRoot(prefix, framework) + leaderDir
}

// frameworkRoot is "<prefix>/<framework>/", prefix DefaultPrefix if empty.
func frameworkRoot(prefix, framework string) string {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	return prefix + "/" + framework + "/"
}

// commonOptions are the options every backend shares, validated.
type commonOptions struct {
	prefix    string
	framework string
	lg        *zap.Logger
	maxRecord int
}

func validateCommon(prefix, framework string, lg *zap.Logger, maxRecord int) (commonOptions, error) {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	if err := validatePrefix(prefix); err != nil {
		return commonOptions{}, err
	}
	if err := validateFramework(framework); err != nil {
		return commonOptions{}, err
	}
	if lg == nil {
		lg = zap.NewNop()
	}
	if maxRecord == 0 {
		maxRecord = DefaultMaxRecordBytes
	}
	if maxRecord < 0 || maxRecord > maxRecordCap {
		return commonOptions{}, fmt.Errorf("persist: MaxRecordBytes %d out of range (0, %d]", maxRecord, maxRecordCap)
	}
	return commonOptions{prefix: prefix, framework: framework, lg: lg.With(zap.String("framework", framework)), maxRecord: maxRecord}, nil
}

// validatePrefix accepts absolute slash-separated paths without empty,
// "." or ".." components and without a trailing slash: valid as a
// ZooKeeper path and unambiguous as an etcd key prefix.
func validatePrefix(p string) error {
	if !strings.HasPrefix(p, "/") || p == "/" || strings.HasSuffix(p, "/") {
		return fmt.Errorf("persist: prefix %q must start with '/' and not end with one", p)
	}
	for _, c := range strings.Split(p[1:], "/") {
		if c == "" || c == "." || c == ".." || !printable(c) {
			return fmt.Errorf("persist: prefix %q has an invalid component %q", p, c)
		}
	}
	return nil
}

// validateFramework accepts a name usable as one path component.
func validateFramework(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("persist: framework name is required")
	case strings.Contains(name, "/"):
		return fmt.Errorf("persist: framework name %q contains '/'", name)
	case name == "." || name == "..":
		return fmt.Errorf("persist: framework name %q is not a valid path component", name)
	case len(name) > 255:
		return fmt.Errorf("persist: framework name of %d bytes is longer than 255", len(name))
	case !printable(name):
		return fmt.Errorf("persist: framework name %q has control or invalid UTF-8 characters", name)
	}
	return nil
}

func printable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r < 0x20 || (r >= 0x7f && r <= 0x9f) || (r >= 0xd800 && r <= 0xf8ff) || r >= 0xfff0 {
			return false
		}
	}
	return true
}

// txnLimits derives the planner's limits from the bytes one transaction
// may carry: parts and journal chunks take at most half of it, less room
// for an escaped key.
// A record of maxRecord bytes must fit in maxParts parts, or it could be
// written and then refused by Load.
func txnLimits(maxOps, budget, maxRecord int, rangeDelete bool) (limits, error) {
	lim := limits{
		maxOps:      maxOps,
		maxBytes:    budget,
		partSize:    budget/2 - 3*maxKeyBytes - 1024,
		maxRecord:   maxRecord,
		maxKey:      maxKeyBytes,
		rangeDelete: rangeDelete,
	}
	if parts := (maxRecord + lim.partSize - 1) / lim.partSize; parts > maxParts {
		return limits{}, fmt.Errorf("persist: MaxRecordBytes %d would split a record into %d parts of %d bytes, more than %d: lower it or allow larger transactions",
			maxRecord, parts, lim.partSize, maxParts)
	}
	return lim, nil
}
