package app

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/modproxy/modproxy/internal/background"
	"github.com/modproxy/modproxy/internal/cacheadmin"
	"github.com/modproxy/modproxy/internal/config"
	"github.com/modproxy/modproxy/internal/gc"
	"github.com/modproxy/modproxy/internal/index"
	"github.com/modproxy/modproxy/internal/storage"
)

// ErrIndexLocked is returned when another process (a running server) has
// the cache directory's metadata index open.
var ErrIndexLocked = index.ErrLocked

// IndexSummary is what the metadata index of a cache directory records.
type IndexSummary struct {
	Bytes, Objects int64 // the cache's size (see package index) and its objects
	Versions       int64 // module versions (info, mod and zip count as one)
}

// ReadIndexSummary reads the metadata index of cfg's cache directory
// read-only: it never creates, rebuilds or changes it. The error wraps
// fs.ErrNotExist when there is no index, ErrIndexLocked while a server
// holds it (ask the server: RunningAdmin).
func ReadIndexSummary(cfg config.Config) (IndexSummary, error) {
	r, err := index.OpenReader(filepath.Join(cfg.CacheDir, "index.db"))
	if err != nil {
		return IndexSummary{}, err
	}
	defer r.Close()
	var sum IndexSummary
	if sum.Bytes, sum.Objects, err = r.Totals(); err != nil {
		return IndexSummary{}, err
	}
	vers, err := gc.Versions(readOnlyIndex{r})
	sum.Versions = int64(len(vers))
	return sum, err
}

// readOnlyIndex lets gc.Versions, which only reads, list the versions of
// an index.Reader: a read-only view has nothing queued (Flush) and nothing
// to delete.
type readOnlyIndex struct{ *index.Reader }

func (readOnlyIndex) Flush()         {}
func (readOnlyIndex) Deleted(string) {}

// RebuildIndex rebuilds the metadata index of cfg's cache directory from
// its store and returns its totals.
func RebuildIndex(ctx context.Context, cfg config.Config, log *slog.Logger) (bytes, objects int64, err error) {
	st, err := openStore(ctx, cfg)
	if err != nil {
		return 0, 0, err
	}
	store := st.store
	idx, _, err := openIndex(cfg.CacheDir, log)
	if err != nil {
		return 0, 0, err
	}
	defer idx.Close()
	if err := idx.Rebuild(ctx, store); err != nil {
		return 0, 0, err
	}
	bytes, objects = idx.Totals()
	return bytes, objects, nil
}

// openIndex opens the metadata index; stale reports that it must be
// rebuilt from the store (it was missing or corrupt, or its first rebuild
// never finished). A file another process holds is a *config.Error for
// cache_dir wrapping index.ErrLocked.
func openIndex(dir string, log *slog.Logger) (idx *index.Index, stale bool, err error) {
	path := filepath.Join(dir, "index.db")
	idx, stale, err = index.Open(path, index.Options{})
	if errors.Is(err, index.ErrCorrupt) {
		log.Warn("metadata index unusable; rebuilding it from the store", "path", path, "err", err)
		_ = os.Rename(path, path+".corrupt")
		idx, stale, err = index.Open(path, index.Options{})
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return nil, false, &config.Error{Key: "cache_dir", Err: err}
	}
	if errors.Is(err, index.ErrLocked) {
		return nil, false, &config.Error{Key: "cache_dir", Err: fmt.Errorf(
			"%s is in use by another modproxy process (%w); each server needs its own cache directory (--cache-dir or MODPROXY_CACHE_DIR)", dir, err)}
	}
	return idx, stale, err
}

