package mesossim

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"
)

// rawScheduler is a minimal protobuf scheduler for load: one stream reader
// and a pool of keep-alive connections for calls, so that the simulator,
// not the client, is what the benchmark measures.
type rawScheduler struct {
	base     string
	http     *http.Client
	streamID string
	fwID     *mesos.FrameworkID
	body     io.ReadCloser
	r        *bufio.Reader
}

func newRawScheduler(tb testing.TB, base string) *rawScheduler {
	tb.Helper()
	tr := &http.Transport{MaxIdleConnsPerHost: 64, MaxConnsPerHost: 64}
	tb.Cleanup(tr.CloseIdleConnections)
	s := &rawScheduler{base: base, http: &http.Client{Transport: tr, Timeout: time.Minute}}
	body, err := subscribeCall("").Marshal()
	if err != nil {
		tb.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, base+"/api/v1/scheduler", bytes.NewReader(body))
	req.Header.Set("Content-Type", mediaProtobuf)
	req.Header.Set("Accept", mediaProtobuf)
	resp, err := (&http.Client{}).Do(req)
	if err != nil || resp.StatusCode != 200 {
		tb.Fatalf("subscribe: %v %v", err, resp)
	}
	s.streamID = resp.Header.Get("Mesos-Stream-Id")
	s.body = resp.Body
	s.r = bufio.NewReaderSize(resp.Body, 1<<20)
	tb.Cleanup(func() { s.body.Close() })
	ev, err := s.next()
	if err != nil || ev.Type != scheduler.Event_SUBSCRIBED {
		tb.Fatalf("first event: %v %v", ev, err)
	}
	s.fwID = ev.Subscribed.FrameworkID
	return s
}

func (s *rawScheduler) next() (*scheduler.Event, error) {
	line, err := s.r.ReadString('\n')
	if err != nil {
		return nil, err
	}
	n, err := strconv.Atoi(line[:len(line)-1])
	if err != nil {
		return nil, err
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(s.r, buf); err != nil {
		return nil, err
	}
	ev := &scheduler.Event{}
	return ev, ev.Unmarshal(buf)
}

func (s *rawScheduler) call(c *scheduler.Call) error {
	c.FrameworkID = s.fwID
	body, err := c.Marshal()
	if err != nil {
		return err
	}
	req, _ := http.NewRequest(http.MethodPost, s.base+"/api/v1/scheduler", bytes.NewReader(body))
	req.Header.Set("Content-Type", mediaProtobuf)
	req.Header.Set("Mesos-Stream-Id", s.streamID)
	resp, err := s.http.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		return fmt.Errorf("%v: status %d", c.Type, resp.StatusCode)
	}
	return nil
}

// BenchmarkUpdatesAcknowledged measures status updates delivered by the
// simulator and acknowledged over loopback HTTP, with b.N tasks spread over
// 10,000 agents (10 per agent): each task's STARTING and RUNNING are acked.
// Run: go test -run '^$' -bench UpdatesAcknowledged -benchtime 100000x ./integration/mesossim/
func BenchmarkUpdatesAcknowledged(b *testing.B) {
	const agents, perAgent, ackers = 10000, 10, 16
	cfg := FastConfig()
	cfg.AllocationInterval = time.Second // the real default
	cfg.StatusRetryMin, cfg.StatusRetryMax = time.Minute, time.Minute
	c, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	small := []mesos.Resource{scalar("cpus", 0.1), scalar("mem", 16)}
	for i := 0; i < agents; i++ {
		if _, err := c.AddAgent(AgentSpec{}); err != nil {
			b.Fatal(err)
		}
	}
	s := newRawScheduler(b, c.URL())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	acks := make(chan mesos.TaskStatus, 4096)
	var acked, errs atomic.Int64
	var wg sync.WaitGroup
	for i := 0; i < ackers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for st := range acks {
				if err := s.call(&scheduler.Call{Type: scheduler.Call_ACKNOWLEDGE, Acknowledge: &scheduler.Call_Acknowledge{
					AgentID: *st.AgentID, TaskID: st.TaskID, UUID: st.UUID}}); err != nil {
					errs.Add(1)
					continue
				}
				acked.Add(1)
			}
		}()
	}
	target := int64(2 * b.N)
	launched := 0
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for acked.Load()+errs.Load() < target {
		ev, err := s.next()
		if err != nil {
			b.Fatal(err)
		}
		switch ev.Type {
		case scheduler.Event_OFFERS:
			for _, o := range ev.Offers.Offers {
				var tasks []mesos.TaskInfo
				for k := 0; k < perAgent && launched < b.N; k++ {
					id := "t" + strconv.Itoa(launched)
					launched++
					tasks = append(tasks, commandTask(id, o.AgentID, "sleep 3600", small...))
				}
				call := &scheduler.Call{Type: scheduler.Call_ACCEPT, Accept: &scheduler.Call_Accept{
					OfferIDs: []mesos.OfferID{o.ID}, Operations: []mesos.Offer_Operation{{
						Type: mesos.Offer_Operation_LAUNCH, Launch: &mesos.Offer_Operation_Launch{TaskInfos: tasks}}}}}
				if len(tasks) == 0 {
					call = &scheduler.Call{Type: scheduler.Call_DECLINE, Decline: &scheduler.Call_Decline{
						OfferIDs: []mesos.OfferID{o.ID}, Filters: &mesos.Filters{RefuseSeconds: ptrF(3600)}}}
				}
				go func() {
					if err := s.call(call); err != nil {
						errs.Add(1)
					}
				}()
			}
		case scheduler.Event_UPDATE:
			if len(ev.Update.Status.UUID) > 0 {
				select {
				case acks <- ev.Update.Status:
				case <-ctx.Done():
				}
			}
		}
	}
	elapsed := time.Since(start)
	b.StopTimer()
	close(acks)
	wg.Wait()
	if errs.Load() > 0 {
		b.Fatalf("%d calls failed", errs.Load())
	}
	b.ReportMetric(float64(acked.Load())/elapsed.Seconds(), "updates_acked/s")
	b.ReportMetric(0, "ns/op")
}

func ptrF(f float64) *float64 { return &f }
