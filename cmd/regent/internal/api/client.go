package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// Client talks to one replica's REST API.
type Client struct {
	// Base is the replica's base URL, such as http://127.0.0.1:8080.
	Base string
	// HTTP is the client to use (http.DefaultClient when nil).
	HTTP *http.Client
	// Token, when set, is sent as a bearer token with writes.
	Token string
}

// StatusError is an answer other than 2xx.
type StatusError struct {
	Code    int
	Message string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("%d %s: %s", e.Code, http.StatusText(e.Code), e.Message)
}

// Info asks GET /v1/info.
func (c *Client) Info(ctx context.Context) (Info, error) {
	var v Info
	return v, c.do(ctx, http.MethodGet, "/v1/info", nil, &v)
}

// Leader asks GET /v1/leader.
func (c *Client) Leader(ctx context.Context) (Leader, error) {
	var v Leader
	return v, c.do(ctx, http.MethodGet, "/v1/leader", nil, &v)
}

// Replicas asks GET /v1/replicas.
func (c *Client) Replicas(ctx context.Context) (Replicas, error) {
	var v Replicas
	return v, c.do(ctx, http.MethodGet, "/v1/replicas", nil, &v)
}

// Tasks asks GET /v1/tasks.
func (c *Client) Tasks(ctx context.Context) (Tasks, error) {
	var v Tasks
	return v, c.do(ctx, http.MethodGet, "/v1/tasks", nil, &v)
}

// Agents asks GET /v1/agents.
func (c *Client) Agents(ctx context.Context) (Agents, error) {
	var v Agents
	return v, c.do(ctx, http.MethodGet, "/v1/agents", nil, &v)
}

// Do sends a request with an optional JSON body and decodes a JSON answer
// into out (when not nil). Non-2xx answers are *StatusError.
func (c *Client) Do(ctx context.Context, method, path string, body, out any) error {
	return c.do(ctx, method, path, body, out)
}

func (c *Client) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(c.Base, "/")+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("%s %s: reading the answer: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		var e Error
		if json.Unmarshal(data, &e) != nil || e.Error == "" {
			e.Error = strings.TrimSpace(string(data))
		}
		return &StatusError{Code: resp.StatusCode, Message: e.Error}
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("%s %s: decoding the answer: %w", method, path, err)
	}
	return nil
}
