package drill

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"
)

// The drill reads replicas through their REST API like any client; these
// are the few fields it needs.
type (
	leaderAnswer struct {
		Leader struct {
			ID      string `json:"id"`
			Address string `json:"address"`
			Token   int64  `json:"token"`
		} `json:"leader"`
		Self struct {
			ID      string `json:"id"`
			Leading bool   `json:"leading"`
			// Stopping: the term is over and its work is being stopped.
			Stopping bool  `json:"stopping"`
			Ready    bool  `json:"ready"`
			Term     int64 `json:"term"`
		} `json:"self"`
	}
	// Info is the part of GET /v1/info a drill checks.
	Info struct {
		Framework struct {
			ID string `json:"id"`
		} `json:"framework"`
		Subscribed     bool           `json:"subscribed"`
		Master         string         `json:"master"`
		Tasks          int            `json:"tasks"`
		TasksByState   map[string]int `json:"tasks_by_state"`
		Reconciliation struct {
			Active       bool          `json:"active"`
			LastDone     time.Time     `json:"last_done"`
			LastDuration time.Duration `json:"last_duration"`
		} `json:"reconciliation"`
	}
)

// send sends a request with no body to the replica, bounded by timeout
// (a frozen replica must not eat the caller's whole deadline), and
// returns the status and body.
func (r *Replica) send(ctx context.Context, method, path string, timeout time.Duration) (int, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, r.URL+path, nil)
	if err != nil {
		return 0, nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

func (r *Replica) get(ctx context.Context, path string, out any) error {
	code, b, err := r.send(ctx, http.MethodGet, path, 700*time.Millisecond)
	if err != nil {
		return err
	}
	if code != http.StatusOK {
		return fmt.Errorf("%s%s: %d %s: %s", r.URL, path, code, http.StatusText(code), b)
	}
	return json.Unmarshal(b, out)
}

func (r *Replica) leader(ctx context.Context) (leaderAnswer, error) {
	var l leaderAnswer
	return l, r.get(ctx, "/v1/leader", &l)
}

// Info asks the replica for GET /v1/info (a standby answers from the
// leader).
func (r *Replica) Info(ctx context.Context) (Info, error) {
	var i Info
	return i, r.get(ctx, "/v1/info", &i)
}

// ready asks GET /readyz: nil when the replica reached the store lately.
func (r *Replica) ready(ctx context.Context) error {
	code, b, err := r.send(ctx, http.MethodGet, "/readyz", 700*time.Millisecond)
	if err != nil {
		return err
	}
	if code != http.StatusOK {
		return fmt.Errorf("%s not ready: %s", r.ID, b)
	}
	return nil
}

// Do sends a request with no body to the replica and returns the status
// and body (a standby forwards framework requests to the leader).
func (r *Replica) Do(ctx context.Context, method, path string) (int, string, error) {
	code, b, err := r.send(ctx, method, path, 15*time.Second)
	return code, string(b), err
}
