package toolchain

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	iofs "io/fs"
	"slices"
	"strings"
	"time"

	"github.com/modproxy/modproxy/internal/audit"
	"github.com/modproxy/modproxy/internal/index"
)

// Evicted is an archive Trim deleted.
type Evicted struct {
	File       string
	Bytes      int64 // the archive and its .sha256 record
	LastAccess time.Time
}

// storedArchive is an archive as the records count it.
type storedArchive struct {
	name  string
	bytes int64
	last  time.Time // the archive's last access; zero for a record without its archive
}

func (s *Service) bounded() bool { return s.opts.MaxTotal > 0 && s.opts.Records != nil }

// Trim deletes the least recently used stored archives, each with its
// .sha256 record (the archive first: a crash leaves at worst a record
// without its archive, as between the two writes of a store), while the
// archives hold more than Options.MaxTotal as Options.Records count them,
// and audits each deletion. It returns what it deleted, oldest first; an
// error is the store's, the deletions before it done. Without MaxTotal or
// Records it does nothing. Concurrent calls are serialized; archives
// being served from a disk store stay readable by their open handles.
func (s *Service) Trim(ctx context.Context) ([]Evicted, error) { return s.trim(ctx, "") }

// trim is Trim keeping the archive keep (the one just stored, so that its
// callers are served it even when it alone exceeds the bound).
func (s *Service) trim(ctx context.Context, keep string) ([]Evicted, error) {
	if !s.bounded() {
		return nil, nil
	}
	s.trimMu.Lock()
	defer s.trimMu.Unlock()
	archives, total, err := s.storedArchives()
	if err != nil || total <= s.opts.MaxTotal {
		return nil, err
	}
	var out []Evicted
	for _, a := range archives {
		if total <= s.opts.MaxTotal {
			break
		}
		if a.name == keep {
			continue
		}
		if err := ctx.Err(); err != nil {
			return out, err
		}
		sum := s.recorded(ctx, a.name)
		key := ArchiveKey(a.name)
		for _, k := range []string{key, key + ".sha256"} {
			if err := s.opts.Store.Delete(ctx, k); err != nil && !errors.Is(err, iofs.ErrNotExist) {
				return out, fmt.Errorf("evicting %s: %w", k, err)
			}
			s.opts.Records.Deleted(k)
		}
		total -= a.bytes
		out = append(out, Evicted{File: a.name, Bytes: a.bytes, LastAccess: a.last})
		s.log.Info("toolchain archive evicted", "key", key, "bytes", a.bytes, "last_access", a.last, "max_total", s.opts.MaxTotal)
		if s.opts.Audit != nil {
			ev := audit.Event{Time: s.opts.Now(), Actor: "toolchain", Action: "evict", Target: key, Bytes: a.bytes,
				Reason: fmt.Sprintf("dl.max_total: stored archives over %d bytes; least recently used (last access %s)", s.opts.MaxTotal, a.last.UTC().Format(time.RFC3339))}
			if sum != "" {
				ev.Hashes = map[string]string{"sha256": sum}
			}
			if aerr := s.opts.Audit.RecordContext(ctx, ev); aerr != nil {
				s.log.Error("audit record failed", "err", aerr)
			}
		}
	}
	return out, nil
}

// storedArchives returns the archives the records hold, least recently
// used first, and their bytes in all (records included).
func (s *Service) storedArchives() ([]*storedArchive, int64, error) {
	rec := s.opts.Records
	rec.Flush()
	byName := map[string]*storedArchive{}
	var total int64
	err := rec.All(func(key string, r index.Record) error {
		name, ok := strings.CutPrefix(key, "dl/")
		if !ok {
			return nil
		}
		name, isSum := strings.CutSuffix(name, ".sha256")
		if !ValidName(name) {
			return nil // a listing
		}
		a := byName[name]
		if a == nil {
			a = &storedArchive{name: name}
			byName[name] = a
		}
		a.bytes += r.Size
		total += r.Size
		if !isSum {
			a.last = r.LastAccess
		}
		return nil
	})
	if err != nil {
		return nil, 0, fmt.Errorf("listing the stored toolchain archives: %w", err)
	}
	out := make([]*storedArchive, 0, len(byName))
	for _, a := range byName {
		out = append(out, a)
	}
	slices.SortFunc(out, func(a, b *storedArchive) int {
		return cmp.Or(a.last.Compare(b.last), strings.Compare(a.name, b.name))
	})
	return out, total, nil
}