// indexRebuild rebuilds a stale metadata index while the server serves.
// Serving never waits for it (the index only feeds GC, listings and
// gauges); what needs the whole index asks ready first. A server that
// runs its background work (RunBackground, Serve) rebuilds in the
// background and refuses those operations meanwhile with
// cacheadmin.ErrUnavailable; one that does not (offline commands,
// in-process tests) rebuilds in the first caller of ready.
type indexRebuild struct {
	idx   *index.Index
	store index.Walker
	log   *slog.Logger
	found atomic.Int64 // objects the walk in progress has found

	mu      sync.Mutex // guards the fields below; held by a rebuild in a caller of ready
	stale   bool       // the index is not complete yet
	running bool       // the background rebuild has started
	failed  error      // its last failure, while it retries
}

// retryRebuild is the wait before a failed background rebuild tries again.
const retryRebuild = time.Minute

// start rebuilds in g, retrying every minute after a failure, until done
// or g's context ends (then the index stays stale for the next start).
func (r *indexRebuild) start(ctx context.Context, g *background.Group) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.stale || r.running {
		return
	}
	r.running = g.Go(ctx, "metadata index rebuild", func(ctx context.Context) {
		r.log.Info("metadata index missing or incomplete: rebuilding it from the store in the background; serving goes on, GC and cache listings wait for it")
		for {
			err := r.rebuild(ctx)
			r.mu.Lock()
			r.stale, r.failed = err != nil, err
			r.mu.Unlock()
			if err == nil || ctx.Err() != nil {
				return
			}
			r.log.Error("metadata index rebuild failed; retrying", "err", err, "retry_in", retryRebuild)
			select {
			case <-ctx.Done():
				return
			case <-time.After(retryRebuild):
			}
		}
	})
}

func (r *indexRebuild) rebuild(ctx context.Context) error {
	start := time.Now()
	r.found.Store(0)
	if err := r.idx.Rebuild(ctx, countingWalker{r.store, &r.found}); err != nil {
		return err
	}
	b, n := r.idx.Totals()
	r.log.Info("metadata index rebuilt from the store", "objects", n, "bytes", b, "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// ready is cacheadmin's IndexReady: nil once the index is complete; while
// the background rebuild runs, an error of class ErrUnavailable saying so;
// without a background rebuild, it rebuilds here (callers wait).
func (r *indexRebuild) ready(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case !r.stale:
		return nil
	case r.running && r.failed != nil:
		return fmt.Errorf("%w: rebuilding the metadata index from the store failed, retrying every %s: %w", cacheadmin.ErrUnavailable, retryRebuild, r.failed)
	case r.running:
		return fmt.Errorf("%w: the metadata index is being rebuilt from the store (%d objects found so far); try again shortly", cacheadmin.ErrUnavailable, r.found.Load())
	}
	if err := r.rebuild(ctx); err != nil {
		return err
	}
	r.stale = false
	return nil
}

// status is the index's line in /readyz. Serving does not depend on the
// index, so it never makes the server unready.
func (r *indexRebuild) status() string {
	if !r.mu.TryLock() {
		return "metadata index: being rebuilt for a caller"
	}
	defer r.mu.Unlock()
	switch {
	case !r.stale:
		_, n := r.idx.Totals()
		return fmt.Sprintf("metadata index: ready (%d objects)", n)
	case r.running && r.failed != nil:
		return fmt.Sprintf("metadata index: rebuild failed, retrying: %v", r.failed)
	case r.running:
		return fmt.Sprintf("metadata index: rebuilding from the store in the background (%d objects found so far); GC and cache listings wait for it", r.found.Load())
	}
	return "metadata index: rebuilt on first use"
}

// withIndex adds the index's status to a readiness check's detail.
func (r *indexRebuild) withIndex(ready func(ctx context.Context) (string, error)) func(ctx context.Context) (string, error) {
	return func(ctx context.Context) (string, error) {
		detail, err := ready(ctx)
		return detail + r.status() + "\n", err
	}
}

// countingWalker counts the objects a walk finds.
type countingWalker struct {
	w index.Walker
	n *atomic.Int64
}

func (c countingWalker) Walk(ctx context.Context, prefix string, fn func(storage.Info) error) error {
	return c.w.Walk(ctx, prefix, func(i storage.Info) error {
		c.n.Add(1)
		return fn(i)
	})
}
