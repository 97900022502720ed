// Package cacheadmin administers the module cache: GC runs on demand and
// on a schedule (by one leader among replicas), purges, blocks and pins
// with their persisted state, the trash, and the cluster's view of the
// metadata index that GC plans from. Package gc makes and runs the plans;
// this package decides when, with which policy, and keeps the state.
//
// State (pins added through the API, blocks added by purges) is persisted
// as JSON: pins.json and blocked.json in Options.StateDir, or, when the
// store is shared by several replicas, in the store under "_state/" (not
// a protocol path, so never served). A change is broadcast through the
// coordinator and every replica reloads it.
//
// Errors of requests that cannot succeed wrap one of ErrInvalid,
// ErrNotFound, ErrConflict and ErrUnavailable (test with errors.Is); the
// HTTP and CLI edges map these classes to statuses and exit codes. Any other error is
// a failure of the store, the index, the trash or the state files.
//
// Background work (scheduled GC, reloading state on a broadcast, sharing
// access statistics, free-space checks) starts with Start and ends with
// Close, which waits for it. A Service is safe for concurrent use.
package cacheadmin

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/modproxy/modproxy/internal/audit"
	"github.com/modproxy/modproxy/internal/background"
	"github.com/modproxy/modproxy/internal/coord"
	"github.com/modproxy/modproxy/internal/event"
	"github.com/modproxy/modproxy/internal/gc"
	"github.com/modproxy/modproxy/internal/index"
	"github.com/modproxy/modproxy/internal/metrics"
	"github.com/modproxy/modproxy/internal/storage"
	"github.com/modproxy/modproxy/internal/trash"
)

// Error classes. Their texts are those the admin API has always shown.
var (
	// ErrInvalid: the request is malformed (no reason, a bad module path,
	// version range, pin or pin set).
	ErrInvalid = errors.New("bad request")
	// ErrNotFound: the request names something that does not exist (a
	// trash batch, a pin that was never added).
	ErrNotFound = errors.New("not found")
	// ErrConflict: the request could not be completed because what it
	// acts on is in use (versions being served or filled); retry later.
	ErrConflict = errors.New("in use")
	// ErrUnavailable: the request needs the whole metadata index, which
	// is not ready yet (being rebuilt from the store); retry later.
	ErrUnavailable = errors.New("temporarily unavailable")
)

// Index is what the service needs from the metadata index (*index.Index).
type Index interface {
	gc.Index
	Touch(key string, t time.Time)
	Stored(key string, size int64, t time.Time)
	Totals() (bytes, objects int64)
	Rebuild(ctx context.Context, store index.Walker) error
}

// Options configures a Service. Store, Index, Trash and Gate are
// required.
type Options struct {
	Store storage.Store
	// Shared tells that the store is shared by several replicas: state is
	// kept in it, and with a Coordinator GC plans from the whole store and
	// the cluster's access statistics.
	Shared bool
	// StateDir holds the state files when the store is not shared.
	StateDir string
	Index    Index
	Trash    *trash.Trash
	// Gate keeps GC and purges away from versions being served or filled.
	Gate    gc.Gate
	Audit   *audit.Log
	Metrics *metrics.Metrics
	// Coordinator, when set, elects the GC leader, broadcasts state
	// changes and merges access statistics; nil: this replica is alone.
	Coordinator coord.Coordinator
	// Policy is the configured eviction policy; pins added through the
	// service are added to its Pins and PinSets.
	Policy gc.Policy
	// Interval schedules GC (after Start); 0: on demand only.
	Interval time.Duration
	// OnBlocks, when set, is called with every block whenever the blocks
	// change (a purge with Block here, or a reload after another replica
	// changed them), with the service's lock held: it must not call the
	// service.
	OnBlocks func(blocks []Block)
	// Logger receives what background work has to say; nil discards.
	Logger *slog.Logger
	// OnRefresh, when set, drops the freshness of a module path's list,
	// @latest and query answers in one namespace ("" the root, "*" every
	// service); called by Refresh on this replica and for refreshes other
	// replicas broadcast. Its error refuses a local Refresh (an unknown
	// namespace). It must not block nor call the service.
	OnRefresh func(namespace, module string) error
	// Events receives an event.Purged for every purge that completed;
	// nil discards.
	Events event.Sink

	// FreeSpace, when set with MinFree, returns the free bytes of the file
	// system holding the cache directory (the trash, the index, temporary
	// files and, for a disk store, the objects); see EnsureFree.
	FreeSpace func() (int64, error)
	// MinFree is the free space below which GC reacts at once; 0: off.
	MinFree int64
	// EvictForSpace tells that evicting objects frees space on that file
	// system (a disk store); without it, low space only empties the trash.
	EvictForSpace bool
	// FreeCheckInterval is how often Start's loop asks FreeSpace besides
	// after stores; default 10 s.
	FreeCheckInterval time.Duration
	// IndexReady, when set, is asked before every operation that reads
	// the index as a whole (GC plans and runs, purges, module listings);
	// its error (wrapping ErrUnavailable while the index is being
	// rebuilt) is the operation's. It may block (rebuild in the caller).
	// nil: the index is always ready.
	IndexReady func(ctx context.Context) error
	// Hosted, when set, is told of every purge of a hosted module's
	// versions, so that they stay refused to publishing unless the purge
	// allows it.
	Hosted Hosted

	// RefreshEvery and RefreshBurst limit the refreshes of each identity
	// (RefreshRequest.Identity): RefreshBurst at once, then one every
	// RefreshEvery; defaults 60 and 1 s.
	RefreshEvery time.Duration
	RefreshBurst int
}

