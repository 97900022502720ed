package admin

import (
	"context"
	"time"

	"github.com/modproxy/modproxy/internal/audit"
)

// Backend is what the admin API needs from the server. internal/app
// implements it with thin adapters over the cache administration
// (package cacheadmin, whose types cache.go maps to these) and the
// server's own state; tests use a fake. Every method is safe for
// concurrent use. Errors for bad input wrap ErrBadRequest or
// cacheadmin.ErrInvalid, for unknown items ErrNotFound or
// cacheadmin.ErrNotFound, for items in use cacheadmin.ErrConflict.
type Backend interface {
	Status(ctx context.Context) (Status, error)
	Upstreams(ctx context.Context) ([]Upstream, error)
	Stats(ctx context.Context) (Stats, error)
	Modules(ctx context.Context, query string, limit int) ([]Module, error)
	GCPlan(ctx context.Context) (GCPlan, error)
	GCRun(ctx context.Context, actor string) (GCResult, error)
	Purge(ctx context.Context, actor string, req PurgeRequest) (PurgeResult, error)
	Trash(ctx context.Context) ([]TrashEntry, error)
	Restore(ctx context.Context, actor, id string) (RestoreResult, error)
	Pins(ctx context.Context) (Pins, error)
	AddPin(ctx context.Context, actor string, p PinRequest) error
	RemovePin(ctx context.Context, actor string, p PinRequest) error
	Audit(ctx context.Context, q AuditQuery) ([]audit.Event, error)
	SetOffline(ctx context.Context, actor string, on bool) error
	ClientsBackend // clients.go
}

// Status is the server's overall state. Config has secrets redacted.
type Status struct {
	Version   string         `json:"version"`
	Started   time.Time      `json:"started"`
	Offline   bool           `json:"offline"`
	Verify    bool           `json:"verify"`
	Listen    string         `json:"listen"`
	CacheDir  string         `json:"cache_dir"`
	Store     StoreStats     `json:"store"`
	Config    map[string]any `json:"config"`
	GCPolicy  map[string]any `json:"gc_policy"`
	LastGC    *GCResult      `json:"last_gc,omitempty"`
	TrashSize int64          `json:"trash_bytes"`
}

// StoreStats is the store's size as the metadata index sees it.
type StoreStats struct {
	Bytes    int64 `json:"bytes"`
	Objects  int64 `json:"objects"`
	Versions int64 `json:"versions"`
	CapBytes int64 `json:"cap_bytes"` // 0: unbounded
}

// Upstream is one upstream's health.
type Upstream struct {
	Name    string `json:"name"`
	Breaker string `json:"breaker"` // closed, half-open, open, available (direct)
}

// Stats are traffic statistics.
type Stats struct {
	// HitRatio per window ("5m", "1h", "24h"): hits / (hits + misses), -1 without traffic.
	HitRatio map[string]float64 `json:"hit_ratio"`
	// Series are per-minute buckets of the last hours, oldest first,
	// starting no earlier than the server's start.
	Series     []Bucket     `json:"series"`
	TopBySize  []ModuleStat `json:"top_by_size"`
	TopByHits  []ModuleStat `json:"top_by_hits"`
	TotalHits  int64        `json:"total_hits"`
	TotalMiss  int64        `json:"total_misses"`
	TotalBytes int64        `json:"total_bytes"`
}

// Bucket is one minute of traffic.
type Bucket struct {
	Start    time.Time `json:"start"`
	Requests int64     `json:"requests"`
	Hits     int64     `json:"hits"`
	Misses   int64     `json:"misses"`
	Bytes    int64     `json:"bytes"`
	// Errors are answers with a server error (5xx).
	Errors int64 `json:"errors"`
	// Upstream fetches of the minute (retries and body included): how
	// many, how many failed (not found is an answer), their total and
	// longest time.
	UpstreamFetches    int64   `json:"upstream_fetches"`
	UpstreamErrors     int64   `json:"upstream_errors"`
	UpstreamSeconds    float64 `json:"upstream_seconds"`
	UpstreamMaxSeconds float64 `json:"upstream_max_seconds"`
}

