package persist

import (
	"context"
	"fmt"
	"runtime"
	"runtime/metrics"
	"sync"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/regent-sched/regent/integration/testserver"
)

// benchTask is a task record of a realistic size (about 200 bytes).
func benchTask(i, version int) []byte {
	return []byte(fmt.Sprintf(`{"id":"task-%06d","slot":%d,"agent":"agent-%04d-4f8a9c2e","state":"TASK_RUNNING","version":%d,"health":"ok","ports":[31000,31001],"ts":1732780800%06d}`,
		i, i, i%10000, version, version))
}

const benchPool = 10_000 // tasks in the store while updates are measured

// BenchmarkEtcd measures durable task updates per second, through group
// commits and through plain sequential puts (the baseline), and Load of
// 100,000 tasks, against one etcd member in its own process.
func BenchmarkEtcd(b *testing.B) {
	c := testserver.StartEtcdCluster(b, 1, testserver.WithEtcdLogLevel("warn"))
	cli := c.Client(b)
	b.Run("SequentialPut", func(b *testing.B) { benchEtcdPuts(b, cli) })
	for _, n := range []int{100, 500} {
		setup := benchSetup(func(b *testing.B) (Store, Fence) {
			s := etcdBenchStore(b, cli)
			f := etcdBenchFence(b, cli)(s)
			fillPool(b, s, f, benchPool, 100)
			return s, f
		})
		b.Run(fmt.Sprintf("GroupCommit/%d", n), func(b *testing.B) { benchGroupCommit(b, setup, n) })
	}
	setup := benchSetup(func(b *testing.B) (Store, Fence) {
		s := etcdBenchStore(b, cli)
		f := etcdBenchFence(b, cli)(s)
		fillPool(b, s, f, benchLoadN, DefaultEtcdMaxTxnOps-1)
		return s, f
	})
	b.Run("Load100k", func(b *testing.B) { benchLoad(b, setup) })
	b.Run("GroupCommit100k/100", func(b *testing.B) { benchGroupCommitPool(b, setup, 100, benchLoadN) })
}

// BenchmarkZooKeeper is BenchmarkEtcd for ZooKeeper; the baseline is plain
// sequential setData.
func BenchmarkZooKeeper(b *testing.B) {
	z := startZooKeeper(b)
	conn := z.Conn(b)
	b.Run("SequentialSet", func(b *testing.B) { benchZKSets(b, conn) })
	for _, n := range []int{100, 500} {
		setup := benchSetup(func(b *testing.B) (Store, Fence) {
			s, fence := zkBenchStore(b, conn)
			f := fence(s)
			fillPool(b, s, f, benchPool, 600)
			return s, f
		})
		b.Run(fmt.Sprintf("GroupCommit/%d", n), func(b *testing.B) { benchGroupCommit(b, setup, n) })
	}
	setup := benchSetup(func(b *testing.B) (Store, Fence) {
		s, fence := zkBenchStore(b, conn)
		f := fence(s)
		fillPool(b, s, f, benchLoadN, 600)
		return s, f
	})
	b.Run("Load100k", func(b *testing.B) { benchLoad(b, setup) })
	b.Run("GroupCommit100k/100", func(b *testing.B) { benchGroupCommitPool(b, setup, 100, benchLoadN) })
}

const benchLoadN = 100_000

// benchSetup runs setup once, on first use, however often the benchmark
// framework reruns a sub-benchmark (b.N ramp-up, -count): the servers keep
// one filled store per sub-benchmark, not one per run.
func benchSetup(setup func(*testing.B) (Store, Fence)) func(*testing.B) (Store, Fence) {
	var s Store
	var f Fence
	return func(b *testing.B) (Store, Fence) {
		if s == nil {
			s, f = setup(b)
		}
		return s, f
	}
}

var benchSeq = struct {
	sync.Mutex
	n int
}{}

func benchFW() string {
	benchSeq.Lock()
	defer benchSeq.Unlock()
	benchSeq.n++
	return fmt.Sprintf("bench-%d-%d", time.Now().UnixNano(), benchSeq.n)
}

func etcdBenchStore(b *testing.B, cli *clientv3.Client) Store {
	s, err := NewEtcd(cli, EtcdOptions{Prefix: "/bench", Framework: benchFW()})
	if err != nil {
		b.Fatal(err)
	}
	return s
}

func etcdBenchFence(b *testing.B, cli *clientv3.Client) func(Store) Fence {
	return func(s Store) Fence {
		ctx := context.Background()
		l, err := cli.Grant(ctx, 3600)
		if err != nil {
			b.Fatal(err)
		}
		key := fmt.Sprintf("%s/%x", LeaderDir("/bench", s.(*EtcdStore).Framework()), int64(l.ID))
		resp, err := cli.Put(ctx, key, "", clientv3.WithLease(l.ID))
		if err != nil {
			b.Fatal(err)
		}
		return Fence{Key: key, Revision: resp.Header.Revision}
	}
}