// Hosted is the part of the hosted modules a purge informs.
type Hosted interface {
	IsHosted(modulePath string) bool
	// Purged records that the versions of modulePath that match reports
	// (published ones, whether or not the purge found them in the store)
	// were purged by actor. It is called before anything is evicted; its
	// error fails the purge as ErrUnavailable (retry).
	Purged(ctx context.Context, actor, modulePath string, match func(version string) bool, reason string, allowRepublish bool) error
}

// Service administers one cache. See the package documentation.
type Service struct {
	opts Options
	log  *slog.Logger
	bg   *background.Group

	access *touched // accesses not yet shared with the cluster; nil alone

	mu      sync.Mutex // guards pins, blocks, lastGC; serializes GC runs and purges
	pins    Pins
	blocks  []Block
	lastGC  *gc.Result
	started bool

	leader coord.Lock // held by the GC schedule; touched only by its loop and after it ended

	stored chan struct{} // a store happened: check the free space (capacity 1, never blocks)

	refreshLimit rateLimiter // ratelimit.go
}

// New returns a Service with the state loaded from where Options says,
// and has the store gauges read the index and the trash. A state file that cannot be read or parsed
// is an error.
func New(opts Options) (*Service, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Events == nil {
		opts.Events = event.Discard{}
	}
	s := &Service{opts: opts, log: opts.Logger, bg: background.New(opts.Logger), stored: make(chan struct{}, 1)}
	if opts.Coordinator != nil {
		s.access = &touched{m: map[string]coord.Access{}}
	}
	if err := s.loadState(context.Background()); err != nil {
		return nil, err
	}
	s.gauges()
	return s, nil
}

// Start starts the background work until ctx is done or Close: the GC
// schedule (when Options.Interval is set; with a coordinator only on the
// leader), reloading state when another replica changes it, every 15 s
// sharing this replica's accesses with the cluster (with a coordinator),
// and, when the free space is watched (Options.FreeSpace and MinFree),
// a check of it at once, every FreeCheckInterval and after stores, with
// EnsureFree. Later calls do nothing.
func (s *Service) Start(ctx context.Context) {
	s.mu.Lock()
	started := s.started
	s.started = true
	s.mu.Unlock()
	if started {
		return
	}
	if s.opts.Interval > 0 {
		s.bg.Every(ctx, "gc schedule", s.opts.Interval, s.scheduledGC)
	}
	if c := s.opts.Coordinator; c != nil {
		s.bg.Go(ctx, "state subscription", func(ctx context.Context) {
			c.Subscribe(ctx, func(msg string) {
				s.bg.Safely("state reload", func() { s.onMessage(ctx, msg) })
			})
		})
	}
	if s.watchesSpace() {
		s.bg.Go(ctx, "free space", s.spaceLoop)
	}
	if s.access != nil {
		s.bg.Every(ctx, "access push", 15*time.Second, s.pushAccess)
	}
}

// Close stops the background work, waits for it (a scheduled GC run
// stops between versions) and gives up GC leadership. The service still
// answers requests afterwards, but starts nothing in the background.
func (s *Service) Close() {
	s.bg.Close()
	if s.leader != nil {
		_ = s.leader.Release(context.Background())
		s.leader = nil
	}
}

// Touch records that key was served at t: in the index and, with a
// coordinator, for the cluster's GC. It never blocks.
func (s *Service) Touch(key string, t time.Time) {
	s.opts.Index.Touch(key, t)
	if s.access != nil {
		s.access.add(key, t)
	}
}

// Stored records that key was stored with size at t, and has the free
// space checked soon when it is watched. It never blocks.
func (s *Service) Stored(key string, size int64, t time.Time) {
	s.opts.Index.Stored(key, size, t)
	select {
	case s.stored <- struct{}{}:
	default:
	}
}

// indexReady says whether the index can be read as a whole now.
func (s *Service) indexReady(ctx context.Context) error {
	if s.opts.IndexReady == nil {
		return nil
	}
	return s.opts.IndexReady(ctx)
}

// gauges makes the store and trash gauges read the index's totals and
// the trash's size at every scrape (right from start, current without a
// GC run), and sets the cap.
func (s *Service) gauges() {
	s.opts.Metrics.StoreFuncs(s.opts.Index.Totals, s.opts.Trash.Size)
	s.opts.Metrics.Store(0, 0, s.opts.Policy.MaxBytes)
}
