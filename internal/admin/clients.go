package admin

import (
	"context"
	"net/http"
	"time"
)

// ClientTraffic is one identity's protocol traffic since the server started
// (GET /api/clients). Identity is a token or certificate mapping name,
// "anonymous" for requests without authentication, or "other" for the
// identities beyond the tracked number.
type ClientTraffic struct {
	Identity   string    `json:"identity"`
	Requests   int64     `json:"requests"`
	Bytes      int64     `json:"bytes"`
	LastSeen   time.Time `json:"last_seen"`
	LastModule string    `json:"last_module,omitempty"`
}

// ClientsBackend is the Backend's per-identity traffic, most requests
// first.
type ClientsBackend interface {
	Clients(ctx context.Context) ([]ClientTraffic, error)
}

func (h *handler) clients(r *http.Request) (any, error) {
	v, err := h.b.Clients(r.Context())
	return nonNil(v), err
}