func zkBenchStore(b *testing.B, conn *zk.Conn) (Store, func(Store) Fence) {
	fw := benchFW()
	s, err := NewZooKeeper(conn, ZKOptions{Prefix: "/bench", Framework: fw})
	if err != nil {
		b.Fatal(err)
	}
	return s, func(Store) Fence {
		dir := LeaderDir("/bench", fw)
		p := ""
		for _, c := range []string{"bench", fw, "leader"} {
			p += "/" + c
			_, _ = conn.Create(p, nil, 0, zk.WorldACL(zk.PermAll))
		}
		path, err := conn.Create(dir+"/n_", nil, zk.FlagEphemeral|zk.FlagSequence, zk.WorldACL(zk.PermAll))
		if err != nil {
			b.Fatal(err)
		}
		_, st, err := conn.Exists(path)
		if err != nil {
			b.Fatal(err)
		}
		return Fence{Key: path, Revision: st.Czxid}
	}
}

// fillPool commits n tasks in batches of per, each one transaction.
func fillPool(b *testing.B, s Store, f Fence, n, per int) {
	ctx := context.Background()
	for i := 0; i < n; i += per {
		batch := Batch{PutTasks: map[string][]byte{}}
		for j := i; j < min(n, i+per); j++ {
			batch.PutTasks[fmt.Sprintf("task-%06d", j)] = benchTask(j, 0)
		}
		if _, err := s.Commit(ctx, f, batch); err != nil {
			b.Fatal(err)
		}
	}
}

// benchGroupCommit: each op is one Commit that updates n of the pool's
// tasks.
func benchGroupCommit(b *testing.B, setup func(*testing.B) (Store, Fence), n int) {
	benchGroupCommitPool(b, setup, n, benchPool)
}

// benchGroupCommitPool is benchGroupCommit over a pool of the given size:
// the batches update tasks spread over all of it.
func benchGroupCommitPool(b *testing.B, setup func(*testing.B) (Store, Fence), n, pool int) {
	s, f := setup(b)
	ctx := context.Background()
	if _, err := s.Load(ctx); err != nil {
		b.Fatal(err)
	}
	batches := make([]Batch, 16)
	for i := range batches {
		batches[i] = Batch{PutTasks: make(map[string][]byte, n)}
		for j := 0; j < n; j++ {
			k := (i*n + j) % benchPool * (pool / benchPool)
			batches[i].PutTasks[fmt.Sprintf("task-%06d", k)] = benchTask(k, i+1)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := s.Commit(ctx, f, batches[i%len(batches)]); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "updates/s")
}

// benchEtcdPuts: each op is 100 sequential plain puts of a task record, the
// baseline a scheduler without group commit would get.
func benchEtcdPuts(b *testing.B, cli *clientv3.Client) {
	const n = 100
	ctx := context.Background()
	val := string(benchTask(1, 1))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for j := 0; j < n; j++ {
			if _, err := cli.Put(ctx, fmt.Sprintf("/bench-plain/task-%06d", (i*n+j)%benchPool), val); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "updates/s")
}

// benchZKSets: each op is 100 sequential plain setData calls.
func benchZKSets(b *testing.B, conn *zk.Conn) {
	const n = 100
	val := benchTask(1, 1)
	for _, p := range []string{"/bench-plain"} {
		_, _ = conn.Create(p, nil, 0, zk.WorldACL(zk.PermAll))
	}
	for j := 0; j < n; j++ {
		_, _ = conn.Create(fmt.Sprintf("/bench-plain/task-%06d", j), val, 0, zk.WorldACL(zk.PermAll))
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for j := 0; j < n; j++ {
			if _, err := conn.Set(fmt.Sprintf("/bench-plain/task-%06d", j), val, -1); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "updates/s")
}

// benchLoad: each op is a Load of 100,000 tasks by a new store instance
// (a takeover). It reports the peak heap growth during the load.
func benchLoad(b *testing.B, setup func(*testing.B) (Store, Fence)) {
	s, _ := setup(b)
	newStore := func() Store {
		switch st := s.(type) {
		case *EtcdStore:
			r, _ := NewEtcd(st.cli, EtcdOptions{Prefix: "/bench", Framework: st.Framework()})
			return r
		case *ZKStore:
			r, _ := NewZooKeeper(st.conn, ZKOptions{Prefix: "/bench", Framework: st.Framework()})
			return r
		}
		b.Fatalf("unknown store %T", s)
		return nil
	}
	ctx := context.Background()
	var peak uint64
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		r := newStore()
		runtime.GC()
		base := heapBytes()
		stop := sampleHeap(&peak, base)
		b.StartTimer()
		snap, err := r.Load(ctx)
		b.StopTimer()
		stop()
		if err != nil || len(snap.Tasks) != benchLoadN {
			b.Fatalf("Load: %d tasks, %v", len(snap.Tasks), err)
		}
		if zs, ok := r.(*ZKStore); ok {
			v := zs.pk.v
			b.ReportMetric(float64(v.leaves()), "shards")
			b.ReportMetric(float64(len(v.log)), "log-entries")
			b.ReportMetric(float64(v.shardBytes+v.logBytes)/(1<<20), "read-MB")
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MB")
}

// sampleHeap records the largest heap growth over base until stopped.
func sampleHeap(peak *uint64, base uint64) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for {
			if h := heapBytes(); h > base && h-base > *peak {
				*peak = h - base
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() {
		close(done)
		wg.Wait()
		if h := heapBytes(); h > base && h-base > *peak {
			*peak = h - base
		}
	}
}

func heapBytes() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}
