package zkserver

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Defaults for [Options].
const (
	defaultTickTime          = 200 * time.Millisecond
	defaultMaxSessionTimeout = 60 * time.Second
	defaultStartTimeout      = 30 * time.Second
)

// whitelistKey is the zoo.cfg property that enables four-letter words.
const whitelistKey = "4lw.commands.whitelist"

// Options configures a server for [Start]. The zero value is a server on a
// free loopback port with its files in a new temporary directory.
type Options struct {
	// Dir holds zoo.cfg, the data directory (Dir/data) and, when Log is
	// nil, the server's output (Dir/zookeeper.log). It is created if
	// missing and kept at Close. When Dir is empty, Start creates a
	// temporary directory, which Close removes.
	Dir string

	// Port is the client port on 127.0.0.1. Zero picks a free port (and
	// another one if the first is taken before the server binds it).
	Port int

	// TickTime is ZooKeeper's basic time unit (zoo.cfg tickTime), at least
	// 1 ms. Zero means 200 ms.
	TickTime time.Duration

	// MinSessionTimeout and MaxSessionTimeout bound the session timeouts
	// the server grants. Zero means twice TickTime and 60 s.
	MinSessionTimeout time.Duration
	MaxSessionTimeout time.Duration

	// Properties adds or overrides zoo.cfg properties. dataDir, clientPort
	// and clientPortAddress come from Dir and Port and may not be set here;
	// 4lw.commands.whitelist must keep ruok and stat, which Start polls.
	Properties map[string]string

	// StartTimeout bounds how long the server may take to serve requests,
	// at Start and at each Restart. Zero means 30 s.
	StartTimeout time.Duration

	// Log receives the server's stdout and stderr, from one goroutine at a
	// time. When nil they are appended to Dir/zookeeper.log.
	Log io.Writer
}

// withDefaults returns o with zero fields replaced by their defaults.
func (o Options) withDefaults() Options {
	if o.TickTime == 0 {
		o.TickTime = defaultTickTime
	}
	if o.MinSessionTimeout == 0 {
		o.MinSessionTimeout = 2 * o.TickTime
	}
	if o.MaxSessionTimeout == 0 {
		o.MaxSessionTimeout = defaultMaxSessionTimeout
	}
	if o.StartTimeout == 0 {
		o.StartTimeout = defaultStartTimeout
	}
	return o
}

// validate rejects options that ZooKeeper or this package cannot honour.
// It expects defaults to have been applied.
func (o Options) validate() error {
	switch {
	case o.Port < 0 || o.Port > 65535:
		return fmt.Errorf("port %d out of range", o.Port)
	case o.TickTime < time.Millisecond:
		return fmt.Errorf("tick time %v: want at least 1ms", o.TickTime)
	case o.MinSessionTimeout < time.Millisecond:
		return fmt.Errorf("min session timeout %v: want at least 1ms", o.MinSessionTimeout)
	case o.MaxSessionTimeout < o.MinSessionTimeout:
		return fmt.Errorf("max session timeout %v is below min session timeout %v", o.MaxSessionTimeout, o.MinSessionTimeout)
	case o.StartTimeout < 0:
		return fmt.Errorf("start timeout %v is negative", o.StartTimeout)
	}
	for _, k := range []string{"dataDir", "clientPort", "clientPortAddress"} {
		if _, ok := o.Properties[k]; ok {
			return fmt.Errorf("property %s is set by Start (from Dir and Port); remove it from Properties", k)
		}
	}
	if wl, ok := o.Properties[whitelistKey]; ok {
		words := strings.Split(wl, ",")
		for i := range words {
			words[i] = strings.TrimSpace(words[i])
		}
		if !slices.Contains(words, "*") && (!slices.Contains(words, "ruok") || !slices.Contains(words, "stat")) {
			return errors.New("property " + whitelistKey + "=" + wl + " must include ruok and stat, which Start polls")
		}
	}
	return nil
}

// zooCfg renders zoo.cfg for a server with the given data directory and
// client port.
func (o Options) zooCfg(dataDir string, port int) []byte {
	props := map[string]string{
		"tickTime":           millis(o.TickTime),
		"dataDir":            dataDir,
		"clientPort":         strconv.Itoa(port),
		"clientPortAddress":  "127.0.0.1",
		"maxClientCnxns":     "0",
		"admin.enableServer": "false",
		whitelistKey:         "ruok,stat",
		"minSessionTimeout":  millis(o.MinSessionTimeout),
		"maxSessionTimeout":  millis(o.MaxSessionTimeout),
	}
	for k, v := range o.Properties {
		props[k] = v
	}
	var b strings.Builder
	b.WriteString("# Written by github.com/regent-sched/regent/integration/zkserver.\n")
	for _, k := range slices.Sorted(maps.Keys(props)) {
		fmt.Fprintf(&b, "%s=%s\n", k, props[k])
	}
	return []byte(b.String())
}

func millis(d time.Duration) string { return strconv.FormatInt(d.Milliseconds(), 10) }
