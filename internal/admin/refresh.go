package admin

import (
	"context"
	"fmt"
	"net/http"
	"strings"
)

// Refresher is the optional Backend capability behind POST /api/refresh:
// drop the freshness of a module path's list, @latest and query answers
// so that the next request fetches them again (cluster-wide). Errors as
// for Backend (cacheadmin.ErrInvalid for a bad path or an unknown
// namespace). A Backend without it answers 404 there.
type Refresher interface {
	Refresh(ctx context.Context, actor string, req RefreshRequest) (RefreshResult, error)
}

// RefreshRequest is POST /api/refresh's body, or its query parameters
// module and namespace.
type RefreshRequest struct {
	Module string `json:"module"`
	// Namespace limits the refresh to one namespace; empty: the root and
	// every namespace.
	Namespace string `json:"namespace,omitempty"`
}

// RefreshResult says what was refreshed.
type RefreshResult struct {
	Module    string `json:"module"`
	Namespace string `json:"namespace,omitempty"`
}

func (h *handler) refresh(r *http.Request) (any, error) {
	rf, ok := h.b.(Refresher)
	if !ok {
		return nil, fmt.Errorf("%w: no such API endpoint", ErrNotFound)
	}
	var req RefreshRequest
	if q := r.URL.Query(); q.Has("module") {
		req = RefreshRequest{Module: q.Get("module"), Namespace: q.Get("namespace")}
	} else {
		var err error
		if req, err = decode[RefreshRequest](r); err != nil {
			return nil, err
		}
	}
	req.Module = strings.TrimSpace(req.Module)
	req.Namespace = strings.TrimSpace(req.Namespace)
	if req.Module == "" {
		return nil, badRequest("module is required")
	}
	h.logAction(r, "refresh", "module", req.Module, "namespace", req.Namespace)
	return rf.Refresh(r.Context(), actor(r), req)
}

// Refresh runs POST /api/refresh.
func (c *Client) Refresh(ctx context.Context, req RefreshRequest) (RefreshResult, error) {
	return call[RefreshResult](ctx, c, http.MethodPost, "/api/refresh", req)
}
