package mesossim

import (
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/mesos/mesos-go/api/v1/lib/scheduler"
)

// stream is one SUBSCRIBE connection: the events queued for it and the
// goroutine (the HTTP handler's) that writes them as RecordIO records.
// Queuing never blocks the cluster: the queue is unbounded, as a real
// master's socket buffer plus libprocess queue effectively is.
type stream struct {
	id   string
	json bool

	mu      sync.Mutex
	queue   []*scheduler.Event
	closing bool // write what is queued, then end the response
	wake    chan struct{}
	done    chan struct{} // closed when the writer has returned
}

func newStream(id string, json bool) *stream {
	return &stream{id: id, json: json, wake: make(chan struct{}, 1), done: make(chan struct{})}
}

func (s *stream) send(ev *scheduler.Event) {
	s.mu.Lock()
	if !s.closing {
		s.queue = append(s.queue, ev)
	}
	s.mu.Unlock()
	s.signal()
}

// close ends the stream after what is already queued has been written.
func (s *stream) close() {
	s.mu.Lock()
	s.closing = true
	s.mu.Unlock()
	s.signal()
}

func (s *stream) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *stream) take() ([]*scheduler.Event, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	q := s.queue
	s.queue = nil
	return q, s.closing
}

// encodeEvent renders one event in the stream's codec.
func encodeEvent(ev *scheduler.Event, json bool) ([]byte, error) {
	if json {
		return ev.MarshalJSON()
	}
	return ev.Marshal()
}

// writeRecord writes one RecordIO record: decimal length, '\n', payload.
func writeRecord(w http.ResponseWriter, payload []byte) error {
	var hdr [24]byte
	b := strconv.AppendInt(hdr[:0], int64(len(payload)), 10)
	b = append(b, '\n')
	if _, err := w.Write(b); err != nil {
		return err
	}
	_, err := w.Write(payload)
	return err
}

// serve writes the stream until it is closed, the client goes away or the
// cluster stops. stalled reports whether the fault "stall every stream" is on:
// then nothing is written, not even heartbeats, but the connection stays open.
func (s *stream) serve(w http.ResponseWriter, r *http.Request, heartbeat time.Duration, stalled func() bool, stop <-chan struct{}) {
	defer close(s.done)
	flusher, _ := w.(http.Flusher)
	hb := time.NewTicker(heartbeat)
	defer hb.Stop()
	heartbeatEv := &scheduler.Event{Type: scheduler.Event_HEARTBEAT}
	for {
		select {
		case <-r.Context().Done():
			return
		case <-stop:
			return
		case <-hb.C:
			if !stalled() {
				s.send(heartbeatEv)
			}
			continue
		case <-s.wake:
		}
		if stalled() {
			s.mu.Lock()
			closing := s.closing
			s.mu.Unlock()
			if closing {
				return
			}
			continue
		}
		evs, closing := s.take()
		for _, ev := range evs {
			payload, err := encodeEvent(ev, s.json)
			if err != nil {
				return
			}
			if err := writeRecord(w, payload); err != nil {
				return
			}
		}
		if flusher != nil && len(evs) > 0 {
			flusher.Flush()
		}
		if closing {
			return
		}
	}
}
