package mesossim

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/google/uuid"
	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"go.uber.org/zap"
)

// Cluster is a simulated Mesos cluster: one or more masters sharing the state
// of agents, frameworks and tasks. All of that state is guarded by one mutex;
// the HTTP handlers, timers and the control API take it for each step, so
// every step is atomic, as in the real master's single actor.
type Cluster struct {
	cfg Config
	log *zap.Logger

	mu         sync.Mutex
	rng        *rand.Rand
	masters    []*master
	leader     int // index into masters; -1 while no master leads
	masterID   string
	generation int // master failovers so far

	agents     map[string]*agent
	agentOrder []*agent // creation order, for deterministic allocation
	frameworks map[string]*framework
	completed  map[string]bool // removed framework ids; they may not subscribe again
	offers     map[string]*offer

	nextFramework, nextOffer, nextAgent int
	rr                                  int                 // round-robin start for allocation
	changed                             map[*agent]struct{} // agents with resources freed since the last cycle
	fullCycle                           bool                // the next cycle looks at every agent

	// fault injection
	stalled      bool // streams send nothing (no heartbeats, no events) but stay open
	holdLaunches bool // launches wait in heldLaunches instead of reaching their agents
	heldLaunches []*task
	failRequests int // answer this many scheduler calls with 503

	stats Stats

	allocKick chan struct{}
	zk        *zkPublisher
	closed    bool
	stop      context.CancelFunc
	done      <-chan struct{} // closed by Close
	wg        sync.WaitGroup
}

// master is one HTTP endpoint of the cluster.
type master struct {
	c        *Cluster
	index    int
	listener net.Listener
	srv      *http.Server
	host     string
	port     int
}

// New starts a simulated cluster: its masters listen at once; master 0 leads.
func New(cfg Config) (*Cluster, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("mesossim config: %w", err)
	}
	cfg = cfg.withDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	c := &Cluster{
		cfg:        cfg,
		log:        cfg.Logger,
		rng:        rand.New(rand.NewPCG(uint64(cfg.Seed), uint64(cfg.Seed)>>1|1)),
		agents:     map[string]*agent{},
		frameworks: map[string]*framework{},
		completed:  map[string]bool{},
		offers:     map[string]*offer{},
		changed:    map[*agent]struct{}{},
		allocKick:  make(chan struct{}, 1),
		stop:       cancel,
		done:       ctx.Done(),
	}
	c.masterID = c.newMasterID()
	for i := 0; i < cfg.Masters; i++ {
		m, err := c.listen(i, cfg.Listen[i])
		if err != nil {
			c.Close()
			return nil, err
		}
		c.masters = append(c.masters, m)
	}
	if len(cfg.ZooKeeper) > 0 {
		zp, err := newZKPublisher(ctx, cfg.ZooKeeper, cfg.ZKPath, c.log)
		if err != nil {
			c.Close()
			return nil, fmt.Errorf("mesossim zookeeper: %w", err)
		}
		c.zk = zp
	}
	c.mu.Lock()
	c.leader = 0
	c.publishLeaderLocked()
	c.mu.Unlock()
	c.wg.Add(1)
	go c.allocator(ctx)
	return c, nil
}

func (c *Cluster) newMasterID() string {
	u, _ := uuid.NewRandomFromReader(rngReader{c.rng})
	return u.String()
}

// rngReader adapts the seeded generator to io.Reader for uuid generation.
type rngReader struct{ r *rand.Rand }

func (r rngReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(r.r.Uint32())
	}
	return len(p), nil
}

func (c *Cluster) listen(i int, addr string) (*master, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("mesossim master %d listen %s: %w", i, addr, err)
	}
	host, portStr, _ := net.SplitHostPort(ln.Addr().String())
	if c.cfg.Hostname != "" {
		host = c.cfg.Hostname
	}
	port, _ := strconv.Atoi(portStr)
	m := &master{c: c, index: i, listener: ln, host: host, port: port}
	m.srv = &http.Server{Handler: m, ReadHeaderTimeout: 10 * time.Second}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		if err := m.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			c.log.Error("master serve", zap.Int("master", i), zap.Error(err))
		}
	}()
	return m, nil
}

// URLs returns every master's base URL (http://host:port), leader or not.
func (c *Cluster) URLs() []string {
	out := make([]string, len(c.masters))
	for i, m := range c.masters {
		out[i] = m.url()
	}
	return out
}

// URL returns master 0's base URL.
func (c *Cluster) URL() string { return c.masters[0].url() }

// LeaderURL returns the leading master's base URL, or "" while none leads.
func (c *Cluster) LeaderURL() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.leader < 0 {
		return ""
	}
	return c.masters[c.leader].url()
}

// MasterID returns the leading master's id (it changes on every failover).
func (c *Cluster) MasterID() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.masterID
}

func (m *master) url() string { return "http://" + net.JoinHostPort(m.host, strconv.Itoa(m.port)) }

func (m *master) info(id, version string) mesos.MasterInfo {
	ip := ipv4ToUint32(m.host)
	port := uint32(m.port)
	host := m.host
	pid := "master@" + net.JoinHostPort(m.host, strconv.Itoa(m.port))
	return mesos.MasterInfo{
		ID: id, IP: ip, Port: &port, PID: &pid, Hostname: &host, Version: &version,
		Address: &mesos.Address{Hostname: &host, IP: &host, Port: int32(m.port)},
	}
}

// ipv4ToUint32 encodes an IPv4 address the way MasterInfo.ip does: the
// network-order bytes read as a little-endian host integer.
func ipv4ToUint32(s string) uint32 {
	ip := net.ParseIP(s).To4()
	if ip == nil {
		return 0
	}
	return uint32(ip[0]) | uint32(ip[1])<<8 | uint32(ip[2])<<16 | uint32(ip[3])<<24
}

// Close stops every master, closes every stream and timer, and waits for the
// simulator's goroutines. It is safe to call more than once.
func (c *Cluster) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	c.stop()
	for _, fw := range c.frameworks {
		if fw.stream != nil {
			fw.stream.close()
		}
		fw.stopTimers()
	}
	for _, ag := range c.agents {
		ag.stopTimers()
	}
	for _, o := range c.offers {
		o.stopTimer()
	}
	zk := c.zk
	c.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, m := range c.masters {
		_ = m.srv.Shutdown(ctx)
	}
	if zk != nil {
		zk.close()
	}
	c.wg.Wait()
	return nil
}

// afterFunc runs f under the cluster lock after d, unless the cluster has
// closed by then.
func (c *Cluster) afterFunc(d time.Duration, f func()) *time.Timer {
	return time.AfterFunc(d, func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.closed {
			return
		}
		f()
	})
}

// kickAllocation asks the allocator for a cycle soon, without waiting for
// the interval (the real allocator batches such triggers the same way).
func (c *Cluster) kickAllocation() {
	select {
	case c.allocKick <- struct{}{}:
	default:
	}
}

func (c *Cluster) allocator(ctx context.Context) {
	defer c.wg.Done()
	t := time.NewTicker(c.cfg.AllocationInterval)
	defer t.Stop()
	for {
		full := false
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			full = true
		case <-c.allocKick:
			// Let a burst of triggers (several declines, many finished tasks) settle.
			select {
			case <-ctx.Done():
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
		c.mu.Lock()
		if !c.closed {
			c.allocateLocked(time.Now(), full)
		}
		c.mu.Unlock()
	}
}
