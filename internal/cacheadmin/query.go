package cacheadmin

import (
	"cmp"
	"context"
	"slices"
	"strings"
	"time"

	"github.com/modproxy/modproxy/internal/gc"
	"github.com/modproxy/modproxy/internal/storage"
)

// Summary is the cache's state at a glance.
type Summary struct {
	Bytes, Objects int64 // in the metadata index
	Versions       int64 // module versions (info, mod and zip count as one)
	// Policy is the eviction policy in force: the configured one with the
	// pins added through the service.
	Policy     gc.Policy
	Interval   time.Duration // GC schedule; 0: on demand only
	LastGC     *gc.Result    // nil before the first run of this process
	TrashBytes int64
}

// Summary returns the cache's state (while the index is being rebuilt,
// what it holds so far).
func (s *Service) Summary(ctx context.Context) Summary {
	b, n := s.opts.Index.Totals()
	vers, _ := gc.Versions(s.opts.Index)
	s.mu.Lock()
	last := s.lastGC
	pol := s.policy()
	s.mu.Unlock()
	return Summary{Bytes: b, Objects: n, Versions: int64(len(vers)), Policy: pol, Interval: s.opts.Interval,
		LastGC: last, TrashBytes: s.opts.Trash.Size()}
}

// Version is a cached module version as a listing shows it.
type Version struct {
	*gc.Entry
	Pinned           bool
	ZipHash, ModHash string   // recorded hashes; "" when none
	Files            []string // "info", "mod", "zip"
}

// Module is a cached module with its versions, in semver order.
type Module struct {
	Path     string
	Versions []Version
}

// Modules lists up to limit cached modules whose path contains query
// (all when empty), in path order; limit outside 1..500 means 50.
func (s *Service) Modules(ctx context.Context, query string, limit int) ([]Module, error) {
	if limit <= 0 || limit > 500 {
		limit = 50
	}
	vers, err := s.Versions(ctx)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	pol := s.policy()
	s.mu.Unlock()
	pn, _ := gc.NewPinner(pol)
	var out []Module
	for _, v := range vers {
		if query != "" && !strings.Contains(v.Module, query) {
			continue
		}
		if len(out) == 0 || out[len(out)-1].Path != v.Module {
			if len(out) == limit {
				break
			}
			out = append(out, Module{Path: v.Module})
		}
		mv := Version{Entry: v}
		if pn != nil {
			mv.Pinned = pn.Pinned(v.Module, v.Version)
		}
		for _, k := range v.Keys {
			switch {
			case strings.HasSuffix(k, ".zip.h1"):
				mv.ZipHash = recordedHash(ctx, s.opts.Store, k)
			case strings.HasSuffix(k, ".mod.h1"):
				mv.ModHash = recordedHash(ctx, s.opts.Store, k)
			case strings.HasSuffix(k, ".h1"):
			default:
				mv.Files = append(mv.Files, k[strings.LastIndex(k, ".")+1:])
			}
		}
		m := &out[len(out)-1]
		m.Versions = append(m.Versions, mv)
	}
	return out, nil
}

// recordedHash is a recorded hash or "" when there is none.
func recordedHash(ctx context.Context, s storage.Opener, key string) string {
	b, _ := storage.ReadSmall(ctx, s, key, 4096)
	return strings.TrimSpace(string(b))
}

// ModuleUsage is a module's aggregate in the store.
type ModuleUsage struct {
	Module   string
	Bytes    int64
	Hits     int64
	Versions int
}

// TopModules returns the n modules that take the most bytes and the n
// most served ones, largest first (ties in path order).
func (s *Service) TopModules(ctx context.Context, n int) (bySize, byHits []ModuleUsage, err error) {
	vers, err := s.Versions(ctx)
	if err != nil {
		return nil, nil, err
	}
	byMod := map[string]*ModuleUsage{}
	for _, v := range vers {
		m := byMod[v.Module]
		if m == nil {
			m = &ModuleUsage{Module: v.Module}
			byMod[v.Module] = m
		}
		m.Bytes += v.Bytes
		m.Hits += v.Hits
		m.Versions++
	}
	var all []ModuleUsage
	for _, m := range byMod {
		all = append(all, *m)
	}
	top := func(key func(ModuleUsage) int64) []ModuleUsage {
		s := slices.Clone(all)
		slices.SortFunc(s, func(a, b ModuleUsage) int {
			if c := cmp.Compare(key(b), key(a)); c != 0 {
				return c
			}
			return strings.Compare(a.Module, b.Module)
		})
		return s[:min(n, len(s))]
	}
	return top(func(m ModuleUsage) int64 { return m.Bytes }), top(func(m ModuleUsage) int64 { return m.Hits }), nil
}
