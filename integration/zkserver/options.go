package zkserver

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
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

	// ensembleInitTime and ensembleSyncTime are what zoo.cfg's initLimit
	// and syncLimit allow an ensemble member, rounded up to whole ticks:
	// the time a follower has to connect to a new leader and sync with it,
	// and how far behind it may fall before the leader drops it (and a
	// leader left without a quorum of followers stops serving). On
	// loopback a sync takes milliseconds; the slack is for JVMs starting
	// together on a busy machine.
	ensembleInitTime = 5 * time.Second
	ensembleSyncTime = 2 * time.Second
)

// whitelistKey is the zoo.cfg property that enables four-letter words.
const whitelistKey = "4lw.commands.whitelist"

// Options configures a server for [Start]. The zero value is a server on a
// free loopback port with its files in a new temporary directory.
//
// With [Options.Ensemble] set, the server is one member of a replicated
// ensemble (QuorumPeerMain) instead of a standalone server;
// [StartEnsemble] fills in Ensemble and MyID for every member.
type Options struct {
	// Dir holds zoo.cfg, the data directory (Dir/data) and, when Log is
	// nil, the server's output (Dir/zookeeper.log). It is created if
	// missing and kept at Close. When Dir is empty, Start creates a
	// temporary directory, which Close removes.
	Dir string

	// Port is the client port on 127.0.0.1. Zero picks a free port (and
	// another one if the first is taken before the server binds it). For
	// an ensemble member the client port is Ensemble[MyID-1].ClientPort,
	// and Port must be zero or equal to it.
	Port int

	// Ensemble lists every member of a replicated ZooKeeper ensemble,
	// this server included; member i (from 0) has server id i+1. When it
	// is empty, the server is standalone and MyID must be zero. When it is
	// set, the server runs org.apache.zookeeper.server.quorum.QuorumPeerMain,
	// zoo.cfg gets a line server.N=127.0.0.1:PeerPort:ElectionPort for
	// every member, and the server serves requests only while a quorum (a
	// majority of the members) is up. All ports must be set and distinct.
	Ensemble []Member

	// MyID is this server's id in Ensemble, from 1 to len(Ensemble). It is
	// written to the data directory's myid file.
	MyID int

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
	// For an ensemble member the server.N lines come from Ensemble and may
	// not be set here either; initLimit (5 s worth of ticks), syncLimit
	// (2 s worth) and standaloneEnabled (false, so that a one-member
	// ensemble is a leader rather than a standalone server) may be.
	Properties map[string]string

	// StartTimeout bounds how long the server may take to serve requests,
	// at Start and at each Restart. Zero means 30 s. An ensemble member
	// serves only once a quorum is up, so its wait includes the time the
	// other members take to start.
	StartTimeout time.Duration

	// Log receives the server's stdout and stderr, from one goroutine at a
	// time. When nil they are appended to Dir/zookeeper.log.
	Log io.Writer
}

// Member is one server of a ZooKeeper ensemble, as listed in
// [Options.Ensemble]. Every member listens on 127.0.0.1 on three ports.
type Member struct {
	// ClientPort is where ZooKeeper clients connect (zoo.cfg clientPort).
	ClientPort int
	// PeerPort is where the leader accepts its followers' connections
	// (the first port of zoo.cfg's server.N line).
	PeerPort int
	// ElectionPort is where the member takes part in leader election
	// (the second port of zoo.cfg's server.N line).
	ElectionPort int
}

// Addr returns the member's client address, "127.0.0.1:port".
func (m Member) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(m.ClientPort)) }

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
	return o.validateEnsemble()
}

// validateEnsemble checks MyID and Ensemble.
func (o Options) validateEnsemble() error {
	if len(o.Ensemble) == 0 {
		if o.MyID != 0 {
			return fmt.Errorf("MyID %d is set but Ensemble is empty; a standalone server has no id", o.MyID)
		}
		return nil
	}
	if o.MyID < 1 || o.MyID > len(o.Ensemble) {
		return fmt.Errorf("MyID %d out of range: want 1 to %d, the number of ensemble members", o.MyID, len(o.Ensemble))
	}
	if own := o.Ensemble[o.MyID-1].ClientPort; o.Port != 0 && o.Port != own {
		return fmt.Errorf("port %d differs from the client port %d of ensemble member %d (MyID); leave Port zero or equal to it", o.Port, own, o.MyID)
	}
	used := map[int]string{}
	for i, m := range o.Ensemble {
		for _, p := range []struct {
			name string
			port int
		}{{"client", m.ClientPort}, {"peer", m.PeerPort}, {"election", m.ElectionPort}} {
			what := fmt.Sprintf("ensemble member %d's %s port", i+1, p.name)
			if p.port < 1 || p.port > 65535 {
				return fmt.Errorf("%s %d out of range: want 1 to 65535", what, p.port)
			}
			if prev, ok := used[p.port]; ok {
				return fmt.Errorf("%s %d is also %s; every ensemble port must be distinct", what, p.port, prev)
			}
			used[p.port] = what
		}
	}
	for k := range o.Properties {
		if strings.HasPrefix(k, "server.") {
			return fmt.Errorf("property %s is set by Start (from Ensemble); remove it from Properties", k)
		}
	}
	return nil
}

// clientPort returns the client port the options ask for, or 0 when Start
// is to pick one.
func (o Options) clientPort() int {
	if len(o.Ensemble) > 0 {
		return o.Ensemble[o.MyID-1].ClientPort
	}
	return o.Port
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
	if len(o.Ensemble) > 0 {
		props["initLimit"] = ticks(ensembleInitTime, o.TickTime)
		props["syncLimit"] = ticks(ensembleSyncTime, o.TickTime)
		props["standaloneEnabled"] = "false"
		for i, m := range o.Ensemble {
			props["server."+strconv.Itoa(i+1)] = fmt.Sprintf("127.0.0.1:%d:%d", m.PeerPort, m.ElectionPort)
		}
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

// ticks returns d in whole ticks, rounded up, and at least 2.
func ticks(d, tick time.Duration) string {
	return strconv.FormatInt(int64(max(2, (d+tick-1)/tick)), 10)
}