// ModuleStat is a module's aggregate in the store.
type ModuleStat struct {
	Module   string `json:"module"`
	Bytes    int64  `json:"bytes"`
	Hits     int64  `json:"hits"`
	Versions int    `json:"versions"`
}

// Module is a cached module with its versions.
type Module struct {
	Path     string    `json:"path"`
	Versions []Version `json:"versions"`
}

// Version is one cached module version.
type Version struct {
	Version    string    `json:"version"`
	Bytes      int64     `json:"bytes"`
	ZipHash    string    `json:"zip_hash,omitempty"`
	ModHash    string    `json:"mod_hash,omitempty"`
	Stored     time.Time `json:"stored"`
	LastAccess time.Time `json:"last_access"`
	Hits       int64     `json:"hits"`
	Pinned     bool      `json:"pinned"`
	Files      []string  `json:"files"` // "info", "mod", "zip"
}

// GCPlan is what a GC run would do.
type GCPlan struct {
	Created     time.Time    `json:"created"`
	Items       []GCPlanItem `json:"items"`
	Bytes       int64        `json:"bytes"`
	StoreBytes  int64        `json:"store_bytes"`
	AfterBytes  int64        `json:"after_bytes"`
	PinnedKept  int          `json:"pinned_kept"`
	PolicyNotes []string     `json:"policy_notes,omitempty"`
}

// GCPlanItem is one version to evict.
type GCPlanItem struct {
	Module  string `json:"module"`
	Version string `json:"version"`
	Bytes   int64  `json:"bytes"`
	Reason  string `json:"reason"` // policy: "size-cap", "max-idle", "keep-newest"
}

// GCResult is the outcome of a GC run.
type GCResult struct {
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
	Evicted  int       `json:"evicted"`
	Bytes    int64     `json:"bytes"`
	Skipped  int       `json:"skipped"` // busy (being served or filled)
	TrashID  string    `json:"trash_id,omitempty"`
}

// PurgeRequest removes a module, a version or a version range now.
type PurgeRequest struct {
	Module   string `json:"module"`
	Versions string `json:"versions,omitempty"` // "" all, "v1.2.3", or a range ">=v1.0.0 <v1.2.0"
	Reason   string `json:"reason"`             // mandatory
	Block    bool   `json:"block"`              // refuse re-fetching them afterwards
	Hard     bool   `json:"hard"`               // delete instead of moving to the trash
	// AllowRepublish lets purged hosted versions be published again.
	AllowRepublish bool `json:"allow_republish,omitempty"`
}

// PurgeResult says what a purge removed.
type PurgeResult struct {
	Versions []string `json:"versions"`
	Bytes    int64    `json:"bytes"`
	TrashID  string   `json:"trash_id,omitempty"`
	Blocked  bool     `json:"blocked"`
}

// TrashEntry is one trash batch (a GC run or a purge).
type TrashEntry struct {
	ID       string    `json:"id"`
	Created  time.Time `json:"created"`
	Reason   string    `json:"reason"`
	Versions []string  `json:"versions"` // module@version
	Bytes    int64     `json:"bytes"`
	Expires  time.Time `json:"expires"`
}

// RestoreResult says what a restore brought back.
type RestoreResult struct {
	Restored []string `json:"restored"`
	Bytes    int64    `json:"bytes"`
}

// Pins are the GC pins.
type Pins struct {
	Patterns []string `json:"patterns"` // "module-pattern[@version]"
	Sets     []string `json:"sets"`     // go.sum / go.mod files or directories
}

// PinRequest adds or removes one pin pattern or set.
type PinRequest struct {
	Pattern string `json:"pattern,omitempty"`
	Set     string `json:"set,omitempty"`
}

// AuditQuery filters audit events.
type AuditQuery struct {
	Action string `json:"action,omitempty"`
	Actor  string `json:"actor,omitempty"`
	// Identity selects the events of one identity (exact name).
	Identity string    `json:"identity,omitempty"`
	Target   string    `json:"target,omitempty"` // substring
	Since    time.Time `json:"since,omitempty"`
	Until    time.Time `json:"until,omitempty"`
	Limit    int       `json:"limit,omitempty"` // default 100, newest first
}
