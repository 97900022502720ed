package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/modproxy/modproxy/internal/cacheadmin"
)

// Client calls a running server's admin API (the CLI's gc and index
// commands while the server holds the cache directory). Its methods are
// safe for concurrent use. An answer other than 200 is an *APIError, which
// unwraps to the error classes the server maps to that status (the
// inverse of handler.fail): 400 to cacheadmin.ErrInvalid and
// ErrBadRequest, 404 to cacheadmin.ErrNotFound and ErrNotFound, 409 to
// cacheadmin.ErrConflict; so callers tell the classes apart as they do for
// a Backend.
type Client struct {
	// URL is the API's base URL ("http://127.0.0.1:3001").
	URL string
	// Token, when not empty, is sent as the bearer token.
	Token string
	// HTTP sends the requests; nil means http.DefaultClient. Give it a
	// timeout: the methods are bounded by their context only.
	HTTP *http.Client
}

// APIError is an answer of the admin API other than 200.
type APIError struct {
	Status  int
	Message string // the server's "error" text
}

func (e *APIError) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("admin API: %d %s", e.Status, http.StatusText(e.Status))
	}
	return e.Message
}

// Unwrap returns the error classes of the status (none for other
// statuses).
func (e *APIError) Unwrap() []error {
	switch e.Status {
	case http.StatusBadRequest:
		return []error{cacheadmin.ErrInvalid, ErrBadRequest}
	case http.StatusNotFound:
		return []error{cacheadmin.ErrNotFound, ErrNotFound}
	case http.StatusConflict:
		return []error{cacheadmin.ErrConflict}
	}
	return nil
}

// Status returns GET /api/status.
func (c *Client) Status(ctx context.Context) (Status, error) {
	return call[Status](ctx, c, http.MethodGet, "/api/status", nil)
}

// GCPlan returns GET /api/gc/plan.
func (c *Client) GCPlan(ctx context.Context) (GCPlan, error) {
	return call[GCPlan](ctx, c, http.MethodGet, "/api/gc/plan", nil)
}

// GCRun runs POST /api/gc/run; the server records the caller as
// "admin@ADDRESS" in its audit log.
func (c *Client) GCRun(ctx context.Context) (GCResult, error) {
	return call[GCResult](ctx, c, http.MethodPost, "/api/gc/run", nil)
}

// Trash returns GET /api/trash.
func (c *Client) Trash(ctx context.Context) ([]TrashEntry, error) {
	return call[[]TrashEntry](ctx, c, http.MethodGet, "/api/trash", nil)
}

// Restore runs POST /api/trash/restore for the batch id.
func (c *Client) Restore(ctx context.Context, id string) (RestoreResult, error) {
	return call[RestoreResult](ctx, c, http.MethodPost, "/api/trash/restore", struct {
		ID string `json:"id"`
	}{id})
}

// call sends one request (body, when not nil, as JSON) and decodes the
// answer into T.
func call[T any](ctx context.Context, c *Client, method, path string, body any) (T, error) {
	var zero T
	var rd io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return zero, err
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimSuffix(c.URL, "/")+path, rd)
	if err != nil {
		return zero, err
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
		return zero, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return zero, fmt.Errorf("admin API %s: %w", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error string `json:"error"`
		}
		_ = json.Unmarshal(data, &e)
		return zero, &APIError{Status: resp.StatusCode, Message: e.Error}
	}
	var v T
	if err := json.Unmarshal(data, &v); err != nil {
		return zero, fmt.Errorf("admin API %s: the answer is not the expected JSON: %w", path, err)
	}
	return v, nil
}
