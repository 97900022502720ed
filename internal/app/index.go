package app

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/modproxy/modproxy/internal/config"
	"github.com/modproxy/modproxy/internal/gc"
	"github.com/modproxy/modproxy/internal/index"
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
	idx, err := openIndex(ctx, cfg.CacheDir, store, log)
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

// openIndex opens the metadata index, rebuilding it from the store when
// it is missing or corrupt.
func openIndex(ctx context.Context, dir string, store index.Walker, log *slog.Logger) (*index.Index, error) {
	path := filepath.Join(dir, "index.db")
	idx, created, err := index.Open(path, index.Options{})
	if errors.Is(err, index.ErrCorrupt) {
		log.Warn("metadata index unusable; rebuilding it from the store", "path", path, "err", err)
		_ = os.Rename(path, path+".corrupt")
		idx, created, err = index.Open(path, index.Options{})
	}
	if err != nil {
		return nil, err
	}
	if created {
		start := time.Now()
		if err := idx.Rebuild(ctx, store); err != nil {
			idx.Close()
			return nil, err
		}
		b, n := idx.Totals()
		log.Info("metadata index rebuilt from the store", "objects", n, "bytes", b, "took", time.Since(start).Round(time.Millisecond))
	}
	return idx, nil
}
