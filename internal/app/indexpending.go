package app

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/modproxy/modproxy/internal/atomicfile"
	"github.com/modproxy/modproxy/internal/index"
	"github.com/modproxy/modproxy/internal/storage"
)

// Objects that a command stores into a cache directory while a server
// holds its metadata index (an import beside a live server) are listed in
// files under pendingIndexDir; the server records them in its index
// (applyPendingIndex, every pendingIndexInterval), so that GC and the
// cache listings count them without a rebuild. A server that is not
// running finds them at its next start; a rebuild makes them moot.

// pendingIndexInterval is how often a server looks for pending lists.
const pendingIndexInterval = 5 * time.Second

// maxPendingList bounds one list file (a bundle of a million objects).
const maxPendingList = 256 << 20

func pendingIndexDir(cacheDir string) string {
	return filepath.Join(cacheDir, "state", "index-pending")
}

// pendingListKeys is the most keys one pending list holds (a few MB),
// so that every list stays far below maxPendingList.
const pendingListKeys = 1 << 16

// queueIndexRecords writes keys (one per line) as new pending lists of at
// most pendingListKeys each, durably. The error keeps its cause.
func queueIndexRecords(cacheDir string, keys []string) error {
	for i := 0; i < len(keys); i += pendingListKeys {
		chunk := keys[i:min(i+pendingListKeys, len(keys))]
		name := fmt.Sprintf("%d-%d-%d.keys", time.Now().UnixNano(), os.Getpid(), i/pendingListKeys)
		if err := atomicfile.Write(filepath.Join(pendingIndexDir(cacheDir), name), []byte(strings.Join(chunk, "\n")+"\n"), 0o600); err != nil {
			return err
		}
	}
	return nil
}

// applyPendingIndex records in idx every object the pending lists of
// cacheDir name, with its size and time as stored now (a key no longer
// stored, or not a valid key, is skipped), flushes, and then removes each
// list applied (one the store could not answer for stays; recording again
// is harmless). It returns the objects recorded. Safe to run while the
// server serves (the index is safe for concurrent use); run by one
// goroutine at a time. A list that cannot be read stays for the next
// round and is reported in the error.
func applyPendingIndex(ctx context.Context, idx *index.Index, st storage.Store, cacheDir string) (int, error) {
	dir := pendingIndexDir(cacheDir)
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("pending index records: %w", err)
	}
	n := 0
	var errs []error
	for _, e := range ents {
		if !e.Type().IsRegular() || !strings.HasSuffix(e.Name(), ".keys") {
			continue // atomicfile's temporary files start with "."
		}
		p := filepath.Join(dir, e.Name())
		data, err := atomicfile.Read(p, maxPendingList)
		if err != nil {
			errs = append(errs, fmt.Errorf("pending index records %s: %w", e.Name(), err))
			continue
		}
		m, statErr := recordStored(ctx, idx, st, strings.Split(string(data), "\n"))
		n += m
		if err := ctx.Err(); err != nil {
			return n, err // the list stays
		}
		if statErr != nil { // the store did not answer: the list stays for the next round
			errs = append(errs, fmt.Errorf("pending index records %s: %w", e.Name(), statErr))
			continue
		}
		if err := os.Remove(p); err != nil {
			errs = append(errs, fmt.Errorf("pending index records: %w", err))
		}
	}
	return n, errors.Join(errs...)
}

// recordStored records in idx each of keys that st holds, with its size
// and time as stored now (keys not stored, empty or not valid are
// skipped), and flushes. It returns how many it recorded and the first
// error of the store other than "not found"; it stops early when ctx is
// done.
func recordStored(ctx context.Context, idx *index.Index, st storage.Store, keys []string) (int, error) {
	defer idx.Flush()
	n := 0
	var statErr error
	for _, k := range keys {
		if ctx.Err() != nil {
			break
		}
		if k == "" || storage.CheckKey(k) != nil {
			continue
		}
		info, err := st.Stat(ctx, k)
		switch {
		case err == nil:
			idx.Stored(k, info.Size, info.ModTime)
			n++
		case !errors.Is(err, fs.ErrNotExist) && statErr == nil:
			statErr = err
		}
	}
	return n, statErr
}

// applyPending is the server's round of applyPendingIndex.
func (s *Server) applyPending(ctx context.Context) {
	n, err := applyPendingIndex(ctx, s.idx, s.store, s.cfg.CacheDir)
	if err != nil && ctx.Err() == nil {
		s.log.Warn("recording imported objects in the metadata index", "err", err)
	}
	if n > 0 {
		s.log.Info("recorded objects stored by another command in the metadata index", "objects", n)
	}
}
